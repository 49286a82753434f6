"""The one_cycle family: Smith's 1cycle as PyTorch's OneCycleLR computes it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.schedule_base import Horizon, Schedule, check_positive
from sweeper.training.schedule_code import one_cycle_code
from sweeper.training.warmup_decay import run_end


@dataclass(frozen=True)
class OneCycle(Schedule):
    """Smith's 1cycle as PyTorch's ``OneCycleLR`` (cosine annealing, two phases) computes it.

    ``initial_lr`` is the peak (PyTorch's ``max_lr``). The rate rises from lr0 / div_factor at
    step 0 to lr0 at step pct_start * total_steps - 1, then falls to
    lr0 / (div_factor * final_div_factor) at step total_steps - 1, both halves along a cosine:
    anneal(a, b, p) = b + (a - b) (1 + cos(pi p)) / 2.

    Dimensions: ``pct_start``, ``div_factor``, ``final_div_factor`` (PyTorch's defaults 0.3,
    25, 1e4); it ends at the run's last update.
    """

    family: ClassVar[str] = "one_cycle"
    formula: ClassVar[str] = (
        "anneal(lr0 / div, lr0, step / e1) for step <= e1 = pct_start * total_steps - 1; then "
        "anneal(lr0, lr0 / (div * final_div), (step - e1) / (total_steps - 1 - e1)); "
        "anneal(a, b, p) = b + (a - b) * (1 + cos(pi p)) / 2"
    )
    order: ClassVar[int] = 120
    dimensions: ClassVar[tuple[str, ...]] = (
        "initial_lr",
        "pct_start",
        "div_factor",
        "final_div_factor",
    )

    total_steps: float = 10000.0
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    def __post_init__(self) -> None:
        check_positive(
            self.family,
            initial_lr=self.initial_lr,
            total_steps=self.total_steps,
            div_factor=self.div_factor,
            final_div_factor=self.final_div_factor,
        )
        if not (math.isfinite(self.pct_start) and 0 < self.pct_start < 1):
            raise ConfigError(
                f"schedule 'one_cycle': pct_start must lie in (0, 1), got {self.pct_start!r}"
            )
        if not 0 < self.warmup_end < self.total_steps - 1:
            raise ConfigError(
                f"schedule 'one_cycle': the warm-up must end inside the run: pct_start * "
                f"total_steps - 1 = {self.warmup_end:g} must lie in (0, {self.total_steps - 1:g}); "
                "raise pct_start or train longer"
            )

    @property
    def warmup_end(self) -> float:
        """The step at which the peak is reached (PyTorch's first phase's end_step)."""
        return self.pct_start * self.total_steps - 1

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        lr = float(dims["initial_lr"])
        last, _, _ = run_end(cls.family, dims, steps_per_epoch, epochs)
        return cls(
            lr,
            total_steps=last + 1,
            pct_start=float(dims.get("pct_start", 0.3)),
            div_factor=float(dims.get("div_factor", 25.0)),
            final_div_factor=float(dims.get("final_div_factor", 1e4)),
        )

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {"total_steps": float(n_steps), "pct_start": 0.3}

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        start = self.initial_lr / self.div_factor
        end = start / self.final_div_factor
        e1, e2 = self.warmup_end, self.total_steps - 1
        # anneal written from its low end, sin^2 form: exact at both ends in float32 too
        up = (
            start + (self.initial_lr - start) * np.sin(0.5 * np.pi * np.clip(steps / e1, 0, 1)) ** 2
        )
        q = np.clip((e2 - steps) / (e2 - e1), 0.0, 1.0)
        down = end + (self.initial_lr - end) * np.sin(0.5 * np.pi * q) ** 2
        return np.where(steps <= e1, up, down)

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"total_steps": horizon.to_end(self.total_steps)}  # pct_start: a share

    def keras(self) -> Any:
        from sweeper.training.keras_schedules import OneCycle as KerasOneCycle

        return KerasOneCycle(
            self.initial_lr,
            self.total_steps,
            pct_start=self.pct_start,
            div_factor=self.div_factor,
            final_div_factor=self.final_div_factor,
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        return one_cycle_code(
            self.initial_lr,
            total_steps=self.total_steps,
            pct_start=self.pct_start,
            div_factor=self.div_factor,
            final_div_factor=self.final_div_factor,
        )
