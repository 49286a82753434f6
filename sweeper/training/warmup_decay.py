"""What the families that warm up, hold and decay to an end value where the run ends share
(:mod:`sweeper.training.families`: linear, wsd, one_cycle, rex, shape).

One NumPy kernel, :func:`warmup_hold_decay` (its Keras form is ``WarmupStableDecay`` of
:mod:`sweeper.training.keras_schedules`): a linear warm-up from 0 over ``warmup_steps``, lr0 held
until ``decay_start``, then a decay that reaches ``end_lr`` at step ``decay_steps`` (the run's
last update when built from a study's dimensions) and stays there. The decay's height is written
over its *remaining* fraction v = (decay_steps - step) / (decay_steps - decay_start), 1 at its
start and 0 at its end, in forms that keep their relative precision as v -> 0 (a decay to zero
stays exact to the last steps in float32 too). :func:`run_end` reads the end of such a decay
from a study's dimensions, :func:`warmup_within` rebuilds a warm-up for another run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sweeper.errors import ConfigError, RescaleError
from sweeper.training.schedule_base import Horizon

COOLDOWN_SHAPES: tuple[str, ...] = ("linear", "cosine", "1-sqrt")


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


def run_end(
    family: str,
    dims: Mapping[str, Any],
    steps_per_epoch: int,
    epochs: int,
    *,
    warmup_first: bool = False,
) -> tuple[float, float, float]:
    """``(last, end_lr, warmup)`` in steps from a study's dimensions: the decay's end value at
    the run's last update (step ``epochs * steps_per_epoch - 1``, or a baseline's
    ``decay_steps``), ``end_lr`` (``initial_lr * end_lr_factor``, default 0, or a baseline's
    ``end_lr``) and a linear warm-up of ``warmup_epochs``; ``warmup_first``: the warm-up must
    end before ``last``."""
    lr = float(dims["initial_lr"])
    spe = steps_per_epoch
    last = float(dims["decay_steps"]) if "decay_steps" in dims else float(max(epochs * spe - 1, 1))
    end_factor = float(dims.get("end_lr_factor", 0.0))
    end_lr = float(dims["end_lr"]) if "end_lr" in dims else lr * end_factor
    warmup = float(dims.get("warmup_epochs", 0.0)) * spe
    if warmup_first and warmup >= last:
        raise ConfigError(
            f"schedule '{family}': warmup_epochs {dims.get('warmup_epochs')!r} must be shorter "
            f"than the run ({epochs} epochs); shorten the warm-up"
        )
    return last, end_lr, warmup


def warmup_within(family: str, horizon: Horizon, warmup: float, last: float) -> tuple[float, float]:
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
