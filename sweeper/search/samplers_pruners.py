"""The sampler and the pruner a study file asks for (Optuna's own classes)."""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.distributions import CategoricalDistribution

from sweeper.search import space as space_mod
from sweeper.studyfile.dimensions import DIMENSIONS, Choices, Fixed
from sweeper.studyfile.study_spec import StudySpec
from sweeper.training.backend import CONSOLE
from sweeper.training.data import MAX_SEED
from sweeper.training.optimizers import SCHEDULE_FREE

# the relative samplers: they model the searched dimensions jointly, but only those every trial
# has (and CMA-ES only the numeric ones); Optuna samples the others independently at random
RELATIVE = ("gp", "cmaes")
_warned: set[tuple[str, str]] = set()


def _values(dim: object) -> tuple[object, ...]:
    if isinstance(dim, Fixed):
        return (dim.value,)
    if isinstance(dim, Choices):
        return tuple(dim.values)
    return ()


def independent_dimensions(spec: StudySpec) -> list[str]:
    """The searched parameters a ``gp`` or ``cmaes`` sampler leaves to independent random
    sampling: the conditional ones (not in every trial) and, for CMA-ES, the categorical ones."""
    space = spec.space
    families = space.families()
    optimizers = _values(space.dims["optimizer"])
    momenta = _values(space.dims["momentum"])
    out = []
    for name, dist in space_mod.search_space(space).items():
        if name == space_mod.SCHEDULE_PARAM:
            conditional = False
        elif name == "momentum":
            conditional = any(o != "sgd" for o in optimizers)
        elif name == "nesterov":
            conditional = any(o != "sgd" for o in optimizers) or 0.0 in momenta
        elif name == "schedule_free_warmup":
            conditional = any(o not in SCHEDULE_FREE for o in optimizers)
        else:
            conditional = not set(families) <= DIMENSIONS[name].families
        categorical = isinstance(dist, CategoricalDistribution)
        if conditional or (spec.sampler.kind == "cmaes" and categorical):
            out.append(name)
    return out


def _warn_independent(spec: StudySpec) -> None:
    names = independent_dimensions(spec)
    key = (spec.hash, spec.sampler.kind)
    if not names or key in _warned:
        return
    _warned.add(key)
    what = "conditional" if spec.sampler.kind == "gp" else "categorical or conditional"
    CONSOLE.warning(
        "warning: [sampler] type = %r models only the %s dimensions every trial has; Optuna "
        "samples %s (%s) independently at random; pin one family with numeric dimensions "
        '(schedules = "shape") to have the whole space modelled',
        spec.sampler.kind,
        "continuous" if spec.sampler.kind == "cmaes" else "searched",
        ", ".join(names),
        what,
    )


def _gp(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(
        seed=seed, n_startup_trials=spec.sampler.n_startup_trials, warn_independent_sampling=False
    )


def _cmaes(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.CmaEsSampler(
        seed=seed, n_startup_trials=spec.sampler.n_startup_trials, warn_independent_sampling=False
    )


def _tpe(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.sampler.n_startup_trials)


# [sampler] type -> its factory (spec, seed); the names, docs and needed packages are
# sweeper.studyfile.settings.SAMPLER_KINDS
SAMPLER_FACTORIES: dict[str, Callable[[StudySpec, int], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": lambda spec, seed: optuna.samplers.RandomSampler(seed=seed),
    "grid": lambda spec, seed: optuna.samplers.GridSampler(space_mod.grid(spec.space), seed=seed),
    "gp": _gp,
    "cmaes": _cmaes,
}


def make_sampler(spec: StudySpec, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    seed = (spec.seed + seed_offset) % (MAX_SEED + 1)  # a 32-bit seed, as NumPy's
    if spec.sampler.kind in RELATIVE:
        _warn_independent(spec)  # once: Optuna's own warning would repeat at every trial
    return SAMPLER_FACTORIES[spec.sampler.kind](spec, seed)


def _successive_halving(spec: StudySpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=p.min_resource, reduction_factor=p.reduction_factor
    )


def _hyperband(spec: StudySpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    return optuna.pruners.HyperbandPruner(
        min_resource=p.min_resource,
        max_resource=spec.train.epochs,
        reduction_factor=p.reduction_factor,
    )


def _median(spec: StudySpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    return optuna.pruners.MedianPruner(
        n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps
    )


# [pruner] type -> its factory; names and docs: sweeper.studyfile.settings.PRUNER_KINDS. asha
# pauses and continues trials itself (sweeper.search.promotion): Optuna only records
PRUNER_FACTORIES: dict[str, Callable[[StudySpec], optuna.pruners.BasePruner]] = {
    "asha": lambda spec: optuna.pruners.NopPruner(),
    "median": _median,
    "successive_halving": _successive_halving,
    "hyperband": _hyperband,
    "none": lambda spec: optuna.pruners.NopPruner(),
}


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    return PRUNER_FACTORIES[spec.pruner.kind](spec)
