"""A study file's ``[space]`` section read into a :class:`~sweeper.studyfile.study_spec.SpaceSpec`: each
dimension checked against what it means (:data:`~sweeper.studyfile.dimensions.DIMENSIONS`), schedule-free
optimizers kept to the constant family, and warm-ups that fit in the run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sweeper.errors import did_you_mean
from sweeper.studyfile.dimensions import (
    DIMENSIONS,
    MAX_RATE,
    Auto,
    Choices,
    Dimension,
    Fixed,
    Range,
)
from sweeper.studyfile.settings import SECTION_KEYS
from sweeper.studyfile.study_reader import Reader
from sweeper.studyfile.study_spec import SpaceSpec
from sweeper.training.optimizers import OPTIMIZERS, SCHEDULE_FREE
from sweeper.training.schedules import FAMILIES
from sweeper.training.warmup_decay import COOLDOWN_SHAPES


def _unknown(what: str, value: Any, known: Iterable[str]) -> str:
    known = tuple(known)
    hint = did_you_mean(value, known)
    return f"unknown {what} {value!r}; {hint + ' ' if hint else ''}choose from {', '.join(known)}"


def check_value(r: Reader, name: str, value: Any, where: str) -> None:
    kind = DIMENSIONS[name].kind if name in DIMENSIONS else "family"
    if kind == "family":
        if value not in FAMILIES:
            raise r.fail(where, _unknown("schedule family", value, FAMILIES))
        return
    if kind == "bool":
        if not isinstance(value, bool):
            raise r.fail(where, f"must be true or false, got {value!r}")
        return
    if kind == "optimizer":
        if value not in OPTIMIZERS:
            raise r.fail(where, _unknown("optimizer", value, OPTIMIZERS))
        return
    if kind == "cooldown":
        if value not in COOLDOWN_SHAPES:
            raise r.fail(where, _unknown("cooldown shape", value, COOLDOWN_SHAPES))
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise r.fail(where, f"must be a number, got {value!r}")
    rules = {
        "positive": (value > 0, "must be > 0"),
        "rate": (0 < value <= MAX_RATE, f"must be > 0 and at most {MAX_RATE:g} (a learning rate)"),
        "epochs": (value > 0, "must be > 0 epochs"),
        "nonneg": (value >= 0, "must be >= 0"),
        "unit": (0 < value <= 1, "must lie in (0, 1]"),
        "unit0": (0 <= value <= 1, "must lie in [0, 1]"),
        "fraction": (0 < value < 1, "must lie in (0, 1)"),
        "ratio": (0 <= value < 1, "must lie in [0, 1)"),
    }
    ok, rule = rules[kind]
    if not ok:
        raise r.fail(where, f"{rule}, got {value!r}")


def _dimension(r: Reader, name: str, raw: Any) -> Dimension:
    where = f"[space] {name}"
    if raw == "auto":
        if name != "initial_lr":
            raise r.fail(where, 'only initial_lr can be "auto" (set by the LR range test)')
        return Auto()
    if isinstance(raw, dict):
        if "choices" in raw:
            r.known(raw, where, ("choices",))
            raw = raw["choices"]
        else:
            r.known(raw, where, ("low", "high", "log", "int", "range_test"))
            if "low" not in raw or "high" not in raw:
                raise r.fail(where, f"a range needs both low and high, got {raw!r}")
            low, high = raw["low"], raw["high"]
            if DIMENSIONS[name].kind in ("bool", "optimizer", "cooldown"):
                hint = " (true or false)" if DIMENSIONS[name].kind == "bool" else ""
                raise r.fail(
                    where, f"takes a value or a list of choices{hint}, not a range: {raw!r}"
                )
            check_value(r, name, low, f"{where}.low")
            check_value(r, name, high, f"{where}.high")
            if low > high:
                raise r.fail(where, f"low ({low!r}) > high ({high!r}); make low <= high")
            log = raw.get("log", False)
            integer = raw.get("int", False)
            if not isinstance(log, bool) or not isinstance(integer, bool):
                raise r.fail(where, "log and int must be true or false")
            if log and low <= 0:
                raise r.fail(where, f"a log range needs low > 0, got low={low!r}")
            if integer and not (float(low).is_integer() and float(high).is_integer()):
                raise r.fail(where, f"an int range needs whole numbers, got {low!r}..{high!r}")
            narrow = raw.get("range_test", False)
            if not isinstance(narrow, bool):
                raise r.fail(where, f"range_test must be true or false, got {narrow!r}")
            if narrow:
                return _narrowed(r, name, where, float(low), float(high), log)
            if low == high:
                return Fixed(low)
            return Range(float(low), float(high), log=log, integer=integer)
    if isinstance(raw, list):
        if not raw:
            raise r.fail(where, "an empty list of choices; give at least one value")
        for i, value in enumerate(raw):
            check_value(r, name, value, f"{where}[{i}]")
        if len(set(map(repr, raw))) != len(raw):
            raise r.fail(where, f"repeated choices in {raw!r}")
        return Fixed(raw[0]) if len(raw) == 1 else Choices(tuple(raw))
    check_value(r, name, raw, where)
    return Fixed(raw)


def _narrowed(r: Reader, name: str, where: str, low: float, high: float, log: bool) -> Auto:
    """``range_test = true``: the declared range, narrowed by the LR range test."""
    if name != "initial_lr":
        raise r.fail(where, "only initial_lr can be narrowed by the LR range test (range_test)")
    if not log or low >= high:
        raise r.fail(
            where,
            "range_test narrows a log range with low < high; write "
            "{ low = ..., high = ..., log = true, range_test = true }",
        )
    return Auto(within=Range(low, high, log=True))


def read_space(r: Reader, raw: Mapping[str, Any]) -> SpaceSpec:
    table = r.table(raw, "space")
    r.known(table, "[space]", SECTION_KEYS["space"])
    families = table.pop("schedules", list(FAMILIES))
    if isinstance(families, str):
        families = [families]
    if not isinstance(families, list) or not families:
        raise r.fail("[space] schedules", f"must be a family name or a list, got {families!r}")
    for i, family in enumerate(families):
        check_value(r, "schedules", family, f"[space] schedules[{i}]")
    if len(set(families)) != len(families):
        raise r.fail("[space] schedules", f"repeated families in {families!r}; list each once")
    schedules: Choices | Fixed = (
        Fixed(families[0]) if len(families) == 1 else Choices(tuple(families))
    )
    dims = {name: info.default for name, info in DIMENSIONS.items()}
    for name, value in table.items():
        dims[name] = _dimension(r, name, value)
    return SpaceSpec(schedules, dims)


def values_of(dim: Dimension) -> list[Any]:
    """The values a pinned or categorical dimension can take ([] for a range)."""
    if isinstance(dim, Fixed):
        return [dim.value]
    if isinstance(dim, Choices):
        return list(dim.values)
    return []


def check_schedule_free(r: Reader, space: SpaceSpec) -> None:
    """A schedule-free optimizer replaces the schedule: its space's only family is constant."""
    free = [o for o in values_of(space.dims["optimizer"]) if o in SCHEDULE_FREE]
    if free and space.families() != ("constant",):
        raise r.fail(
            "[space] optimizer",
            f"{free[0]!r} replaces the schedule, but schedules = {list(space.families())}; "
            'set [space] schedules = "constant" (its warm-up is schedule_free_warmup)',
        )


def check_warmup_fits(r: Reader, space: SpaceSpec, epochs: int) -> None:
    """A warm-up of linear or wsd must end before the run does."""
    users = [f for f in ("linear", "wsd") if f in space.families()]
    dim = space.dims["warmup_epochs"]
    longest = dim.high if isinstance(dim, Range) else max(values_of(dim), default=0.0)
    if users and longest >= epochs:
        raise r.fail(
            "[space] warmup_epochs",
            f"{longest!r} is not shorter than the run ([train] epochs = {epochs}) that "
            f"{' and '.join(users)} warm{'s' if len(users) == 1 else ''} up in; "
            f"keep it below {epochs}",
        )
