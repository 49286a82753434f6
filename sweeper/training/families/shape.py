"""The shape family: one continuous space of warm-up, hold and polynomial decay."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.schedule_base import Horizon, Schedule, check_in_unit, check_positive
from sweeper.training.schedule_code import warmup_stable_decay_code
from sweeper.training.warmup_decay import run_end, warmup_hold_decay


@dataclass(frozen=True)
class Shape(Schedule):
    """One continuous space of schedules: warm-up, hold, polynomial decay.

    Over the run's steps 0 .. decay_steps: a linear warm-up from 0 over the first
    ``warmup_fraction`` of them, lr0 held over the first ``stable_fraction`` of the rest, then
    lr0 (r + (1 - r) v ** p) with v the decay's remaining fraction, p = ``decay_exponent`` and
    r = ``final_lr_ratio``. Every parameter is continuous and applies to every point, so GP and
    CMA-ES can search it. Points of it: constant (stable_fraction = 1, or final_lr_ratio = 1),
    linear decay (p = 1, stable 0), polynomial decay (Keras's PolynomialDecay), WSD with a linear
    or polynomial cooldown, decay to zero (r = 0). Cosine decay is not a point, but close: the
    best approximation of (1 + cos(pi u)) / 2 is stable_fraction 0.135, decay_exponent 1.34, off
    by at most 4.5% of lr0 (RMS 3.0%; measured on 10,001 points, tests/training/test_schedules.py).

    Dimensions: the four fields but ``decay_steps``, which ends at the run's last update.
    """

    family: ClassVar[str] = "shape"
    formula: ClassVar[str] = (
        "lr0 * step / W (step < W = warmup_fraction * T); lr0 until S = W + stable_fraction * "
        "(T - W); then lr0 * (r + (1 - r) * ((T - step) / (T - S)) ^ decay_exponent), "
        "r = final_lr_ratio, T = decay_steps"
    )
    order: ClassVar[int] = 140
    dimensions: ClassVar[tuple[str, ...]] = (
        "initial_lr",
        "warmup_fraction",
        "stable_fraction",
        "decay_exponent",
        "final_lr_ratio",
    )

    decay_steps: float = 10000.0
    warmup_fraction: float = 0.0
    stable_fraction: float = 0.0
    decay_exponent: float = 1.0
    final_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        check_positive(
            self.family,
            initial_lr=self.initial_lr,
            decay_steps=self.decay_steps,
            decay_exponent=self.decay_exponent,
        )
        if not (math.isfinite(self.warmup_fraction) and 0 <= self.warmup_fraction < 1):
            raise ConfigError(
                f"schedule 'shape': warmup_fraction must lie in [0, 1), got {self.warmup_fraction!r}"
            )
        check_in_unit(self.family, "stable_fraction", self.stable_fraction, closed_low=True)
        check_in_unit(self.family, "final_lr_ratio", self.final_lr_ratio, closed_low=True)

    @property
    def warmup_steps(self) -> float:
        return self.warmup_fraction * self.decay_steps

    @property
    def decay_start(self) -> float:
        w = self.warmup_steps
        return w + self.stable_fraction * (self.decay_steps - w)

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        lr = float(dims["initial_lr"])
        last, _, _ = run_end(cls.family, dims, steps_per_epoch, epochs)
        return cls(
            lr,
            decay_steps=last,
            warmup_fraction=float(dims.get("warmup_fraction", 0.0)),
            stable_fraction=float(dims.get("stable_fraction", 0.0)),
            decay_exponent=float(dims.get("decay_exponent", 1.0)),
            final_lr_ratio=float(dims.get("final_lr_ratio", 0.0)),
        )

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {
            "decay_steps": float(n_steps - 1),  # it ends at the last step drawn
            "warmup_fraction": 0.05,
            "stable_fraction": 0.3,
            "decay_exponent": 1.5,
            "final_lr_ratio": 0.01,
        }

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return warmup_hold_decay(
            steps,
            self.initial_lr,
            warmup_steps=self.warmup_steps,
            decay_start=self.decay_start,
            decay_steps=self.decay_steps,
            end_lr=self.final_lr_ratio * self.initial_lr,
            profile="polynomial",
            exponent=self.decay_exponent,
        )

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"decay_steps": horizon.to_last(self.decay_steps)}  # its fractions: shares

    def keras(self) -> Any:
        from sweeper.training.keras_schedules import WarmupStableDecay as KerasWSD

        return KerasWSD(
            self.initial_lr,
            self.decay_steps,
            decay_start=self.decay_start,
            warmup_steps=self.warmup_steps,
            end_learning_rate=self.final_lr_ratio * self.initial_lr,
            profile="polynomial",
            exponent=self.decay_exponent,
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        return warmup_stable_decay_code(
            self.initial_lr,
            decay_steps=self.decay_steps,
            decay_start=self.decay_start,
            warmup_steps=self.warmup_steps,
            end_lr=self.final_lr_ratio * self.initial_lr,
            profile="polynomial",
            exponent=self.decay_exponent,
        )
