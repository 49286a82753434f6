"""Optimizers as a search dimension: SGD (momentum, Nesterov), the adaptive methods, and the
schedule-free SGD and AdamW of :mod:`sweeper.training.schedule_free` (which replace the schedule: they
run with the constant family and their own linear warm-up)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sweeper.errors import ConfigError

SCHEDULE_FREE: tuple[str, ...] = ("sgd_schedule_free", "adamw_schedule_free")
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "rmsprop", "adagrad", "adadelta", *SCHEDULE_FREE)


@dataclass(frozen=True)
class OptimizerSpec:
    name: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False
    warmup: float = 0.0  # schedule-free only: linear warm-up over this share of the run

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.name!r}; choose one of: {', '.join(OPTIMIZERS)}"
            )
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise ConfigError(f"optimizer momentum must lie in [0, 1), got {self.momentum!r}")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("optimizer: nesterov needs a momentum > 0")
        if not (math.isfinite(self.warmup) and 0 <= self.warmup < 1):
            raise ConfigError(f"optimizer warm-up must lie in [0, 1), got {self.warmup!r}")

    @property
    def schedule_free(self) -> bool:
        return self.name in SCHEDULE_FREE

    def describe(self) -> str:
        if self.schedule_free:
            return f"{self.name}(warmup={self.warmup:g})" if self.warmup else self.name
        if self.name != "sgd" or self.momentum == 0:
            return self.name
        return f"sgd(momentum={self.momentum:g}{', nesterov' if self.nesterov else ''})"

    @classmethod
    def parse(cls, text: str) -> OptimizerSpec:
        """The spec :meth:`describe` wrote as ``text`` (``sgd(momentum=0.9, nesterov)``,
        ``adam``, ``sgd_schedule_free(warmup=0.05)``); its numbers carry ``describe``'s 6
        significant digits."""
        name, _, rest = text.strip().partition("(")
        fields: dict[str, Any] = {"name": name.strip()}
        for part in filter(None, (p.strip() for p in rest.rstrip(")").split(","))):
            key, eq, value = part.partition("=")
            if key == "nesterov" and not eq:
                fields["nesterov"] = True
            elif key in ("momentum", "warmup") and eq:
                try:
                    fields[key] = float(value)
                except ValueError:
                    raise ConfigError(f"optimizer {text!r}: {key} is not a number") from None
            else:
                raise ConfigError(f"optimizer {text!r}: unknown setting {part!r}")
        return cls(**fields)

    def build(self, learning_rate: Any, total_steps: int | None = None) -> Any:
        """A Keras optimizer applying ``learning_rate`` (a float or a LearningRateSchedule).

        ``total_steps``, the run's optimizer updates, sets the length of a schedule-free
        optimizer's warm-up (none without it).
        """
        import keras

        if self.schedule_free:
            from sweeper.training.schedule_free import AdamWScheduleFree, SGDScheduleFree

            cls = SGDScheduleFree if self.name == "sgd_schedule_free" else AdamWScheduleFree
            warmup = round(self.warmup * total_steps) if total_steps else 0
            return cls(learning_rate=learning_rate, warmup_steps=warmup)
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

    def callbacks(self) -> list[Any]:
        """The Keras callbacks ``fit`` needs with this optimizer: a schedule-free one is
        evaluated at its averaged point (see :mod:`sweeper.training.schedule_free`)."""
        if not self.schedule_free:
            return []
        from sweeper.training.schedule_free import EvaluateAtAverage

        return [EvaluateAtAverage()]
