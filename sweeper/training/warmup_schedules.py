"""The schedule families that warm up, hold and decay to an end value where the run ends:
linear, warm-up-stable-decay, 1cycle, REX and ``shape``.

They share one NumPy kernel (:func:`warmup_hold_decay`) and one Keras schedule
(``WarmupStableDecay`` of :mod:`sweeper.training.keras_schedules`); see :mod:`sweeper.training.schedules` for the
step convention and how a study's dimensions build them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sweeper.errors import ConfigError, RescaleError
from sweeper.training.schedule_base import (
    Horizon,
    Schedule,
    check_end_lr,
    check_in_unit,
    check_nonneg,
    check_positive,
)

# -- warm-up, hold, decay ---------------------------------------------------------------------------
# The families here share one NumPy kernel (and one Keras schedule, WarmupStableDecay): a linear
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


def warmup_hold_decay(
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


def _warmup_within(
    family: str, horizon: Horizon, warmup: float, last: float
) -> tuple[float, float]:
    """A warm-up and the decay's last step for ``horizon``'s run; a warm-up that would no
    longer end before the decay does is refused in one line."""
    new_warmup, new_last = horizon.interval(warmup), horizon.to_last(last)
    if new_warmup >= new_last:
        raise RescaleError(
            f"schedule '{family}': its warm-up of {new_warmup:g} steps does not fit a run of "
            f"{horizon.steps} steps under the '{horizon.rule}' rule; use the 'fraction' rule or "
            "a longer run"
        )
    return new_warmup, new_last


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
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)
        check_nonneg(self.family, warmup_steps=self.warmup_steps)
        check_end_lr(self.family, self.end_lr, self.initial_lr)
        if self.warmup_steps >= self.decay_steps:
            raise ConfigError(
                f"schedule 'linear': warmup_steps ({self.warmup_steps!r}) must be shorter than "
                f"decay_steps ({self.decay_steps!r}); shorten the warm-up"
            )

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
        warmup, last = _warmup_within(self.family, horizon, self.warmup_steps, self.decay_steps)
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
        warmup, last = _warmup_within(self.family, horizon, self.warmup_steps, self.decay_steps)
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
        check_positive(
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

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"total_steps": horizon.to_end(self.total_steps)}  # pct_start: a share

    def keras(self) -> Any:
        from sweeper.training.keras_schedules import OneCycle as KerasOneCycle

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
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return warmup_hold_decay(
            steps,
            self.initial_lr,
            warmup_steps=0.0,
            decay_start=0.0,
            decay_steps=self.decay_steps,
            end_lr=0.0,
            profile="rex",
        )

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"decay_steps": horizon.to_last(self.decay_steps)}

    def keras(self) -> Any:
        from sweeper.training.keras_schedules import WarmupStableDecay as KerasWSD

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
    by at most 4.5% of lr0 (RMS 3.0%; measured on 10,001 points, tests/training/test_schedules.py).
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
        check_positive(
            self.family,
            initial_lr=self.initial_lr,
            decay_steps=self.decay_steps,
            decay_exponent=self.decay_exponent,
        )
        if not (math.isfinite(self.warmup_fraction) and 0 <= self.warmup_fraction < 1):
            raise ConfigError(
                f"schedule 'shape': warmup_fraction must lie in [0, 1), got {self.warmup_fraction!r}"
            )
        check_in_unit(self.family, "stable_fraction", self.stable_fraction, closed_low=True)
        check_in_unit(self.family, "final_lr_ratio", self.final_lr_ratio, closed_low=True)

    @property
    def warmup_steps(self) -> float:
        return self.warmup_fraction * self.decay_steps

    @property
    def decay_start(self) -> float:
        w = self.warmup_steps
        return w + self.stable_fraction * (self.decay_steps - w)

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return warmup_hold_decay(
            steps,
            self.initial_lr,
            warmup_steps=self.warmup_steps,
            decay_start=self.decay_start,
            decay_steps=self.decay_steps,
            end_lr=self.final_lr_ratio * self.initial_lr,
            profile="polynomial",
            exponent=self.decay_exponent,
        )

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"decay_steps": horizon.to_last(self.decay_steps)}  # its fractions: shares

    def keras(self) -> Any:
        from sweeper.training.keras_schedules import WarmupStableDecay as KerasWSD

        return KerasWSD(
            self.initial_lr,
            self.decay_steps,
            decay_start=self.decay_start,
            warmup_steps=self.warmup_steps,
            end_learning_rate=self.final_lr_ratio * self.initial_lr,
            profile="polynomial",
            exponent=self.decay_exponent,
        )
