"""The classic schedule families: constant, the decays Keras ships (time, step, exponential,
piecewise, polynomial, inverse time, cosine with or without restarts).

Each is a :class:`~sweeper.training.schedule_base.Schedule` whose fields are in optimizer steps; see
:mod:`sweeper.training.schedules` for the step convention and how a study's dimensions build them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.schedule_base import Horizon, Schedule, check_in_unit, check_positive


@dataclass(frozen=True)
class Constant(Schedule):
    family: ClassVar[str] = "constant"
    formula: ClassVar[str] = "lr0"

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr)

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return np.full_like(steps, self.initial_lr)

    def keras(self) -> Any:
        return float(self.initial_lr)


@dataclass(frozen=True)
class TimeDecay(Schedule):
    """Keras 2's SGD ``decay`` argument: the rate shrinks as 1 / (1 + time_decay * step)."""

    family: ClassVar[str] = "time"
    formula: ClassVar[str] = "lr0 / (1 + time_decay * step)"
    renamed: ClassVar[Mapping[str, str]] = MappingProxyType({"decay": "time_decay"})

    time_decay: float = 1e-3

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr)
        if not (math.isfinite(self.time_decay) and self.time_decay >= 0):
            raise ConfigError(f"schedule 'time': time_decay must be >= 0, got {self.time_decay!r}")

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return self.initial_lr / (1.0 + self.time_decay * steps)

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        # a rate per step, as the study states it: per step under 'epochs', per share of the
        # run under 'fraction'
        if horizon.rule == "fraction":
            return {"time_decay": self.time_decay * horizon.tuned_steps / horizon.steps}
        return {}

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.InverseTimeDecay(
            self.initial_lr, decay_steps=1, decay_rate=self.time_decay
        )


@dataclass(frozen=True)
class StepDecay(Schedule):
    """The tutorial's drop decay by epoch: lr0 * decay_rate ** floor((1 + epoch) / drop_every).

    ``drop_every`` is in epochs (``steps_per_epoch`` steps each), as in the study file.
    """

    family: ClassVar[str] = "step"
    formula: ClassVar[str] = "lr0 * decay_rate ^ floor((1 + epoch) / drop_every)"
    renamed: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"drop": "decay_rate", "epochs_drop": "drop_every"}
    )

    decay_rate: float = 0.5
    drop_every: float = 10.0
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, drop_every=self.drop_every)
        check_in_unit(self.family, "decay_rate", self.decay_rate)
        if int(self.steps_per_epoch) != self.steps_per_epoch or self.steps_per_epoch < 1:
            raise ConfigError(
                f"schedule 'step': steps_per_epoch must be a positive integer, got {self.steps_per_epoch!r}"
            )

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        epoch = np.floor(steps / self.steps_per_epoch)
        return self.initial_lr * self.decay_rate ** np.floor((1.0 + epoch) / self.drop_every)

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"drop_every": horizon.in_epochs(self.drop_every), "steps_per_epoch": horizon.spe}

    def keras(self) -> Any:
        from sweeper.training.keras_schedules import EpochStepDecay

        return EpochStepDecay(
            self.initial_lr, self.decay_rate, self.drop_every, self.steps_per_epoch
        )


@dataclass(frozen=True)
class Exponential(Schedule):
    family: ClassVar[str] = "exponential"
    formula: ClassVar[str] = (
        "lr0 * rate ^ (step / decay_steps)   (floor of the exponent if staircase)"
    )

    decay_steps: float = 1000.0
    decay_rate: float = 0.96
    staircase: bool = False

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        check_positive(self.family, decay_rate=self.decay_rate)

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        p = steps / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return self.initial_lr * self.decay_rate**p

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"decay_steps": horizon.interval(self.decay_steps)}

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.ExponentialDecay(
            self.initial_lr, self.decay_steps, self.decay_rate, staircase=self.staircase
        )


@dataclass(frozen=True)
class Piecewise(Schedule):
    """values[0] up to and including step boundaries[0], values[i] on (boundaries[i-1], boundaries[i]]."""

    family: ClassVar[str] = "piecewise"
    formula: ClassVar[str] = "values[i] for boundaries[i-1] < step <= boundaries[i]"

    boundaries: tuple[int, ...] = ()
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "boundaries", tuple(int(b) for b in self.boundaries))
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        if not self.values:
            object.__setattr__(self, "values", (float(self.initial_lr),))
        if len(self.values) != len(self.boundaries) + 1:
            raise ConfigError(
                "schedule 'piecewise': values must have one more entry than boundaries, "
                f"got {len(self.values)} values for {len(self.boundaries)} boundaries"
            )
        if any(b2 <= b1 for b1, b2 in zip(self.boundaries, self.boundaries[1:], strict=False)):
            raise ConfigError(
                f"schedule 'piecewise': boundaries must increase, got {list(self.boundaries)}"
            )
        check_positive(self.family, **{f"values[{i}]": v for i, v in enumerate(self.values)})
        if self.values[0] != self.initial_lr:
            raise ConfigError(
                f"schedule 'piecewise': values[0] ({self.values[0]!r}) must equal initial_lr "
                f"({self.initial_lr!r})"
            )

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        index = np.searchsorted(np.asarray(self.boundaries, dtype=np.float64), steps, side="left")
        return np.asarray(self.values, dtype=np.float64)[index]

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        # each drop at the same share of the run (or epoch); drops that would fall on one step
        # of a much shorter run are one step apart
        bounds: list[int] = []
        for b in self.boundaries:
            bounds.append(max(horizon.boundary(b), bounds[-1] + 1 if bounds else 0))
        return {"boundaries": tuple(bounds)}

    def keras(self) -> Any:
        import keras

        if not self.boundaries:
            return float(self.initial_lr)
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            list(self.boundaries), list(self.values)
        )


@dataclass(frozen=True)
class Polynomial(Schedule):
    family: ClassVar[str] = "polynomial"
    formula: ClassVar[str] = (
        "(lr0 - end_lr) * (1 - min(step, decay_steps) / decay_steps) ^ power + end_lr"
    )

    decay_steps: float = 10000.0
    end_lr: float = 1e-4
    power: float = 1.0

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        check_positive(self.family, power=self.power)
        if not (0 <= self.end_lr <= self.initial_lr):
            raise ConfigError(
                f"schedule 'polynomial': end_lr must lie in [0, initial_lr={self.initial_lr!r}], "
                f"got {self.end_lr!r}"
            )

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        p = np.minimum(steps, self.decay_steps) / self.decay_steps
        return (self.initial_lr - self.end_lr) * (1.0 - p) ** self.power + self.end_lr

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"decay_steps": horizon.to_end(self.decay_steps)}

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.PolynomialDecay(
            self.initial_lr, self.decay_steps, self.end_lr, power=self.power
        )


@dataclass(frozen=True)
class InverseTime(Schedule):
    family: ClassVar[str] = "inverse_time"
    formula: ClassVar[str] = (
        "lr0 / (1 + rate * step / decay_steps)   (floor of step / decay_steps if staircase)"
    )

    decay_steps: float = 1000.0
    decay_rate: float = 0.5
    staircase: bool = False

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        if not (math.isfinite(self.decay_rate) and self.decay_rate >= 0):
            raise ConfigError(
                f"schedule 'inverse_time': decay_rate must be >= 0, got {self.decay_rate!r}"
            )

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        p = steps / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return self.initial_lr / (1.0 + self.decay_rate * p)

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"decay_steps": horizon.interval(self.decay_steps)}

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.InverseTimeDecay(
            self.initial_lr, self.decay_steps, self.decay_rate, staircase=self.staircase
        )


@dataclass(frozen=True)
class Cosine(Schedule):
    """Optional linear warm-up from 0 to lr0 over warmup_steps, then cosine decay to alpha * lr0."""

    family: ClassVar[str] = "cosine"
    formula: ClassVar[str] = (
        "lr0 * step / warmup (step < warmup); then "
        "lr0 * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t, decay_steps) / decay_steps)) + alpha), "
        "t = step - warmup"
    )

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


@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """SGDR: cosine decay restarted after first_decay_steps, periods times t_mul, peaks times m_mul."""

    family: ClassVar[str] = "cosine_restarts"
    formula: ClassVar[str] = (
        "lr0 * ((1 - alpha) * 0.5 * m_mul^i * (1 + cos(pi * f)) + alpha), "
        "i = restart index, f = fraction of period i done"
    )

    first_decay_steps: float = 1000.0
    t_mul: float = 2.0
    m_mul: float = 1.0
    alpha: float = 0.0

    def __post_init__(self) -> None:
        check_positive(
            self.family,
            initial_lr=self.initial_lr,
            first_decay_steps=self.first_decay_steps,
            t_mul=self.t_mul,
        )
        check_in_unit(self.family, "m_mul", self.m_mul)
        check_in_unit(self.family, "alpha", self.alpha, closed_low=True)

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        frac = steps / self.first_decay_steps
        if self.t_mul == 1.0:
            i = np.floor(frac)
            frac = frac - i
        else:
            t = self.t_mul

            def start(k: np.ndarray) -> np.ndarray:  # where period k begins, in first periods
                return (1.0 - t**k) / (1.0 - t)

            i = np.floor(np.log(1.0 - frac * (1.0 - t)) / np.log(t))
            # The closed form can land one period off at a restart through rounding: correct it.
            i = np.where(frac < start(i), i - 1, i)
            i = np.where(frac >= start(i + 1), i + 1, i)
            frac = (frac - start(i)) / t**i
        cosine = 0.5 * self.m_mul**i * (1.0 + np.cos(np.pi * frac))
        return self.initial_lr * ((1.0 - self.alpha) * cosine + self.alpha)

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"first_decay_steps": horizon.interval(self.first_decay_steps)}

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.CosineDecayRestarts(
            self.initial_lr,
            self.first_decay_steps,
            t_mul=self.t_mul,
            m_mul=self.m_mul,
            alpha=self.alpha,
        )
