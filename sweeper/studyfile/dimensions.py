"""The dimensions of a study's schedule space: how each is given in a study file (a range, a list
of choices, one pinned value, or ``"auto"``), and what each one means (:data:`DIMENSIONS`: the
families that use it, its default, its unit and what it does). Which families take a schedule
dimension is what the families declare (``Schedule.dimensions``); the optimizer's dimensions are
every family's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweeper.training.schedules import FAMILIES
from sweeper.training.warmup_decay import COOLDOWN_SHAPES

ALL_FAMILIES = frozenset(FAMILIES)

# The largest learning rate a study may name (a rate lies in (0, MAX_RATE]): far above any rate
# that trains, far below one that overflows; also the top of an "auto" range without a test.
MAX_RATE = 10.0


@dataclass(frozen=True)
class Range:
    """A searched interval; ``log`` samples log-uniformly, ``integer`` samples whole numbers."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class Choices:
    """A searched categorical dimension."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Fixed:
    """A pinned dimension: not searched, always this value."""

    value: Any


@dataclass(frozen=True)
class Auto:
    """``initial_lr = "auto"``: log-uniform bounds set from data by the LR range test.

    ``within``: a declared range the test narrows (``{ low, high, log = true, range_test =
    true }``): the search keeps to the part of it that the test suggests, the whole of it when
    the two do not meet.
    """

    within: Range | None = None


Dimension = Range | Choices | Fixed | Auto


@dataclass(frozen=True)
class DimensionInfo:
    families: frozenset[str]  # the families that declare it (all for the optimizer's)
    default: Dimension
    # "positive", "rate" (0, MAX_RATE], "unit" (0, 1], "unit0" [0, 1], "fraction" (0, 1),
    # "ratio" [0, 1), "nonneg", "epochs", "bool", "optimizer", "cooldown"
    kind: str
    doc: str


# What each schedule dimension means: its default, its kind and its doc (name: (default, kind,
# doc)). Intervals are in epochs; they become steps with the real steps-per-epoch when the trial's
# schedule is built (``schedules.from_dimensions``). The order is the order a trial samples them.
_SCHEDULE_DIMENSIONS: dict[str, tuple[Dimension, str, str]] = {
    "initial_lr": (Range(1e-3, 0.5, log=True), "rate", "initial (peak) learning rate"),
    "time_decay": (Range(1e-4, 0.1, log=True), "nonneg", "lr0 / (1 + time_decay * step)"),
    "decay_rate": (
        Range(0.1, 0.9),
        "positive",
        "factor per drop (step, exponential, piecewise); rate of inverse_time",
    ),
    "drop_every": (Range(1.0, 3.0), "epochs", "drop interval in epochs (decay_steps in epochs)"),
    "staircase": (Choices((False, True)), "bool", "decay in discrete steps"),
    "power": (Range(0.5, 3.0), "positive", "exponent"),
    "end_lr_factor": (
        Range(1e-3, 0.5, log=True),
        "unit0",
        "end rate as a fraction of initial_lr (0: decay to zero)",
    ),
    "alpha": (Fixed(0.0), "ratio", "floor as a fraction of lr0"),
    "warmup_epochs": (Fixed(0.0), "nonneg", "linear warm-up length in epochs"),
    "restart_epochs": (Range(0.5, 2.0), "epochs", "first restart period, epochs"),
    "t_mul": (Fixed(2.0), "positive", "period multiplier per restart"),
    "m_mul": (Fixed(1.0), "unit", "peak multiplier per restart"),
    "cooldown_fraction": (Range(0.1, 0.3), "unit", "share of the run the wsd cooldown takes"),
    "cooldown_shape": (
        Choices(COOLDOWN_SHAPES),
        "cooldown",
        f"wsd cooldown curve: {', '.join(COOLDOWN_SHAPES)}",
    ),
    "pct_start": (Range(0.1, 0.5), "fraction", "share of the run one_cycle rises to its peak"),
    "div_factor": (Fixed(25.0), "positive", "one_cycle starts at lr0 / div_factor"),
    "final_div_factor": (
        Fixed(1e4),
        "positive",
        "one_cycle ends at lr0 / (div_factor * final_div_factor)",
    ),
    "warmup_fraction": (Range(0.0, 0.3), "ratio", "shape: warm-up share of the run"),
    "stable_fraction": (
        Range(0.0, 0.9),
        "unit0",
        "shape: share of the run after the warm-up held at lr0",
    ),
    "decay_exponent": (Range(0.5, 3.0), "positive", "shape: exponent of the decay"),
    "final_lr_ratio": (
        Range(0.0, 0.5),
        "unit0",
        "shape: end rate as a fraction of lr0 (0: decay to zero)",
    ),
}

# The optimizer's dimensions: every family takes them.
_OPTIMIZER_DIMENSIONS: dict[str, tuple[Dimension, str, str]] = {
    "optimizer": (Fixed("sgd"), "optimizer", "optimizer name"),
    "momentum": (Fixed(0.0), "ratio", "SGD momentum (sgd only)"),
    "nesterov": (Fixed(False), "bool", "SGD Nesterov (sgd only)"),
    "schedule_free_warmup": (
        Fixed(0.05),
        "ratio",
        "linear warm-up share of the run (schedule-free optimizers only)",
    ),
}


def _taking(name: str) -> frozenset[str]:
    """The families that declare schedule dimension ``name``."""
    return frozenset(family for family, cls in FAMILIES.items() if name in cls.dimensions)


# Every searchable dimension.
DIMENSIONS: dict[str, DimensionInfo] = {
    **{
        name: DimensionInfo(_taking(name), default, kind, doc)
        for name, (default, kind, doc) in _SCHEDULE_DIMENSIONS.items()
    },
    **{
        name: DimensionInfo(ALL_FAMILIES, default, kind, doc)
        for name, (default, kind, doc) in _OPTIMIZER_DIMENSIONS.items()
    },
}
