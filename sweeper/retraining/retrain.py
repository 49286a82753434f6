"""A stored configuration retrained: rebuilt from its trial's parameters, trained as a fresh
model and scored once on a given split.

What ``evaluate`` (on train + validation, scored on the test split) and ``confirm`` (on the
training split, scored on the validation split) share. Keras is imported only inside
:func:`train_and_score`. A stop (Ctrl-C, SIGTERM) during training only stops ``fit`` after the
batch in progress and is raised at the next epoch's end or when the run is done
(:mod:`sweeper.interrupts`): a signal raised inside TensorFlow's code would become an error of its
own.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeper.interrupts import INTERRUPTS

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from sweeper.search.space import TrialConfig
    from sweeper.studyfile.study_spec import SpaceSpec
    from sweeper.training.data import Dataset
    from sweeper.training.optimizers import OptimizerSpec
    from sweeper.training.schedule_base import Schedule
    from sweeper.training.train_trial import TrainSettings


def trial_config(trial: FrozenTrial, space: SpaceSpec) -> TrialConfig:
    """The configuration ``trial`` trained with, sampled again from its parameters."""
    from optuna.trial import FixedTrial

    from sweeper.search.space import sample

    fixed = FixedTrial(dict(trial.params), number=trial.number)
    for key, value in trial.user_attrs.items():
        fixed.set_user_attr(key, value)
    with warnings.catch_warnings():  # a baseline's value may lie outside the searched range
        warnings.filterwarnings("ignore", message=r"The value .* is out of the range")
        return sample(fixed, space)  # type: ignore[arg-type]


def _compiled(
    dataset: Dataset, run: tuple[Schedule, OptimizerSpec], settings: TrainSettings, spe: int
) -> Any:
    """A fresh model of ``dataset``'s shapes, compiled with ``run``'s schedule and optimizer."""
    from sweeper.training.models import build_model

    schedule, optimizer = run
    model = build_model(
        settings.model, dataset.input_shape, dataset.num_classes, settings.model_dir
    )
    model.compile(
        optimizer=optimizer.build(schedule.keras(), total_steps=spe * settings.epochs),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=settings.jit_compile,
    )
    return model


def _epochs_callback(keras: Any, on_epoch: Callable[[int], None] | None) -> Any:
    """Raises a recorded stop as training begins and as each epoch ends (an epoch cut short by
    the stop counts for nothing), else calls ``on_epoch(epoch)``."""

    def epoch_end(epoch: int, _logs: Any) -> None:
        INTERRUPTS.check()
        if on_epoch is not None:
            on_epoch(epoch)

    return keras.callbacks.LambdaCallback(
        on_train_begin=lambda _logs: INTERRUPTS.check(), on_epoch_end=epoch_end
    )


def train_and_score(
    train: tuple[np.ndarray, np.ndarray],
    scored: tuple[np.ndarray, np.ndarray],
    dataset: Dataset,
    run: tuple[Schedule, OptimizerSpec],
    settings: TrainSettings,
    seed: int,
    on_epoch: Callable[[int], None] | None = None,
) -> tuple[float, float | None]:
    """Train a fresh model of ``dataset``'s shapes on ``train`` (x, y) for ``settings.epochs``
    epochs with ``run``'s schedule (built for that run) and optimizer, then score it once on
    ``scored`` (x, y): its (accuracy, loss), accuracy 0 and loss None when it diverged.
    ``on_epoch(epoch)`` is called as each epoch ends (0-based)."""
    from sweeper.training.train_trial import reset_keras, steps_per_epoch

    reset_keras(seed)
    import keras

    training: list[Any] = []  # the model while it trains, for the stop hook

    def stop() -> None:  # called by the signal handler: fit ends after the batch in progress
        for m in training:
            m.stop_training = True

    with INTERRUPTS.deferred(), INTERRUPTS.on_stop(stop):
        try:
            model = _compiled(
                dataset, run, settings, steps_per_epoch(len(train[0]), settings.batch_size)
            )
            training.append(model)
            model.fit(
                *train,
                batch_size=settings.batch_size,
                epochs=settings.epochs,
                shuffle=True,
                verbose=0,
                callbacks=[_epochs_callback(keras, on_epoch)],
            )
            INTERRUPTS.check()
            scores = model.evaluate(*scored, batch_size=256, verbose=0, return_dict=True)
        finally:
            training.clear()
            model = None
            reset_keras()
    loss = float(scores["loss"])
    accuracy = float(scores["accuracy"])
    return (accuracy if math.isfinite(accuracy) else 0.0), (loss if math.isfinite(loss) else None)


def train_and_test(
    x_train: np.ndarray,
    y_train: np.ndarray,
    dataset: Dataset,
    run: tuple[Schedule, OptimizerSpec],
    settings: TrainSettings,
    seed: int,
) -> tuple[float, float | None]:
    """:func:`train_and_score` on ``(x_train, y_train)``, scored on ``dataset``'s test split."""
    return train_and_score(
        (x_train, y_train), (dataset.x_test, dataset.y_test), dataset, run, settings, seed
    )
