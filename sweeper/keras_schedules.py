"""Keras-side schedules that Keras does not ship (imports Keras; training side only)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="sweeper")
class EpochStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The tutorials' drop decay by epoch, applied per step.

    ``lr0 * drop ** floor((1 + epoch) / epochs_drop)`` with ``epoch = floor(step /
    steps_per_epoch)``: the same rate a ``LearningRateScheduler`` callback would set at the start
    of each epoch, but evaluated by the optimizer itself, so it is exact under every backend and
    survives a checkpoint like any built-in schedule.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        drop: float,
        epochs_drop: float,
        steps_per_epoch: int,
        name: str = "EpochStepDecay",
    ) -> None:
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.drop = drop
        self.epochs_drop = epochs_drop
        self.steps_per_epoch = steps_per_epoch
        self.name = name

    def __call__(self, step: Any) -> Any:
        lr = ops.convert_to_tensor(self.initial_learning_rate)
        dtype = lr.dtype
        epoch = ops.floor(ops.cast(step, dtype) / ops.cast(self.steps_per_epoch, dtype))
        exponent = ops.floor((1.0 + epoch) / ops.cast(self.epochs_drop, dtype))
        return ops.multiply(lr, ops.power(ops.cast(self.drop, dtype), exponent))

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "drop": self.drop,
            "epochs_drop": self.epochs_drop,
            "steps_per_epoch": self.steps_per_epoch,
            "name": self.name,
        }
