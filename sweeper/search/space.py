"""From a study's search space to one trial's configuration (define-by-run).

:func:`distribution` turns one declared dimension into an Optuna distribution (a pure function,
tested as a table). :func:`sample` asks an Optuna trial for the schedule family first, then only
for the dimensions that family uses: a drop interval exists only for schedules that drop; momentum
only for SGD; a warm-up share only for the schedule-free optimizers. Pinned dimensions are never
sampled. A baseline trial (enqueued by the study) takes its values from the baseline, so it is the
tutorial's configuration exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from sweeper.search.trial_record import BASELINE_VALUES_ATTR
from sweeper.studyfile.config import BASELINE_NATIVE
from sweeper.studyfile.dimensions import (
    DIMENSIONS,
    MAX_RATE,
    Auto,
    Choices,
    Dimension,
    Fixed,
    Range,
)
from sweeper.studyfile.study_spec import SpaceSpec
from sweeper.training.optimizers import SCHEDULE_FREE, OptimizerSpec
from sweeper.training.schedule_base import Schedule
from sweeper.training.schedules import from_dimensions

SCHEDULE_PARAM = "schedule"

# Dimensions a baseline's step-based settings replace.
_COVERED_BY = {
    "decay_steps": ("drop_every", "restart_epochs"),
    "boundaries": ("drop_every", "decay_rate"),
    "end_lr": ("end_lr_factor",),
}
_OPTIMIZER_DIMS = ("optimizer", "momentum", "nesterov", "schedule_free_warmup")


@dataclass(frozen=True)
class TrialConfig:
    family: str
    values: Mapping[str, Any]  # every dimension the family uses, sampled or pinned
    optimizer: OptimizerSpec

    def schedule(self, steps_per_epoch: int, epochs: int) -> Schedule:
        return from_dimensions(
            self.family, self.values, steps_per_epoch=steps_per_epoch, epochs=epochs
        )


# The bounds of an "auto" initial rate when no range test result is at hand (a replay of a
# stored trial, whose value is fixed anyway, or a listing of the space).
AUTO_BOUNDS = Range(1e-7, MAX_RATE, log=True)


def distribution(dim: Dimension) -> BaseDistribution | None:
    """The Optuna distribution of a searched dimension; None for a pinned one."""
    if isinstance(dim, Fixed):
        return None
    if isinstance(dim, Auto):
        dim = dim.within or AUTO_BOUNDS
    if isinstance(dim, Choices):
        return CategoricalDistribution(list(dim.values))
    if dim.integer:
        return IntDistribution(int(dim.low), int(dim.high), log=dim.log)
    return FloatDistribution(dim.low, dim.high, log=dim.log)


def dimensions_for(family: str) -> list[str]:
    """The dimensions ``family`` uses, in sampling order (optimizer first: an automatic
    initial-rate range depends on it)."""
    names = [n for n, info in DIMENSIONS.items() if family in info.families]
    return [*_OPTIMIZER_DIMS, *(n for n in names if n not in _OPTIMIZER_DIMS)]


def _suggest(trial: optuna.Trial, name: str, dim: Dimension) -> Any:
    dist = distribution(dim)
    if dist is None:
        assert isinstance(dim, Fixed)
        return dim.value
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


def _recordable(dim: Dimension, value: Any) -> bool:
    """Whether Optuna can record ``value`` as a parameter of ``dim``'s distribution: a log range
    cannot hold 0 (a baseline's decay to zero, end_lr_factor = 0)."""
    dist = distribution(dim)
    if isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log:
        return isinstance(value, (int, float)) and value > 0
    return True


def search_space(space: SpaceSpec) -> dict[str, BaseDistribution]:
    """Every searched parameter of the space with its distribution (for grid search and docs)."""
    out: dict[str, BaseDistribution] = {}
    if isinstance(space.schedules, Choices):
        out[SCHEDULE_PARAM] = CategoricalDistribution(list(space.schedules.values))
    for name, dim in space.dims.items():
        dist = distribution(dim)
        if dist is not None and space.used(name):
            out[name] = dist
    return out


def grid(space: SpaceSpec) -> dict[str, list[Any]]:
    """The grid sampler's search space: every searched dimension's choices."""
    out: dict[str, list[Any]] = {}
    for name, dist in search_space(space).items():
        assert isinstance(dist, CategoricalDistribution), name
        out[name] = list(dist.choices)
    return out


def sample(
    trial: optuna.Trial,
    space: SpaceSpec,
    lr_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> TrialConfig:
    """Sample one configuration; baseline trials get the baseline's values.

    ``lr_ranges`` gives, per optimizer name, the bounds of an ``initial_lr = "auto"``
    dimension (from the LR range test), or of a declared range it narrowed.
    """
    baseline: Mapping[str, Any] = trial.user_attrs.get(BASELINE_VALUES_ATTR) or {}
    values: dict[str, Any] = {}

    def value(name: str, dim: Dimension) -> Any:
        if isinstance(dim, Auto):
            bounds = (lr_ranges or {}).get(str(values.get("optimizer")))
            dim = Range(bounds[0], bounds[1], log=True) if bounds else dim.within or AUTO_BOUNDS
        if name in baseline and (distribution(dim) is None or not _recordable(dim, baseline[name])):
            return baseline[name]  # pinned, or a value the searched range cannot record
        if name in baseline:  # searched: the enqueued baseline value is fixed here, and may
            with warnings.catch_warnings():  # lie outside the searched range on purpose
                warnings.filterwarnings("ignore", message="Fixed parameter", category=UserWarning)
                return _suggest(trial, name, dim)
        return _suggest(trial, name, dim)

    family = str(value(SCHEDULE_PARAM, space.schedules))
    covered = {d for key, dims in _COVERED_BY.items() if key in baseline for d in dims}
    for name in dimensions_for(family):
        if name in covered:
            continue
        if name == "momentum" and values["optimizer"] != "sgd":
            continue
        if name == "nesterov" and not (values["optimizer"] == "sgd" and values.get("momentum")):
            continue
        if name == "schedule_free_warmup" and values["optimizer"] not in SCHEDULE_FREE:
            continue
        values[name] = value(name, space.dims[name])
    values.update({k: baseline[k] for k in BASELINE_NATIVE if k in baseline})
    optimizer = OptimizerSpec(
        name=str(values.pop("optimizer")),
        momentum=float(values.pop("momentum", 0.0)),
        nesterov=bool(values.pop("nesterov", False)),
        warmup=float(values.pop("schedule_free_warmup", 0.0)),
    )
    return TrialConfig(family, values, optimizer)


def baseline_values(values: Mapping[str, Any], space: SpaceSpec) -> dict[str, Any]:
    """A baseline's values, completed so that it runs exactly as written.

    A searched dimension the baseline leaves out takes its built-in default when it has one
    (plain SGD: optimizer "sgd", momentum 0, no Nesterov), never a random draw.
    """
    out = dict(values)
    for name, dim in space.dims.items():
        default = DIMENSIONS[name].default
        if name not in out and distribution(dim) is not None and isinstance(default, Fixed):
            out[name] = default.value
    return out


def baseline_params(values: Mapping[str, Any], space: SpaceSpec) -> dict[str, Any]:
    """The Optuna params to enqueue for a baseline: its values of the searched dimensions."""
    params: dict[str, Any] = {}
    if isinstance(space.schedules, Choices):
        params[SCHEDULE_PARAM] = values["schedule"]
    for name, dim in space.dims.items():
        if name in values and distribution(dim) is not None and _recordable(dim, values[name]):
            params[name] = values[name]
    return params
