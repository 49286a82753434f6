"""The sampler and the pruner a study file asks for (Optuna's own classes)."""

from __future__ import annotations

import optuna

from sweeper import space as space_mod
from sweeper.config import StudySpec


def make_sampler(spec: StudySpec, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    seed = spec.seed + seed_offset
    if spec.sampler.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler.kind == "grid":
        return optuna.samplers.GridSampler(space_mod.grid(spec.space), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.sampler.n_startup_trials)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    if p.kind in ("none", "asha"):
        # asha pauses and continues trials itself (sweeper.promotion): Optuna only records
        return optuna.pruners.NopPruner()
    if p.kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=p.min_resource, reduction_factor=p.reduction_factor
        )
    if p.kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=p.min_resource,
            max_resource=spec.train.epochs,
            reduction_factor=p.reduction_factor,
        )
    return optuna.pruners.MedianPruner(
        n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps
    )
