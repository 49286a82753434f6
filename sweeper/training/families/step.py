"""The step family: the tutorials' drop decay by epoch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.schedule_base import Horizon, Schedule, check_in_unit, check_positive
from sweeper.training.schedule_code import KERAS_SCHEDULES, assignment, list_literal, literal


@dataclass(frozen=True)
class StepDecay(Schedule):
    """The tutorial's drop decay by epoch: lr0 * decay_rate ** floor((1 + epoch) / drop_every).

    ``drop_every`` is in epochs (``steps_per_epoch`` steps each), as in the study file.
    Dimensions: ``decay_rate`` (the factor per drop), ``drop_every`` (epochs, kept in epochs).
    """

    family: ClassVar[str] = "step"
    formula: ClassVar[str] = "lr0 * decay_rate ^ floor((1 + epoch) / drop_every)"
    order: ClassVar[int] = 30
    dimensions: ClassVar[tuple[str, ...]] = ("initial_lr", "decay_rate", "drop_every")
    renamed: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"drop": "decay_rate", "epochs_drop": "drop_every"}
    )

    decay_rate: float = 0.5
    drop_every: float = 10.0
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, drop_every=self.drop_every)
        check_in_unit(self.family, "decay_rate", self.decay_rate)
        if int(self.steps_per_epoch) != self.steps_per_epoch or self.steps_per_epoch < 1:
            raise ConfigError(
                f"schedule 'step': steps_per_epoch must be a positive integer, got {self.steps_per_epoch!r}"
            )

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        return cls(
            float(dims["initial_lr"]),
            decay_rate=float(dims.get("decay_rate", 0.5)),
            drop_every=float(dims.get("drop_every", 1.0)),
            steps_per_epoch=steps_per_epoch,
        )

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {"decay_rate": 0.5, "drop_every": 2.0, "steps_per_epoch": max(n_steps // 10, 1)}

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        epoch = np.floor(steps / self.steps_per_epoch)
        return self.initial_lr * self.decay_rate ** np.floor((1.0 + epoch) / self.drop_every)

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"drop_every": horizon.in_epochs(self.drop_every), "steps_per_epoch": horizon.spe}

    def keras(self) -> Any:
        from sweeper.training.keras_schedules import EpochStepDecay

        return EpochStepDecay(
            self.initial_lr, self.decay_rate, self.drop_every, self.steps_per_epoch
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        # Keras has no epoch step decay: the rate's drops within the run, as piecewise constant
        # values (values[i] up to and including step boundaries[i]); the last value holds after it.
        curve = self.curve(total_steps)
        changes = [int(k) for k in np.flatnonzero(curve[1:] != curve[:-1]) + 1]
        note = (
            f"# step decay (x {literal(self.decay_rate)} every {literal(self.drop_every)} epochs "
            f"of {self.steps_per_epoch} steps), its drops over the run's {total_steps} steps"
        )
        if not changes:
            return [note, f"learning_rate = {literal(curve[0])}"]
        return [
            note,
            *assignment(
                "learning_rate",
                f"{KERAS_SCHEDULES}.PiecewiseConstantDecay",
                {
                    "boundaries": list_literal([repr(k - 1) for k in changes]),
                    "values": list_literal(
                        [literal(curve[0]), *(literal(curve[k]) for k in changes)]
                    ),
                },
            ),
        ]
