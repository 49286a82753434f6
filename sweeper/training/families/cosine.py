"""The cosine family: Keras's CosineDecay, with its optional linear warm-up."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.schedule_base import (
    Horizon,
    Schedule,
    check_in_unit,
    check_positive,
    interval_in_steps,
)
from sweeper.training.schedule_code import KERAS_SCHEDULES, assignment, literal


@dataclass(frozen=True)
class Cosine(Schedule):
    """Optional linear warm-up from 0 to lr0 over warmup_steps, then cosine decay to alpha * lr0.

    Dimensions: ``alpha``, ``warmup_epochs``. After the warm-up it decays over the rest of the
    run unless ``decay_epochs`` (or a baseline's ``decay_steps``) is given.
    """

    family: ClassVar[str] = "cosine"
    formula: ClassVar[str] = (
        "lr0 * step / warmup (step < warmup); then "
        "lr0 * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t, decay_steps) / decay_steps)) + alpha), "
        "t = step - warmup"
    )
    order: ClassVar[int] = 80
    dimensions: ClassVar[tuple[str, ...]] = ("initial_lr", "alpha", "warmup_epochs")

    decay_steps: float = 10000.0
    alpha: float = 0.0
    warmup_steps: float = 0.0

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        check_in_unit(self.family, "alpha", self.alpha, closed_low=True)
        if not (math.isfinite(self.warmup_steps) and self.warmup_steps >= 0):
            raise ConfigError(
                f"schedule 'cosine': warmup_steps must be >= 0, got {self.warmup_steps!r}"
            )

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        lr = float(dims["initial_lr"])
        warmup_epochs = float(dims.get("warmup_epochs", 0.0))
        rest = max(float(epochs) - warmup_epochs, 1.0)  # after the warm-up, the rest of the run
        return cls(
            lr,
            decay_steps=interval_in_steps(dims, steps_per_epoch, "decay_epochs", rest),
            alpha=float(dims.get("alpha", 0.0)),
            warmup_steps=warmup_epochs * steps_per_epoch,
        )

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {"decay_steps": n_steps * 0.95, "alpha": 0.0, "warmup_steps": n_steps * 0.05}

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        t = np.minimum(np.maximum(steps - self.warmup_steps, 0.0), self.decay_steps)
        decayed = (1.0 - self.alpha) * 0.5 * (1.0 + np.cos(np.pi * t / self.decay_steps))
        out = self.initial_lr * (decayed + self.alpha)
        if self.warmup_steps > 0:
            warm = steps < self.warmup_steps
            out = np.where(warm, self.initial_lr * steps / self.warmup_steps, out)
        return out

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        warmup = horizon.interval(self.warmup_steps)
        end = horizon.to_end(self.warmup_steps + self.decay_steps)
        if end - warmup < 1:
            end = horizon.interval(self.warmup_steps + self.decay_steps)
        return {"warmup_steps": warmup, "decay_steps": max(end - warmup, 1.0)}

    def keras(self) -> Any:
        import keras

        if self.warmup_steps > 0:
            return keras.optimizers.schedules.CosineDecay(
                0.0,
                self.decay_steps,
                alpha=self.alpha,
                warmup_target=self.initial_lr,
                warmup_steps=self.warmup_steps,
            )
        return keras.optimizers.schedules.CosineDecay(
            self.initial_lr, self.decay_steps, alpha=self.alpha
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        if self.warmup_steps > 0:
            # Keras's warm-up: linear from initial_learning_rate (0) to warmup_target
            args = {
                "initial_learning_rate": "0.0",
                "decay_steps": literal(self.decay_steps),
                "alpha": literal(self.alpha),
                "warmup_target": literal(self.initial_lr),
                "warmup_steps": literal(self.warmup_steps),
            }
        else:
            args = {
                "initial_learning_rate": literal(self.initial_lr),
                "decay_steps": literal(self.decay_steps),
                "alpha": literal(self.alpha),
            }
        return assignment("learning_rate", f"{KERAS_SCHEDULES}.CosineDecay", args)
