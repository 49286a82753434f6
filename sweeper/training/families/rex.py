"""The rex family: the reflected exponential profile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.training.schedule_base import Horizon, Schedule, check_positive
from sweeper.training.schedule_code import warmup_stable_decay_code
from sweeper.training.warmup_decay import run_end, warmup_hold_decay


@dataclass(frozen=True)
class Rex(Schedule):
    """REX, the reflected exponential profile (Chen, Wolfe & Kyrillidis, "REX: Revisiting
    Budgeted Training with an Improved Schedule", MLSys 2022, arXiv 2107.04197):
    lr = lr0 (1 - z) / (1/2 + (1 - z) / 2) with progress z = step / decay_steps, sampled every
    step; 0 from decay_steps on.

    No dimension but ``initial_lr``: it ends at the run's last update."""

    family: ClassVar[str] = "rex"
    formula: ClassVar[str] = (
        "lr0 * (1 - z) / (1/2 + (1 - z) / 2), z = min(step, decay_steps) / decay_steps"
    )
    order: ClassVar[int] = 130
    dimensions: ClassVar[tuple[str, ...]] = ("initial_lr",)

    decay_steps: float = 10000.0

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        lr = float(dims["initial_lr"])
        last, _, _ = run_end(cls.family, dims, steps_per_epoch, epochs)
        return cls(lr, decay_steps=last)

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {"decay_steps": float(n_steps - 1)}  # it ends at the last step drawn

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return warmup_hold_decay(
            steps,
            self.initial_lr,
            warmup_steps=0.0,
            decay_start=0.0,
            decay_steps=self.decay_steps,
            end_lr=0.0,
            profile="rex",
        )

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"decay_steps": horizon.to_last(self.decay_steps)}

    def keras(self) -> Any:
        from sweeper.training.keras_schedules import WarmupStableDecay as KerasWSD

        return KerasWSD(self.initial_lr, self.decay_steps, profile="rex")

    def learning_rate_code(self, total_steps: int) -> list[str]:
        return warmup_stable_decay_code(
            self.initial_lr,
            decay_steps=self.decay_steps,
            decay_start=0.0,
            warmup_steps=0.0,
            end_lr=0.0,
            profile="rex",
        )
