"""The polynomial family: Keras's PolynomialDecay."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.schedule_base import Horizon, Schedule, check_positive, interval_in_steps
from sweeper.training.schedule_code import KERAS_SCHEDULES, assignment, literal


@dataclass(frozen=True)
class Polynomial(Schedule):
    """Dimensions: ``power``, ``end_lr_factor`` (end_lr = initial_lr * end_lr_factor, default
    0.01). It decays over the whole run unless ``decay_epochs`` (or a baseline's
    ``decay_steps``) is given."""

    family: ClassVar[str] = "polynomial"
    formula: ClassVar[str] = (
        "(lr0 - end_lr) * (1 - min(step, decay_steps) / decay_steps) ^ power + end_lr"
    )
    order: ClassVar[int] = 60
    dimensions: ClassVar[tuple[str, ...]] = ("initial_lr", "power", "end_lr_factor")

    decay_steps: float = 10000.0
    end_lr: float = 1e-4
    power: float = 1.0

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        check_positive(self.family, power=self.power)
        if not (0 <= self.end_lr <= self.initial_lr):
            raise ConfigError(
                f"schedule 'polynomial': end_lr must lie in [0, initial_lr={self.initial_lr!r}], "
                f"got {self.end_lr!r}"
            )

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        lr = float(dims["initial_lr"])
        return cls(
            lr,
            decay_steps=interval_in_steps(dims, steps_per_epoch, "decay_epochs", float(epochs)),
            end_lr=float(dims["end_lr"])
            if "end_lr" in dims
            else lr * float(dims.get("end_lr_factor", 0.01)),
            power=float(dims.get("power", 1.0)),
        )

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {"decay_steps": float(n_steps), "end_lr": initial_lr * 0.01, "power": 2.0}

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        p = np.minimum(steps, self.decay_steps) / self.decay_steps
        return (self.initial_lr - self.end_lr) * (1.0 - p) ** self.power + self.end_lr

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"decay_steps": horizon.to_end(self.decay_steps)}

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.PolynomialDecay(
            self.initial_lr, self.decay_steps, self.end_lr, power=self.power
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        return assignment(
            "learning_rate",
            f"{KERAS_SCHEDULES}.PolynomialDecay",
            {
                "initial_learning_rate": literal(self.initial_lr),
                "decay_steps": literal(self.decay_steps),
                "end_learning_rate": literal(self.end_lr),
                "power": literal(self.power),
            },
        )
