"""The linear family: a linear warm-up, then a linear decay to the run's end."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.schedule_base import (
    Horizon,
    Schedule,
    check_end_lr,
    check_nonneg,
    check_positive,
)
from sweeper.training.schedule_code import warmup_stable_decay_code
from sweeper.training.warmup_decay import run_end, warmup_hold_decay, warmup_within


@dataclass(frozen=True)
class Linear(Schedule):
    """Linear warm-up from 0 over ``warmup_steps`` (0: none), then linear decay to ``end_lr`` at
    step ``decay_steps`` (0: decay to zero, Defazio et al. 2023, arXiv 2310.07831; Bergsma et
    al., ICLR 2025, arXiv 2502.15938).

    Dimensions: ``warmup_epochs``, ``end_lr_factor`` (end_lr = initial_lr * end_lr_factor,
    default 0); the decay ends at the run's last update."""

    family: ClassVar[str] = "linear"
    formula: ClassVar[str] = (
        "lr0 * step / warmup (step < warmup); then "
        "end_lr + (lr0 - end_lr) * (decay_steps - step) / (decay_steps - warmup); "
        "end_lr after decay_steps"
    )
    order: ClassVar[int] = 100
    dimensions: ClassVar[tuple[str, ...]] = ("initial_lr", "end_lr_factor", "warmup_epochs")

    decay_steps: float = 10000.0
    end_lr: float = 0.0
    warmup_steps: float = 0.0

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        check_nonneg(self.family, warmup_steps=self.warmup_steps)
        check_end_lr(self.family, self.end_lr, self.initial_lr)
        if self.warmup_steps >= self.decay_steps:
            raise ConfigError(
                f"schedule 'linear': warmup_steps ({self.warmup_steps!r}) must be shorter than "
                f"decay_steps ({self.decay_steps!r}); shorten the warm-up"
            )

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        lr = float(dims["initial_lr"])
        last, end_lr, warmup = run_end(cls.family, dims, steps_per_epoch, epochs, warmup_first=True)
        return cls(lr, decay_steps=last, end_lr=end_lr, warmup_steps=warmup)

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        # it ends at the last step drawn, as in a run
        return {"decay_steps": float(n_steps - 1), "end_lr": 0.0, "warmup_steps": n_steps * 0.05}

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return warmup_hold_decay(
            steps,
            self.initial_lr,
            warmup_steps=self.warmup_steps,
            decay_start=self.warmup_steps,
            decay_steps=self.decay_steps,
            end_lr=self.end_lr,
            profile="linear",
        )

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        warmup, last = warmup_within(self.family, horizon, self.warmup_steps, self.decay_steps)
        return {"warmup_steps": warmup, "decay_steps": last}

    def keras(self) -> Any:
        # Keras's PolynomialDecay(power=1) is this schedule without a warm-up, but it computes
        # 1 - step / decay_steps in float32 and so loses the relative precision of the last
        # steps of a decay to zero; the keras.ops schedule keeps it.
        from sweeper.training.keras_schedules import WarmupStableDecay as KerasWSD

        return KerasWSD(
            self.initial_lr,
            self.decay_steps,
            decay_start=self.warmup_steps,
            warmup_steps=self.warmup_steps,
            end_learning_rate=self.end_lr,
            profile="linear",
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        return warmup_stable_decay_code(
            self.initial_lr,
            decay_steps=self.decay_steps,
            decay_start=self.warmup_steps,
            warmup_steps=self.warmup_steps,
            end_lr=self.end_lr,
            profile="linear",
        )
