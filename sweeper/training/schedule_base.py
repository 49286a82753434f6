"""The base of the learning-rate schedule families (:mod:`sweeper.training.schedules`).

:class:`Schedule` is a frozen dataclass over optimizer steps that gives its rate in NumPy
(``rates``, ``lr_at``, ``curve``), builds its Keras schedule (``keras``) and describes itself
(``to_dict``, ``describe``); the ``check_*`` functions are the one-line checks the families'
fields go through.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from sweeper.errors import ConfigError


def check_positive(family: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(
                f"schedule '{family}': {name} must be a positive number, got {value!r}"
            )


def check_in_unit(family: str, name: str, value: float, *, closed_low: bool = False) -> None:
    ok = (0 <= value <= 1) if closed_low else (0 < value <= 1)
    if not ok:
        rng = "[0, 1]" if closed_low else "(0, 1]"
        raise ConfigError(f"schedule '{family}': {name} must lie in {rng}, got {value!r}")


@dataclass(frozen=True)
class Schedule:
    """Base class: a learning-rate schedule over optimizer steps."""

    family: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    # fields stored under an earlier name, old -> new: ``from_dict`` reads old stores through it
    renamed: ClassVar[Mapping[str, str]] = MappingProxyType({})

    initial_lr: float

    def _rates(self, steps: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def rates(self, steps: np.ndarray | list[int] | range) -> np.ndarray:
        """The learning rate at each of ``steps`` (float64)."""
        return np.asarray(self._rates(np.asarray(steps, dtype=np.float64)), dtype=np.float64)

    def lr_at(self, step: int) -> float:
        """The learning rate applied in update number ``step`` (0-based)."""
        return float(self.rates(np.array([step]))[0])

    def curve(self, n_steps: int) -> np.ndarray:
        """The learning rate of steps ``0 .. n_steps - 1``."""
        return self.rates(np.arange(n_steps))

    def keras(self) -> Any:
        """The Keras object the optimizer takes as ``learning_rate`` (imports Keras)."""
        raise NotImplementedError  # pragma: no cover - every family overrides it

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description; ``from_dict(s.to_dict()) == s``."""
        out: dict[str, Any] = {"family": self.family}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def describe(self) -> str:
        """One line such as ``exponential(initial_lr=0.001, decay_steps=500, ...)``."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):
                value = f"{value:.4g}"
            elif isinstance(value, tuple):
                value = (
                    "("
                    + ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
                    + ")"
                )
            parts.append(f"{f.name}={value}")
        return f"{self.family}({', '.join(parts)})"


def check_nonneg(family: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"schedule '{family}': {name} must be >= 0, got {value!r}")


def check_end_lr(family: str, end_lr: float, initial_lr: float) -> None:
    if not (math.isfinite(end_lr) and 0 <= end_lr <= initial_lr):
        raise ConfigError(
            f"schedule '{family}': end_lr must lie in [0, initial_lr={initial_lr!r}], "
            f"got {end_lr!r}"
        )
