"""The inverse_time family: Keras's InverseTimeDecay."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.schedule_base import Horizon, Schedule, check_positive, interval_in_steps
from sweeper.training.schedule_code import KERAS_SCHEDULES, assignment, literal


@dataclass(frozen=True)
class InverseTime(Schedule):
    """Dimensions: ``decay_rate`` (the rate), ``drop_every`` (epochs: ``decay_steps``),
    ``staircase``."""

    family: ClassVar[str] = "inverse_time"
    formula: ClassVar[str] = (
        "lr0 / (1 + rate * step / decay_steps)   (floor of step / decay_steps if staircase)"
    )
    order: ClassVar[int] = 70
    dimensions: ClassVar[tuple[str, ...]] = ("initial_lr", "decay_rate", "drop_every", "staircase")

    decay_steps: float = 1000.0
    decay_rate: float = 0.5
    staircase: bool = False

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        if not (math.isfinite(self.decay_rate) and self.decay_rate >= 0):
            raise ConfigError(
                f"schedule 'inverse_time': decay_rate must be >= 0, got {self.decay_rate!r}"
            )

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        return cls(
            float(dims["initial_lr"]),
            decay_steps=interval_in_steps(dims, steps_per_epoch, "drop_every", 1.0),
            decay_rate=float(dims.get("decay_rate", 0.5)),
            staircase=bool(dims.get("staircase", False)),
        )

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {"decay_steps": max(n_steps / 10, 1.0), "decay_rate": 1.0, "staircase": True}

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        p = steps / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return self.initial_lr / (1.0 + self.decay_rate * p)

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"decay_steps": horizon.interval(self.decay_steps)}

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.InverseTimeDecay(
            self.initial_lr, self.decay_steps, self.decay_rate, staircase=self.staircase
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        return assignment(
            "learning_rate",
            f"{KERAS_SCHEDULES}.InverseTimeDecay",
            {
                "initial_learning_rate": literal(self.initial_lr),
                "decay_steps": literal(self.decay_steps),
                "decay_rate": literal(self.decay_rate),
                "staircase": repr(bool(self.staircase)),
            },
        )
