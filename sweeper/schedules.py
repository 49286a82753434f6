"""Learning-rate schedule families.

Every family is a frozen dataclass whose fields are in optimizer steps (one step = one batch). Each
gives the learning rate two ways that must agree:

* ``lr_at(step)`` / ``curve(n)`` — plain NumPy (float64), no Keras import, so read-only commands
  can draw the curves of stored trials;
* ``keras()`` — the schedule the optimizer applies during training: one of Keras's own
  ``keras.optimizers.schedules`` classes, or (for the tutorial's epoch step decay, which Keras does
  not ship) a small ``LearningRateSchedule`` written with ``keras.ops`` in
  :mod:`sweeper.keras_schedules`.

The step index follows Keras: the rate applied in update ``k`` (counting from 0) is the schedule
at ``step = k``, so the first epoch covers steps ``0 .. steps_per_epoch - 1``.

Studies describe intervals in epochs; :func:`from_dimensions` converts them to steps with the
real steps-per-epoch of the data. :func:`from_dict` rebuilds a schedule from the JSON-friendly dict
stored with every trial (``to_dict``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sweeper.errors import ConfigError

__all__ = [
    "FAMILIES",
    "Constant",
    "Cosine",
    "CosineRestarts",
    "Exponential",
    "InverseTime",
    "Piecewise",
    "Polynomial",
    "Schedule",
    "StepDecay",
    "TimeDecay",
    "family_names",
    "from_dict",
    "from_dimensions",
]


def _positive(family: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(
                f"schedule '{family}': {name} must be a positive number, got {value!r}"
            )


def _in_unit(family: str, name: str, value: float, *, closed_low: bool = False) -> None:
    ok = (0 <= value <= 1) if closed_low else (0 < value <= 1)
    if not ok:
        rng = "[0, 1]" if closed_low else "(0, 1]"
        raise ConfigError(f"schedule '{family}': {name} must lie in {rng}, got {value!r}")


@dataclass(frozen=True)
class Schedule:
    """Base class: a learning-rate schedule over optimizer steps."""

    family: ClassVar[str] = ""
    formula: ClassVar[str] = ""

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


@dataclass(frozen=True)
class Constant(Schedule):
    family: ClassVar[str] = "constant"
    formula: ClassVar[str] = "lr0"

    def __post_init__(self) -> None:
        _positive(self.family, initial_lr=self.initial_lr)

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return np.full_like(steps, self.initial_lr)

    def keras(self) -> Any:
        return float(self.initial_lr)


@dataclass(frozen=True)
class TimeDecay(Schedule):
    """Keras 2's SGD ``decay`` argument: the rate shrinks as 1 / (1 + decay * step)."""

    family: ClassVar[str] = "time"
    formula: ClassVar[str] = "lr0 / (1 + decay * step)"

    decay: float = 1e-3

    def __post_init__(self) -> None:
        _positive(self.family, initial_lr=self.initial_lr)
        if not (math.isfinite(self.decay) and self.decay >= 0):
            raise ConfigError(f"schedule 'time': decay must be >= 0, got {self.decay!r}")

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return self.initial_lr / (1.0 + self.decay * steps)

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.InverseTimeDecay(
            self.initial_lr, decay_steps=1, decay_rate=self.decay
        )


@dataclass(frozen=True)
class StepDecay(Schedule):
    """The tutorial's drop decay by epoch: lr0 * drop ** floor((1 + epoch) / epochs_drop)."""

    family: ClassVar[str] = "step"
    formula: ClassVar[str] = "lr0 * drop ^ floor((1 + epoch) / epochs_drop)"

    drop: float = 0.5
    epochs_drop: float = 10.0
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        _positive(self.family, initial_lr=self.initial_lr, epochs_drop=self.epochs_drop)
        _in_unit(self.family, "drop", self.drop)
        if int(self.steps_per_epoch) != self.steps_per_epoch or self.steps_per_epoch < 1:
            raise ConfigError(
                f"schedule 'step': steps_per_epoch must be a positive integer, got {self.steps_per_epoch!r}"
            )

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        epoch = np.floor(steps / self.steps_per_epoch)
        return self.initial_lr * self.drop ** np.floor((1.0 + epoch) / self.epochs_drop)

    def keras(self) -> Any:
        from sweeper.keras_schedules import EpochStepDecay

        return EpochStepDecay(self.initial_lr, self.drop, self.epochs_drop, self.steps_per_epoch)


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
        _positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        _positive(self.family, decay_rate=self.decay_rate)

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        p = steps / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return self.initial_lr * self.decay_rate**p

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
        _positive(self.family, **{f"values[{i}]": v for i, v in enumerate(self.values)})
        if self.values[0] != self.initial_lr:
            raise ConfigError(
                f"schedule 'piecewise': values[0] ({self.values[0]!r}) must equal initial_lr "
                f"({self.initial_lr!r})"
            )

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        index = np.searchsorted(np.asarray(self.boundaries, dtype=np.float64), steps, side="left")
        return np.asarray(self.values, dtype=np.float64)[index]

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
        _positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        _positive(self.family, power=self.power)
        if not (0 <= self.end_lr <= self.initial_lr):
            raise ConfigError(
                f"schedule 'polynomial': end_lr must lie in [0, initial_lr={self.initial_lr!r}], "
                f"got {self.end_lr!r}"
            )

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        p = np.minimum(steps, self.decay_steps) / self.decay_steps
        return (self.initial_lr - self.end_lr) * (1.0 - p) ** self.power + self.end_lr

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
        _positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        if not (math.isfinite(self.decay_rate) and self.decay_rate >= 0):
            raise ConfigError(
                f"schedule 'inverse_time': decay_rate must be >= 0, got {self.decay_rate!r}"
            )

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        p = steps / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return self.initial_lr / (1.0 + self.decay_rate * p)

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
        _positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        _in_unit(self.family, "alpha", self.alpha, closed_low=True)
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
        _positive(
            self.family,
            initial_lr=self.initial_lr,
            first_decay_steps=self.first_decay_steps,
            t_mul=self.t_mul,
        )
        _in_unit(self.family, "m_mul", self.m_mul)
        _in_unit(self.family, "alpha", self.alpha, closed_low=True)

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

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.CosineDecayRestarts(
            self.initial_lr,
            self.first_decay_steps,
            t_mul=self.t_mul,
            m_mul=self.m_mul,
            alpha=self.alpha,
        )


FAMILIES: dict[str, type[Schedule]] = {
    cls.family: cls
    for cls in (
        Constant,
        TimeDecay,
        StepDecay,
        Exponential,
        Piecewise,
        Polynomial,
        InverseTime,
        Cosine,
        CosineRestarts,
    )
}


def family_names() -> tuple[str, ...]:
    return tuple(FAMILIES)


def _family(name: str) -> type[Schedule]:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown schedule family {name!r}; choose one of: {', '.join(FAMILIES)}"
        ) from None


def from_dict(data: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from ``Schedule.to_dict()`` output (or a hand-written dict)."""
    data = dict(data)
    cls = _family(str(data.pop("family", "")))
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"schedule '{cls.family}': unknown parameter(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(names))}"
        )
    if "boundaries" in data:
        data["boundaries"] = tuple(data["boundaries"])
    if "values" in data:
        data["values"] = tuple(data["values"])
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"schedule '{cls.family}': {exc}") from None


def from_dimensions(
    family: str,
    dims: Mapping[str, Any],
    *,
    steps_per_epoch: int,
    epochs: int,
) -> Schedule:
    """Build a schedule from a study's dimensions, whose intervals are in epochs.

    Dimensions used (each only by the families named):

    ``initial_lr`` (all); ``time_decay`` (time); ``decay_rate`` (step: the drop factor;
    exponential: the rate; piecewise: the factor applied at each boundary; inverse_time: the
    rate); ``drop_every`` epochs (step: epochs_drop; exponential, inverse_time: decay_steps;
    piecewise: the boundary spacing); ``staircase`` (exponential, inverse_time); ``power`` and
    ``end_lr_factor`` (polynomial, end_lr = initial_lr * end_lr_factor); ``alpha`` (cosine,
    cosine_restarts); ``warmup_epochs`` (cosine); ``restart_epochs``, ``t_mul``, ``m_mul``
    (cosine_restarts). Polynomial and cosine decay over the whole run (``epochs``) unless
    ``decay_epochs`` is given. A dimension given as ``decay_steps`` (in steps) wins over its
    epoch form, so the tutorials' step-based settings can be written as they are.
    """
    spe = int(steps_per_epoch)
    if spe < 1:
        raise ConfigError(f"steps_per_epoch must be >= 1, got {steps_per_epoch!r}")
    cls = _family(family)
    lr = float(dims["initial_lr"])

    def interval(epoch_key: str, default_epochs: float) -> float:
        if "decay_steps" in dims:
            return float(dims["decay_steps"])
        return float(dims.get(epoch_key, default_epochs)) * spe

    if cls is Constant:
        return Constant(lr)
    if cls is TimeDecay:
        return TimeDecay(lr, decay=float(dims.get("time_decay", 0.0)))
    if cls is StepDecay:
        return StepDecay(
            lr,
            drop=float(dims.get("decay_rate", 0.5)),
            epochs_drop=float(dims.get("drop_every", 1.0)),
            steps_per_epoch=spe,
        )
    if cls is Exponential:
        return Exponential(
            lr,
            decay_steps=interval("drop_every", 1.0),
            decay_rate=float(dims.get("decay_rate", 0.5)),
            staircase=bool(dims.get("staircase", False)),
        )
    if cls is InverseTime:
        return InverseTime(
            lr,
            decay_steps=interval("drop_every", 1.0),
            decay_rate=float(dims.get("decay_rate", 0.5)),
            staircase=bool(dims.get("staircase", False)),
        )
    if cls is Piecewise:
        if "boundaries" in dims:
            boundaries = tuple(int(b) for b in dims["boundaries"])
            values = tuple(float(v) for v in dims["values"])
            return Piecewise(lr, boundaries=boundaries, values=values)
        every = float(dims.get("drop_every", 1.0))
        factor = float(dims.get("decay_rate", 0.5))
        _positive("piecewise", drop_every=every)
        bounds: list[int] = []
        k = 1
        while k * every < epochs:
            step = round(k * every * spe) - 1
            if not bounds or step > bounds[-1]:
                bounds.append(step)
            k += 1
        return Piecewise(
            lr,
            boundaries=tuple(bounds),
            values=tuple(lr * factor**i for i in range(len(bounds) + 1)),
        )
    if cls is Polynomial:
        return Polynomial(
            lr,
            decay_steps=interval("decay_epochs", float(epochs)),
            end_lr=float(dims["end_lr"])
            if "end_lr" in dims
            else lr * float(dims.get("end_lr_factor", 0.01)),
            power=float(dims.get("power", 1.0)),
        )
    if cls is Cosine:
        warmup_epochs = float(dims.get("warmup_epochs", 0.0))
        return Cosine(
            lr,
            # after the warm-up, decay over the rest of the run
            decay_steps=interval("decay_epochs", max(float(epochs) - warmup_epochs, 1.0)),
            alpha=float(dims.get("alpha", 0.0)),
            warmup_steps=warmup_epochs * spe,
        )
    if cls is CosineRestarts:
        return CosineRestarts(
            lr,
            first_decay_steps=interval("restart_epochs", 1.0),
            t_mul=float(dims.get("t_mul", 2.0)),
            m_mul=float(dims.get("m_mul", 1.0)),
            alpha=float(dims.get("alpha", 0.0)),
        )
    raise AssertionError(f"unhandled family {family}")  # pragma: no cover
