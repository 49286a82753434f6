"""Learning-rate schedule families.

Every family is a frozen dataclass whose fields are in optimizer steps (one step = one batch). Each
gives the learning rate two ways that must agree:

* ``lr_at(step)`` / ``curve(n)`` — plain NumPy (float64), no Keras import, so read-only commands
  can draw the curves of stored trials;
* ``keras()`` — the schedule the optimizer applies during training: one of Keras's own
  ``keras.optimizers.schedules`` classes, or (for the shapes Keras does not ship: the tutorial's
  epoch step decay, warm-up with linear or other decays, 1cycle, REX, ``shape``) a small
  ``LearningRateSchedule`` written with ``keras.ops`` in :mod:`sweeper.keras_schedules`.

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
    "COOLDOWN_SHAPES",
    "FAMILIES",
    "Constant",
    "Cosine",
    "CosineRestarts",
    "Exponential",
    "InverseTime",
    "Linear",
    "OneCycle",
    "Piecewise",
    "Polynomial",
    "Rex",
    "Schedule",
    "Shape",
    "StepDecay",
    "TimeDecay",
    "WarmupStableDecay",
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


# -- warm-up, hold, decay ---------------------------------------------------------------------------
# The families below share one NumPy kernel (and one Keras schedule, WarmupStableDecay): a linear
# warm-up from 0 over ``warmup_steps``, lr0 held until ``decay_start``, then a decay that reaches
# ``end_lr`` at step ``decay_steps`` (the run's last update when built by from_dimensions) and
# stays there. The decay's height is written over its *remaining* fraction
# v = (decay_steps - step) / (decay_steps - decay_start), 1 at its start and 0 at its end, in forms
# that keep their relative precision as v -> 0 (a decay to zero stays exact to the last steps in
# float32 too).

COOLDOWN_SHAPES: tuple[str, ...] = ("linear", "cosine", "1-sqrt")
PROFILES: tuple[str, ...] = ("polynomial", *COOLDOWN_SHAPES, "rex")


def decay_profile(profile: str, v: np.ndarray, exponent: float = 1.0) -> np.ndarray:
    """The height (0..1) of a decay over its remaining fraction ``v`` (1 at its start, 0 at its end).

    ``polynomial``: v ** exponent; ``linear``: v; ``cosine``: (1 + cos(pi (1 - v))) / 2, written
    sin(pi v / 2) ** 2; ``1-sqrt``: 1 - sqrt(1 - v), written v / (1 + sqrt(1 - v)); ``rex``:
    (1 - z) / (1/2 + (1 - z) / 2) with z = 1 - v.
    """
    if profile == "polynomial":
        return v**exponent
    if profile == "linear":
        return v
    if profile == "cosine":
        return np.sin(0.5 * np.pi * v) ** 2
    if profile == "1-sqrt":
        return v / (1.0 + np.sqrt(1.0 - v))
    if profile == "rex":
        return v / (0.5 + 0.5 * v)
    raise ValueError(f"unknown decay profile {profile!r}")  # pragma: no cover - validated before


def _warmup_hold_decay(
    steps: np.ndarray,
    lr0: float,
    *,
    warmup_steps: float,
    decay_start: float,
    decay_steps: float,
    end_lr: float,
    profile: str,
    exponent: float = 1.0,
) -> np.ndarray:
    span = decay_steps - decay_start
    if span > 0:
        v = np.clip((decay_steps - steps) / span, 0.0, 1.0)
    else:  # no decay: lr0 up to decay_steps, end_lr after it
        v = (steps <= decay_steps).astype(np.float64)
    out = end_lr + (lr0 - end_lr) * decay_profile(profile, v, exponent)
    out = np.where(steps < decay_start, lr0, out)
    if warmup_steps > 0:
        out = np.where(steps < warmup_steps, lr0 * steps / warmup_steps, out)
    return out


def _nonneg(family: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"schedule '{family}': {name} must be >= 0, got {value!r}")


def _end_lr(family: str, end_lr: float, initial_lr: float) -> None:
    if not (math.isfinite(end_lr) and 0 <= end_lr <= initial_lr):
        raise ConfigError(
            f"schedule '{family}': end_lr must lie in [0, initial_lr={initial_lr!r}], "
            f"got {end_lr!r}"
        )


@dataclass(frozen=True)
class Linear(Schedule):
    """Linear warm-up from 0 over ``warmup_steps`` (0: none), then linear decay to ``end_lr`` at
    step ``decay_steps`` (0: decay to zero, Defazio et al. 2023, arXiv 2310.07831; Bergsma et
    al., ICLR 2025, arXiv 2502.15938)."""

    family: ClassVar[str] = "linear"
    formula: ClassVar[str] = (
        "lr0 * step / warmup (step < warmup); then "
        "end_lr + (lr0 - end_lr) * (decay_steps - step) / (decay_steps - warmup); "
        "end_lr after decay_steps"
    )

    decay_steps: float = 10000.0
    end_lr: float = 0.0
    warmup_steps: float = 0.0

    def __post_init__(self) -> None:
        _positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        _nonneg(self.family, warmup_steps=self.warmup_steps)
        _end_lr(self.family, self.end_lr, self.initial_lr)
        if self.warmup_steps >= self.decay_steps:
            raise ConfigError(
                f"schedule 'linear': warmup_steps ({self.warmup_steps!r}) must be shorter than "
                f"decay_steps ({self.decay_steps!r}); shorten the warm-up"
            )

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return _warmup_hold_decay(
            steps,
            self.initial_lr,
            warmup_steps=self.warmup_steps,
            decay_start=self.warmup_steps,
            decay_steps=self.decay_steps,
            end_lr=self.end_lr,
            profile="linear",
        )

    def keras(self) -> Any:
        # Keras's PolynomialDecay(power=1) is this schedule without a warm-up, but it computes
        # 1 - step / decay_steps in float32 and so loses the relative precision of the last
        # steps of a decay to zero; the keras.ops schedule keeps it.
        from sweeper.keras_schedules import WarmupStableDecay as KerasWSD

        return KerasWSD(
            self.initial_lr,
            self.decay_steps,
            decay_start=self.warmup_steps,
            warmup_steps=self.warmup_steps,
            end_learning_rate=self.end_lr,
            profile="linear",
        )


@dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Warmup-stable-decay (Hägele et al., NeurIPS 2024, arXiv 2405.18392): linear warm-up from
    0 over ``warmup_steps``, lr0 held, then a cooldown from ``decay_start`` to ``end_lr`` at step
    ``decay_steps`` shaped ``linear``, ``cosine`` or ``1-sqrt`` (lr0 (1 - sqrt(t)) over the
    cooldown's progress t in [0, 1], the paper's best)."""

    family: ClassVar[str] = "wsd"
    formula: ClassVar[str] = (
        "lr0 * step / warmup (step < warmup); lr0 until decay_start; then "
        "end_lr + (lr0 - end_lr) * f(t), t = (step - decay_start) / (decay_steps - decay_start), "
        "f = 1 - t | (1 + cos(pi t)) / 2 | 1 - sqrt(t)"
    )

    decay_steps: float = 10000.0
    decay_start: float = 8000.0
    warmup_steps: float = 0.0
    end_lr: float = 0.0
    cooldown: str = "1-sqrt"

    def __post_init__(self) -> None:
        _positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        _nonneg(self.family, warmup_steps=self.warmup_steps, decay_start=self.decay_start)
        _end_lr(self.family, self.end_lr, self.initial_lr)
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

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return _warmup_hold_decay(
            steps,
            self.initial_lr,
            warmup_steps=self.warmup_steps,
            decay_start=self.decay_start,
            decay_steps=self.decay_steps,
            end_lr=self.end_lr,
            profile=self.cooldown,
        )

    def keras(self) -> Any:
        from sweeper.keras_schedules import WarmupStableDecay as KerasWSD

        return KerasWSD(
            self.initial_lr,
            self.decay_steps,
            decay_start=self.decay_start,
            warmup_steps=self.warmup_steps,
            end_learning_rate=self.end_lr,
            profile=self.cooldown,
        )


@dataclass(frozen=True)
class OneCycle(Schedule):
    """Smith's 1cycle as PyTorch's ``OneCycleLR`` (cosine annealing, two phases) computes it.

    ``initial_lr`` is the peak (PyTorch's ``max_lr``). The rate rises from lr0 / div_factor at
    step 0 to lr0 at step pct_start * total_steps - 1, then falls to
    lr0 / (div_factor * final_div_factor) at step total_steps - 1, both halves along a cosine:
    anneal(a, b, p) = b + (a - b) (1 + cos(pi p)) / 2.
    """

    family: ClassVar[str] = "one_cycle"
    formula: ClassVar[str] = (
        "anneal(lr0 / div, lr0, step / e1) for step <= e1 = pct_start * total_steps - 1; then "
        "anneal(lr0, lr0 / (div * final_div), (step - e1) / (total_steps - 1 - e1)); "
        "anneal(a, b, p) = b + (a - b) * (1 + cos(pi p)) / 2"
    )

    total_steps: float = 10000.0
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    def __post_init__(self) -> None:
        _positive(
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

    def keras(self) -> Any:
        from sweeper.keras_schedules import OneCycle as KerasOneCycle

        return KerasOneCycle(
            self.initial_lr,
            self.total_steps,
            pct_start=self.pct_start,
            div_factor=self.div_factor,
            final_div_factor=self.final_div_factor,
        )


@dataclass(frozen=True)
class Rex(Schedule):
    """REX, the reflected exponential profile (Chen, Wolfe & Kyrillidis, "REX: Revisiting
    Budgeted Training with an Improved Schedule", MLSys 2022, arXiv 2107.04197):
    lr = lr0 (1 - z) / (1/2 + (1 - z) / 2) with progress z = step / decay_steps, sampled every
    step; 0 from decay_steps on."""

    family: ClassVar[str] = "rex"
    formula: ClassVar[str] = (
        "lr0 * (1 - z) / (1/2 + (1 - z) / 2), z = min(step, decay_steps) / decay_steps"
    )

    decay_steps: float = 10000.0

    def __post_init__(self) -> None:
        _positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return _warmup_hold_decay(
            steps,
            self.initial_lr,
            warmup_steps=0.0,
            decay_start=0.0,
            decay_steps=self.decay_steps,
            end_lr=0.0,
            profile="rex",
        )

    def keras(self) -> Any:
        from sweeper.keras_schedules import WarmupStableDecay as KerasWSD

        return KerasWSD(self.initial_lr, self.decay_steps, profile="rex")


@dataclass(frozen=True)
class Shape(Schedule):
    """One continuous space of schedules: warm-up, hold, polynomial decay.

    Over the run's steps 0 .. decay_steps: a linear warm-up from 0 over the first
    ``warmup_fraction`` of them, lr0 held over the first ``stable_fraction`` of the rest, then
    lr0 (r + (1 - r) v ** p) with v the decay's remaining fraction, p = ``decay_exponent`` and
    r = ``final_lr_ratio``. Every parameter is continuous and applies to every point, so GP and
    CMA-ES can search it. Points of it: constant (stable_fraction = 1, or final_lr_ratio = 1),
    linear decay (p = 1, stable 0), polynomial decay (Keras's PolynomialDecay), WSD with a linear
    or polynomial cooldown, decay to zero (r = 0). Cosine decay is not a point, but close: the
    best approximation of (1 + cos(pi u)) / 2 is stable_fraction 0.135, decay_exponent 1.34, off
    by at most 4.5% of lr0 (RMS 3.0%; measured on 10,001 points, tests/test_schedules.py).
    """

    family: ClassVar[str] = "shape"
    formula: ClassVar[str] = (
        "lr0 * step / W (step < W = warmup_fraction * T); lr0 until S = W + stable_fraction * "
        "(T - W); then lr0 * (r + (1 - r) * ((T - step) / (T - S)) ^ decay_exponent), "
        "r = final_lr_ratio, T = decay_steps"
    )

    decay_steps: float = 10000.0
    warmup_fraction: float = 0.0
    stable_fraction: float = 0.0
    decay_exponent: float = 1.0
    final_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        _positive(
            self.family,
            initial_lr=self.initial_lr,
            decay_steps=self.decay_steps,
            decay_exponent=self.decay_exponent,
        )
        if not (math.isfinite(self.warmup_fraction) and 0 <= self.warmup_fraction < 1):
            raise ConfigError(
                f"schedule 'shape': warmup_fraction must lie in [0, 1), got {self.warmup_fraction!r}"
            )
        _in_unit(self.family, "stable_fraction", self.stable_fraction, closed_low=True)
        _in_unit(self.family, "final_lr_ratio", self.final_lr_ratio, closed_low=True)

    @property
    def warmup_steps(self) -> float:
        return self.warmup_fraction * self.decay_steps

    @property
    def decay_start(self) -> float:
        w = self.warmup_steps
        return w + self.stable_fraction * (self.decay_steps - w)

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return _warmup_hold_decay(
            steps,
            self.initial_lr,
            warmup_steps=self.warmup_steps,
            decay_start=self.decay_start,
            decay_steps=self.decay_steps,
            end_lr=self.final_lr_ratio * self.initial_lr,
            profile="polynomial",
            exponent=self.decay_exponent,
        )

    def keras(self) -> Any:
        from sweeper.keras_schedules import WarmupStableDecay as KerasWSD

        return KerasWSD(
            self.initial_lr,
            self.decay_steps,
            decay_start=self.decay_start,
            warmup_steps=self.warmup_steps,
            end_learning_rate=self.final_lr_ratio * self.initial_lr,
            profile="polynomial",
            exponent=self.decay_exponent,
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
        Linear,
        WarmupStableDecay,
        OneCycle,
        Rex,
        Shape,
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

    The later families end where the run ends: their rate reaches its end value at the run's
    last update (step ``epochs * steps_per_epoch - 1``, or ``decay_steps`` when given).
    ``warmup_epochs`` (linear, wsd: a linear warm-up from 0) and ``end_lr_factor`` (linear, wsd:
    end_lr = initial_lr * end_lr_factor, default 0); ``cooldown_fraction`` (wsd: the cooldown
    takes that share of the run at its end, never starting inside the warm-up) and
    ``cooldown_shape``; ``pct_start``, ``div_factor``, ``final_div_factor`` (one_cycle, PyTorch's
    defaults 0.3, 25, 1e4); ``warmup_fraction``, ``stable_fraction``, ``decay_exponent``,
    ``final_lr_ratio`` (shape).
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
    # the later families: the end value at the run's last update
    last = float(dims["decay_steps"]) if "decay_steps" in dims else float(max(epochs * spe - 1, 1))
    end_factor = float(dims.get("end_lr_factor", 0.0))
    end_lr = float(dims["end_lr"]) if "end_lr" in dims else lr * end_factor
    warmup = float(dims.get("warmup_epochs", 0.0)) * spe
    if cls in (Linear, WarmupStableDecay) and warmup >= last:
        raise ConfigError(
            f"schedule '{family}': warmup_epochs {dims.get('warmup_epochs')!r} must be shorter "
            f"than the run ({epochs} epochs); shorten the warm-up"
        )
    if cls is Linear:
        return Linear(lr, decay_steps=last, end_lr=end_lr, warmup_steps=warmup)
    if cls is WarmupStableDecay:
        fraction = float(dims.get("cooldown_fraction", 0.2))
        _in_unit(family, "cooldown_fraction", fraction)
        return WarmupStableDecay(
            lr,
            decay_steps=last,
            decay_start=max(last - fraction * last, warmup),
            warmup_steps=warmup,
            end_lr=end_lr,
            cooldown=str(dims.get("cooldown_shape", "1-sqrt")),
        )
    if cls is OneCycle:
        return OneCycle(
            lr,
            total_steps=last + 1,
            pct_start=float(dims.get("pct_start", 0.3)),
            div_factor=float(dims.get("div_factor", 25.0)),
            final_div_factor=float(dims.get("final_div_factor", 1e4)),
        )
    if cls is Rex:
        return Rex(lr, decay_steps=last)
    if cls is Shape:
        return Shape(
            lr,
            decay_steps=last,
            warmup_fraction=float(dims.get("warmup_fraction", 0.0)),
            stable_fraction=float(dims.get("stable_fraction", 0.0)),
            decay_exponent=float(dims.get("decay_exponent", 1.0)),
            final_lr_ratio=float(dims.get("final_lr_ratio", 0.0)),
        )
    raise AssertionError(f"unhandled family {family}")  # pragma: no cover
