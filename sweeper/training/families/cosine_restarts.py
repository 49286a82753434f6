"""The cosine_restarts family (SGDR): Keras's CosineDecayRestarts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.training.schedule_base import (
    Horizon,
    Schedule,
    check_in_unit,
    check_positive,
    interval_in_steps,
)
from sweeper.training.schedule_code import KERAS_SCHEDULES, assignment, literal


@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """SGDR: cosine decay restarted after first_decay_steps, periods times t_mul, peaks times m_mul.

    Dimensions: ``restart_epochs`` (the first period), ``t_mul``, ``m_mul``, ``alpha``.
    """

    family: ClassVar[str] = "cosine_restarts"
    formula: ClassVar[str] = (
        "lr0 * ((1 - alpha) * 0.5 * m_mul^i * (1 + cos(pi * f)) + alpha), "
        "i = restart index, f = fraction of period i done"
    )
    order: ClassVar[int] = 90
    dimensions: ClassVar[tuple[str, ...]] = (
        "initial_lr",
        "alpha",
        "restart_epochs",
        "t_mul",
        "m_mul",
    )

    first_decay_steps: float = 1000.0
    t_mul: float = 2.0
    m_mul: float = 1.0
    alpha: float = 0.0

    def __post_init__(self) -> None:
        check_positive(
            self.family,
            initial_lr=self.initial_lr,
            first_decay_steps=self.first_decay_steps,
            t_mul=self.t_mul,
        )
        check_in_unit(self.family, "m_mul", self.m_mul)
        check_in_unit(self.family, "alpha", self.alpha, closed_low=True)

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        return cls(
            float(dims["initial_lr"]),
            first_decay_steps=interval_in_steps(dims, steps_per_epoch, "restart_epochs", 1.0),
            t_mul=float(dims.get("t_mul", 2.0)),
            m_mul=float(dims.get("m_mul", 1.0)),
            alpha=float(dims.get("alpha", 0.0)),
        )

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {"first_decay_steps": n_steps / 7, "t_mul": 2.0, "m_mul": 0.8}

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        frac = steps / self.first_decay_steps
        if self.t_mul == 1.0:
            i = np.floor(frac)
            frac = frac - i
        else:
            t = self.t_mul

            def start(k: np.ndarray) -> np.ndarray:  # where period k begins, in first periods
                return (1.0 - t**k) / (1.0 - t)

            i = np.floor(np.log(1.0 - frac * (1.0 - t)) / np.log(t))
            # The closed form can land one period off at a restart through rounding: correct it.
            i = np.where(frac < start(i), i - 1, i)
            i = np.where(frac >= start(i + 1), i + 1, i)
            frac = (frac - start(i)) / t**i
        cosine = 0.5 * self.m_mul**i * (1.0 + np.cos(np.pi * frac))
        return self.initial_lr * ((1.0 - self.alpha) * cosine + self.alpha)

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"first_decay_steps": horizon.interval(self.first_decay_steps)}

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.CosineDecayRestarts(
            self.initial_lr,
            self.first_decay_steps,
            t_mul=self.t_mul,
            m_mul=self.m_mul,
            alpha=self.alpha,
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        return assignment(
            "learning_rate",
            f"{KERAS_SCHEDULES}.CosineDecayRestarts",
            {
                "initial_learning_rate": literal(self.initial_lr),
                "first_decay_steps": literal(self.first_decay_steps),
                "t_mul": literal(self.t_mul),
                "m_mul": literal(self.m_mul),
                "alpha": literal(self.alpha),
            },
        )
