"""The time family: Keras 2's SGD ``decay`` argument."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.schedule_base import Horizon, Schedule, check_positive
from sweeper.training.schedule_code import KERAS_SCHEDULES, assignment, literal


@dataclass(frozen=True)
class TimeDecay(Schedule):
    """Keras 2's SGD ``decay`` argument: the rate shrinks as 1 / (1 + time_decay * step).

    Dimensions: ``time_decay`` (per step)."""

    family: ClassVar[str] = "time"
    formula: ClassVar[str] = "lr0 / (1 + time_decay * step)"
    order: ClassVar[int] = 20
    dimensions: ClassVar[tuple[str, ...]] = ("initial_lr", "time_decay")
    renamed: ClassVar[Mapping[str, str]] = MappingProxyType({"decay": "time_decay"})

    time_decay: float = 1e-3

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr)
        if not (math.isfinite(self.time_decay) and self.time_decay >= 0):
            raise ConfigError(f"schedule 'time': time_decay must be >= 0, got {self.time_decay!r}")

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        return cls(float(dims["initial_lr"]), time_decay=float(dims.get("time_decay", 0.0)))

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {"time_decay": 10.0 / n_steps}

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return self.initial_lr / (1.0 + self.time_decay * steps)

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        # a rate per step, as the study states it: per step under 'epochs', per share of the
        # run under 'fraction'
        if horizon.rule == "fraction":
            return {"time_decay": self.time_decay * horizon.tuned_steps / horizon.steps}
        return {}

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.InverseTimeDecay(
            self.initial_lr, decay_steps=1, decay_rate=self.time_decay
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        # lr0 / (1 + time_decay * step): InverseTimeDecay with one-step intervals
        return assignment(
            "learning_rate",
            f"{KERAS_SCHEDULES}.InverseTimeDecay",
            {
                "initial_learning_rate": literal(self.initial_lr),
                "decay_steps": "1",
                "decay_rate": literal(self.time_decay),
            },
        )
