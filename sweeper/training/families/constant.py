"""The constant family: one rate for the whole run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.training.schedule_base import Schedule, check_positive
from sweeper.training.schedule_code import literal


@dataclass(frozen=True)
class Constant(Schedule):
    family: ClassVar[str] = "constant"
    formula: ClassVar[str] = "lr0"
    order: ClassVar[int] = 10
    dimensions: ClassVar[tuple[str, ...]] = ("initial_lr",)

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr)

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        return cls(float(dims["initial_lr"]))

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {}

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return np.full_like(steps, self.initial_lr)

    def keras(self) -> Any:
        return float(self.initial_lr)

    def learning_rate_code(self, total_steps: int) -> list[str]:
        return [f"learning_rate = {literal(self.initial_lr)}"]
