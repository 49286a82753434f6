"""Optimizers as a search dimension: SGD (momentum, Nesterov) and the adaptive methods."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sweeper.errors import ConfigError

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "rmsprop", "adagrad", "adadelta")


@dataclass(frozen=True)
class OptimizerSpec:
    name: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.name!r}; choose one of: {', '.join(OPTIMIZERS)}"
            )
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise ConfigError(f"optimizer momentum must lie in [0, 1), got {self.momentum!r}")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("optimizer: nesterov needs a momentum > 0")

    def describe(self) -> str:
        if self.name != "sgd" or self.momentum == 0:
            return self.name
        return f"sgd(momentum={self.momentum:g}{', nesterov' if self.nesterov else ''})"

    def build(self, learning_rate: Any) -> Any:
        """A Keras optimizer applying ``learning_rate`` (a float or a LearningRateSchedule)."""
        import keras

        if self.name == "sgd":
            return keras.optimizers.SGD(
                learning_rate=learning_rate, momentum=self.momentum, nesterov=self.nesterov
            )
        cls = {
            "adam": keras.optimizers.Adam,
            "rmsprop": keras.optimizers.RMSprop,
            "adagrad": keras.optimizers.Adagrad,
            "adadelta": keras.optimizers.Adadelta,
        }[self.name]
        return cls(learning_rate=learning_rate)
