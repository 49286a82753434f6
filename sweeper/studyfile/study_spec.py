"""The validated study as typed dataclasses: its space, sampler, pruner and baselines, and the
whole :class:`StudySpec` that :func:`sweeper.studyfile.config.parse_study` returns."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sweeper.studyfile.dimensions import DIMENSIONS, Choices, Dimension, Fixed
from sweeper.studyfile.settings import default
from sweeper.training.data import DataSpec
from sweeper.training.train_trial import TrainSettings


@dataclass(frozen=True)
class SpaceSpec:
    schedules: Choices | Fixed
    dims: Mapping[str, Dimension]

    def families(self) -> tuple[str, ...]:
        if isinstance(self.schedules, Fixed):
            return (str(self.schedules.value),)
        return tuple(str(v) for v in self.schedules.values)

    def used(self, name: str) -> bool:
        """Whether any family of the space uses dimension ``name``."""
        return bool(DIMENSIONS[name].families & set(self.families()))


@dataclass(frozen=True)
class SamplerSpec:
    kind: str = default("sampler", "type")
    n_startup_trials: int = default("sampler", "n_startup_trials")
    # the schedule family trained first, from the top of the searched initial_lr range, its full
    # length with no rung (a strong configuration early, and an anchor for the sampler);
    # "none": off. The default is skipped where the space has no such family.
    reference: str = default("sampler", "reference")
    reference_given: bool = False  # named in the study file (then it must be in the space)


@dataclass(frozen=True)
class PrunerSpec:
    kind: str = default("pruner", "type")
    n_startup_trials: int = default("pruner", "n_startup_trials")
    n_warmup_steps: int = default("pruner", "n_warmup_steps")
    min_resource: int = default("pruner", "min_resource")
    reduction_factor: int = default("pruner", "reduction_factor")
    # asha: configurations spread over this many brackets, bracket b skipping the first b rungs
    # (the last trains its full length unless the budget runs out), Hyperband's shares
    brackets: int = default("pruner", "brackets")
    # asha: "annealed" compares a configuration at a rung only with those whose rate has fallen
    # no further than its own by then (sweeper.search.promotion.peers)
    compare: str = default("pruner", "compare")
    # a tuned trial whose validation accuracy after its first epoch (of at least 50 updates) is
    # at most stall_factor / num_classes stops there ("stalled"); 0 or type "none" turns it off
    stall_factor: float = default("pruner", "stall_factor")


@dataclass(frozen=True)
class Baseline:
    name: str
    values: Mapping[str, Any]

    @property
    def family(self) -> str:
        return str(self.values["schedule"])


@dataclass(frozen=True)
class StudySpec:
    name: str
    source: str  # file path, or "<default>"
    text: str  # the study file's text, as stored
    data: DataSpec
    train: TrainSettings
    space: SpaceSpec
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    baselines: tuple[Baseline, ...] = ()
    seed: int = default("study", "seed")
    n_trials: int = default("study", "n_trials")
    budget_epochs: int | None = None  # stop once this many epochs were trained in all
    metric: str = default("study", "metric")
    overrides: tuple[str, ...] = ()  # section.key=value settings applied over the text
    max_failure_rate: float = default("study", "max_failure_rate")
    failure_window: int = default("study", "failure_window")
    artifacts: str | None = None  # the shared checkpoint store's URL (file:// or s3://)

    @property
    def hash(self) -> str:
        """Identity of the study's definition: its text and its overrides."""
        blob = self.text + "\0" + "\n".join(self.overrides)
        return hashlib.sha256(blob.encode()).hexdigest()
