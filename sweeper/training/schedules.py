"""Learning-rate schedule families.

Every family is a frozen dataclass whose fields are in optimizer steps (one step = one batch), but
for step decay's ``drop_every``, in epochs of its ``steps_per_epoch``. Each gives the learning rate
two ways that must agree:

* ``lr_at(step)`` / ``curve(n)`` — plain NumPy (float64), no Keras import, so read-only commands
  can draw the curves of stored trials;
* ``keras()`` — the schedule the optimizer applies during training: one of Keras's own
  ``keras.optimizers.schedules`` classes, or (for the shapes Keras does not ship: the tutorial's
  epoch step decay, warm-up with linear or other decays, 1cycle, REX, ``shape``) a small
  ``LearningRateSchedule`` written with ``keras.ops`` in :mod:`sweeper.training.keras_schedules`.

The step index follows Keras: the rate applied in update ``k`` (counting from 0) is the schedule
at ``step = k``, so the first epoch covers steps ``0 .. steps_per_epoch - 1``.

Studies describe intervals in epochs; :func:`from_dimensions` converts them to steps with the
real steps-per-epoch of the data. :func:`from_dict` rebuilds a schedule from the JSON-friendly dict
stored with every trial (``to_dict``).

A field that is also a study dimension has that dimension's name (``decay_rate``, ``drop_every``,
``time_decay``); ``decay_steps`` is a different quantity (optimizer steps, Keras's name), built from
``drop_every`` epochs where a family counts its interval in steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from sweeper.errors import ConfigError
from sweeper.training.classic_schedules import (
    Constant,
    Cosine,
    CosineRestarts,
    Exponential,
    InverseTime,
    Piecewise,
    Polynomial,
    StepDecay,
    TimeDecay,
)
from sweeper.training.schedule_base import Schedule, check_in_unit, check_positive
from sweeper.training.warmup_schedules import (
    COOLDOWN_SHAPES,
    Linear,
    OneCycle,
    Rex,
    Shape,
    WarmupStableDecay,
)

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
    """Rebuild a schedule from ``Schedule.to_dict()`` output (or a hand-written dict).

    A parameter under its earlier name (the family's ``renamed``, e.g. step's ``drop`` and
    ``epochs_drop``, time's ``decay``) is read as its current one, so older stores still read.
    """
    data = dict(data)
    cls = _family(str(data.pop("family", "")))
    for old, new in cls.renamed.items():
        if old in data:
            if new in data:
                raise ConfigError(
                    f"schedule '{cls.family}': {old} is the earlier name of {new}; give one of them"
                )
            data[new] = data.pop(old)
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

    ``initial_lr`` (all); ``time_decay`` (time: its time_decay); ``decay_rate`` (step: its
    decay_rate, the drop factor; exponential: the rate; piecewise: the factor applied at each
    boundary; inverse_time: the rate); ``drop_every`` epochs (step: its drop_every, kept in
    epochs; exponential, inverse_time: decay_steps; piecewise: the boundary spacing);
    ``staircase`` (exponential, inverse_time); ``power`` and ``end_lr_factor`` (polynomial,
    end_lr = initial_lr * end_lr_factor); ``alpha`` (cosine, cosine_restarts); ``warmup_epochs``
    (cosine); ``restart_epochs``, ``t_mul``, ``m_mul`` (cosine_restarts). Polynomial and cosine
    decay over the whole run (``epochs``) unless ``decay_epochs`` is given. A dimension given as
    ``decay_steps`` (in steps) wins over its epoch form, so the tutorials' step-based settings
    can be written as they are.

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
    return _BUILDERS[cls](family, lr, dims, spe, epochs)


# -- one builder per family: (family, initial_lr, dims, steps_per_epoch, epochs) -> schedule ------
Builder = Callable[[str, float, Mapping[str, Any], int, int], Schedule]


def _interval(dims: Mapping[str, Any], spe: int, epoch_key: str, default_epochs: float) -> float:
    """An interval in steps: ``decay_steps`` when given, else ``epoch_key`` epochs."""
    if "decay_steps" in dims:
        return float(dims["decay_steps"])
    return float(dims.get(epoch_key, default_epochs)) * spe


def _constant(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    return Constant(lr)


def _time(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    return TimeDecay(lr, time_decay=float(dims.get("time_decay", 0.0)))


def _step(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    return StepDecay(
        lr,
        decay_rate=float(dims.get("decay_rate", 0.5)),
        drop_every=float(dims.get("drop_every", 1.0)),
        steps_per_epoch=spe,
    )


def _every(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    """Exponential or inverse-time decay: the same dimensions."""
    cls = Exponential if FAMILIES[family] is Exponential else InverseTime
    return cls(
        lr,
        decay_steps=_interval(dims, spe, "drop_every", 1.0),
        decay_rate=float(dims.get("decay_rate", 0.5)),
        staircase=bool(dims.get("staircase", False)),
    )


def _piecewise(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    if "boundaries" in dims:
        boundaries = tuple(int(b) for b in dims["boundaries"])
        values = tuple(float(v) for v in dims["values"])
        return Piecewise(lr, boundaries=boundaries, values=values)
    every = float(dims.get("drop_every", 1.0))
    factor = float(dims.get("decay_rate", 0.5))
    check_positive("piecewise", drop_every=every)
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


def _polynomial(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    return Polynomial(
        lr,
        decay_steps=_interval(dims, spe, "decay_epochs", float(epochs)),
        end_lr=float(dims["end_lr"])
        if "end_lr" in dims
        else lr * float(dims.get("end_lr_factor", 0.01)),
        power=float(dims.get("power", 1.0)),
    )


def _cosine(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    warmup_epochs = float(dims.get("warmup_epochs", 0.0))
    return Cosine(
        lr,
        # after the warm-up, decay over the rest of the run
        decay_steps=_interval(dims, spe, "decay_epochs", max(float(epochs) - warmup_epochs, 1.0)),
        alpha=float(dims.get("alpha", 0.0)),
        warmup_steps=warmup_epochs * spe,
    )


def _restarts(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    return CosineRestarts(
        lr,
        first_decay_steps=_interval(dims, spe, "restart_epochs", 1.0),
        t_mul=float(dims.get("t_mul", 2.0)),
        m_mul=float(dims.get("m_mul", 1.0)),
        alpha=float(dims.get("alpha", 0.0)),
    )


# the later families: the end value at the run's last update
def _run_end(
    family: str, dims: Mapping[str, Any], spe: int, epochs: int, *, warmup_first: bool = False
) -> tuple[float, float, float]:
    """``(last, end_lr, warmup)`` in steps; ``warmup_first``: a warm-up must end before ``last``."""
    lr = float(dims["initial_lr"])
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


def _linear(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    last, end_lr, warmup = _run_end(family, dims, spe, epochs, warmup_first=True)
    return Linear(lr, decay_steps=last, end_lr=end_lr, warmup_steps=warmup)


def _wsd(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    last, end_lr, warmup = _run_end(family, dims, spe, epochs, warmup_first=True)
    fraction = float(dims.get("cooldown_fraction", 0.2))
    check_in_unit(family, "cooldown_fraction", fraction)
    return WarmupStableDecay(
        lr,
        decay_steps=last,
        decay_start=max(last - fraction * last, warmup),
        warmup_steps=warmup,
        end_lr=end_lr,
        cooldown=str(dims.get("cooldown_shape", "1-sqrt")),
    )


def _one_cycle(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    last, _, _ = _run_end(family, dims, spe, epochs)
    return OneCycle(
        lr,
        total_steps=last + 1,
        pct_start=float(dims.get("pct_start", 0.3)),
        div_factor=float(dims.get("div_factor", 25.0)),
        final_div_factor=float(dims.get("final_div_factor", 1e4)),
    )


def _rex(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    last, _, _ = _run_end(family, dims, spe, epochs)
    return Rex(lr, decay_steps=last)


def _shape(family: str, lr: float, dims: Mapping[str, Any], spe: int, epochs: int) -> Schedule:
    last, _, _ = _run_end(family, dims, spe, epochs)
    return Shape(
        lr,
        decay_steps=last,
        warmup_fraction=float(dims.get("warmup_fraction", 0.0)),
        stable_fraction=float(dims.get("stable_fraction", 0.0)),
        decay_exponent=float(dims.get("decay_exponent", 1.0)),
        final_lr_ratio=float(dims.get("final_lr_ratio", 0.0)),
    )


_BUILDERS: dict[type[Schedule], Builder] = {
    Constant: _constant,
    TimeDecay: _time,
    StepDecay: _step,
    Exponential: _every,
    InverseTime: _every,
    Piecewise: _piecewise,
    Polynomial: _polynomial,
    Cosine: _cosine,
    CosineRestarts: _restarts,
    Linear: _linear,
    WarmupStableDecay: _wsd,
    OneCycle: _one_cycle,
    Rex: _rex,
    Shape: _shape,
}
