"""The wsd family: warmup-stable-decay."""

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
    check_in_unit,
    check_nonneg,
    check_positive,
)
from sweeper.training.schedule_code import warmup_stable_decay_code
from sweeper.training.warmup_decay import (
    COOLDOWN_SHAPES,
    run_end,
    warmup_hold_decay,
    warmup_within,
)


@dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Warmup-stable-decay (Hägele et al., NeurIPS 2024, arXiv 2405.18392): linear warm-up from
    0 over ``warmup_steps``, lr0 held, then a cooldown from ``decay_start`` to ``end_lr`` at step
    ``decay_steps`` shaped ``linear``, ``cosine`` or ``1-sqrt`` (lr0 (1 - sqrt(t)) over the
    cooldown's progress t in [0, 1], the paper's best).

    Dimensions: ``warmup_epochs``, ``end_lr_factor`` (default 0), ``cooldown_fraction`` (the
    cooldown takes that share of the run at its end, never starting inside the warm-up),
    ``cooldown_shape``; the cooldown ends at the run's last update."""

    family: ClassVar[str] = "wsd"
    formula: ClassVar[str] = (
        "lr0 * step / warmup (step < warmup); lr0 until decay_start; then "
        "end_lr + (lr0 - end_lr) * f(t), t = (step - decay_start) / (decay_steps - decay_start), "
        "f = 1 - t | (1 + cos(pi t)) / 2 | 1 - sqrt(t)"
    )
    order: ClassVar[int] = 110
    dimensions: ClassVar[tuple[str, ...]] = (
        "initial_lr",
        "end_lr_factor",
        "warmup_epochs",
        "cooldown_fraction",
        "cooldown_shape",
    )

    decay_steps: float = 10000.0
    decay_start: float = 8000.0
    warmup_steps: float = 0.0
    end_lr: float = 0.0
    cooldown: str = "1-sqrt"

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        check_nonneg(self.family, warmup_steps=self.warmup_steps, decay_start=self.decay_start)
        check_end_lr(self.family, self.end_lr, self.initial_lr)
        if not self.warmup_steps <= self.decay_start <= self.decay_steps:
            raise ConfigError(
                "schedule 'wsd': needs warmup_steps <= decay_start <= decay_steps, got "
                f"{self.warmup_steps!r}, {self.decay_start!r}, {self.decay_steps!r}"
            )
        if self.cooldown not in COOLDOWN_SHAPES:
            raise ConfigError(
                f"schedule 'wsd': cooldown {self.cooldown!r} is not one of "
                f"{', '.join(COOLDOWN_SHAPES)}"
            )

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        lr = float(dims["initial_lr"])
        last, end_lr, warmup = run_end(cls.family, dims, steps_per_epoch, epochs, warmup_first=True)
        fraction = float(dims.get("cooldown_fraction", 0.2))
        check_in_unit(cls.family, "cooldown_fraction", fraction)
        return cls(
            lr,
            decay_steps=last,
            decay_start=max(last - fraction * last, warmup),
            warmup_steps=warmup,
            end_lr=end_lr,
            cooldown=str(dims.get("cooldown_shape", "1-sqrt")),
        )

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        # it ends at the last step drawn, as in a run
        return {
            "decay_steps": float(n_steps - 1),
            "decay_start": (n_steps - 1) * 0.8,
            "warmup_steps": n_steps * 0.05,
            "end_lr": 0.0,
            "cooldown": "1-sqrt",
        }

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return warmup_hold_decay(
            steps,
            self.initial_lr,
            warmup_steps=self.warmup_steps,
            decay_start=self.decay_start,
            decay_steps=self.decay_steps,
            end_lr=self.end_lr,
            profile=self.cooldown,
        )

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        # the cooldown keeps its share of the decay's span, as the study file declares it
        warmup, last = warmup_within(self.family, horizon, self.warmup_steps, self.decay_steps)
        start = max(last * self.decay_start / self.decay_steps, warmup)
        return {"warmup_steps": warmup, "decay_steps": last, "decay_start": start}

    def keras(self) -> Any:
        from sweeper.training.keras_schedules import WarmupStableDecay as KerasWSD

        return KerasWSD(
            self.initial_lr,
            self.decay_steps,
            decay_start=self.decay_start,
            warmup_steps=self.warmup_steps,
            end_learning_rate=self.end_lr,
            profile=self.cooldown,
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        return warmup_stable_decay_code(
            self.initial_lr,
            decay_steps=self.decay_steps,
            decay_start=self.decay_start,
            warmup_steps=self.warmup_steps,
            end_lr=self.end_lr,
            profile=self.cooldown,
        )
