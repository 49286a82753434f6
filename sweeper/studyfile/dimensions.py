"""The dimensions of a study's schedule space: how each is given in a study file (a range, a list
of choices, one pinned value, or ``"auto"``), and what each one means (:data:`DIMENSIONS`: the
families that use it, its default, its unit and what it does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweeper.training.schedules import COOLDOWN_SHAPES, FAMILIES

ALL_FAMILIES = frozenset(FAMILIES)


_DROPPING = frozenset({"step", "exponential", "piecewise", "inverse_time"})

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
    families: frozenset[str]  # the schedule families that use it (all for optimizer dims)
    default: Dimension
    # "positive", "rate" (0, MAX_RATE], "unit" (0, 1], "unit0" [0, 1], "fraction" (0, 1),
    # "ratio" [0, 1), "nonneg", "epochs", "bool", "optimizer", "cooldown"
    kind: str
    doc: str


# Every searchable dimension. Intervals are in epochs; they become steps with the real
# steps-per-epoch when the trial's schedule is built (``schedules.from_dimensions``).
DIMENSIONS: dict[str, DimensionInfo] = {
    "initial_lr": DimensionInfo(
        ALL_FAMILIES, Range(1e-3, 0.5, log=True), "rate", "initial (peak) learning rate"
    ),
    "time_decay": DimensionInfo(
        frozenset({"time"}),
        Range(1e-4, 0.1, log=True),
        "nonneg",
        "lr0 / (1 + time_decay * step)",
    ),
    "decay_rate": DimensionInfo(
        _DROPPING,
        Range(0.1, 0.9),
        "positive",
        "factor per drop (step, exponential, piecewise); rate of inverse_time",
    ),
    "drop_every": DimensionInfo(
        _DROPPING, Range(1.0, 3.0), "epochs", "drop interval in epochs (decay_steps in epochs)"
    ),
    "staircase": DimensionInfo(
        frozenset({"exponential", "inverse_time"}),
        Choices((False, True)),
        "bool",
        "decay in discrete steps",
    ),
    "power": DimensionInfo(frozenset({"polynomial"}), Range(0.5, 3.0), "positive", "exponent"),
    "end_lr_factor": DimensionInfo(
        frozenset({"polynomial", "linear", "wsd"}),
        Range(1e-3, 0.5, log=True),
        "unit0",
        "end rate as a fraction of initial_lr (0: decay to zero)",
    ),
    "alpha": DimensionInfo(
        frozenset({"cosine", "cosine_restarts"}), Fixed(0.0), "ratio", "floor as a fraction of lr0"
    ),
    "warmup_epochs": DimensionInfo(
        frozenset({"cosine", "linear", "wsd"}),
        Fixed(0.0),
        "nonneg",
        "linear warm-up length in epochs",
    ),
    "restart_epochs": DimensionInfo(
        frozenset({"cosine_restarts"}), Range(0.5, 2.0), "epochs", "first restart period, epochs"
    ),
    "t_mul": DimensionInfo(
        frozenset({"cosine_restarts"}), Fixed(2.0), "positive", "period multiplier per restart"
    ),
    "m_mul": DimensionInfo(
        frozenset({"cosine_restarts"}), Fixed(1.0), "unit", "peak multiplier per restart"
    ),
    "cooldown_fraction": DimensionInfo(
        frozenset({"wsd"}), Range(0.1, 0.3), "unit", "share of the run the wsd cooldown takes"
    ),
    "cooldown_shape": DimensionInfo(
        frozenset({"wsd"}),
        Choices(COOLDOWN_SHAPES),
        "cooldown",
        f"wsd cooldown curve: {', '.join(COOLDOWN_SHAPES)}",
    ),
    "pct_start": DimensionInfo(
        frozenset({"one_cycle"}),
        Range(0.1, 0.5),
        "fraction",
        "share of the run one_cycle rises to its peak",
    ),
    "div_factor": DimensionInfo(
        frozenset({"one_cycle"}), Fixed(25.0), "positive", "one_cycle starts at lr0 / div_factor"
    ),
    "final_div_factor": DimensionInfo(
        frozenset({"one_cycle"}),
        Fixed(1e4),
        "positive",
        "one_cycle ends at lr0 / (div_factor * final_div_factor)",
    ),
    "warmup_fraction": DimensionInfo(
        frozenset({"shape"}), Range(0.0, 0.3), "ratio", "shape: warm-up share of the run"
    ),
    "stable_fraction": DimensionInfo(
        frozenset({"shape"}),
        Range(0.0, 0.9),
        "unit0",
        "shape: share of the run after the warm-up held at lr0",
    ),
    "decay_exponent": DimensionInfo(
        frozenset({"shape"}), Range(0.5, 3.0), "positive", "shape: exponent of the decay"
    ),
    "final_lr_ratio": DimensionInfo(
        frozenset({"shape"}),
        Range(0.0, 0.5),
        "unit0",
        "shape: end rate as a fraction of lr0 (0: decay to zero)",
    ),
    "optimizer": DimensionInfo(ALL_FAMILIES, Fixed("sgd"), "optimizer", "optimizer name"),
    "momentum": DimensionInfo(ALL_FAMILIES, Fixed(0.0), "ratio", "SGD momentum (sgd only)"),
    "nesterov": DimensionInfo(ALL_FAMILIES, Fixed(False), "bool", "SGD Nesterov (sgd only)"),
    "schedule_free_warmup": DimensionInfo(
        ALL_FAMILIES,
        Fixed(0.05),
        "ratio",
        "linear warm-up share of the run (schedule-free optimizers only)",
    ),
}
