"""What a run of a study did (:class:`TuneSummary`), read from the study once the run ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from sweeper.search.configurations import configurations, count_configurations
from sweeper.search.outcomes import count_states, describe
from sweeper.search.trial_record import BASELINE_ATTR


@dataclass
class TuneSummary:
    study_name: str
    storage: str
    target: int
    counts: dict[str, int]
    ran: int
    seconds: float
    best_value: float | None = None
    best_number: int | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_schedule: str | None = None
    best_baseline: str | None = None
    best_baseline_value: float | None = None
    interrupted: bool = False
    workers: int = 1
    lr_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    tuned_complete: int = 0  # completed trials that are not baselines
    epochs_spent: int = 0  # epochs trained for the study, by every run and worker
    budget_epochs: int | None = None
    configs: dict[str, int] = field(default_factory=dict)  # configurations by ConfigState

    @property
    def trials_per_hour(self) -> float | None:
        return self.ran * 3600.0 / self.seconds if self.seconds > 0 and self.ran else None

    @property
    def gain(self) -> float | None:
        if self.best_value is None or self.best_baseline_value is None:
            return None
        return self.best_value - self.best_baseline_value


def summarize(study: optuna.Study, target: int, storage: str) -> TuneSummary:
    trials = study.get_trials(deepcopy=False)
    summary = TuneSummary(
        study_name=study.study_name,
        storage=storage,
        target=target,
        counts=count_states(trials),
        ran=0,
        seconds=0.0,
        configs=count_configurations(configurations(trials)),
    )
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if complete:
        best = max(complete, key=lambda t: t.value or 0.0)
        summary.best_value = best.value
        summary.best_number = best.number
        summary.best_params = dict(best.params)
        summary.best_schedule = describe(best)
    baselines = [t for t in complete if t.user_attrs.get(BASELINE_ATTR)]
    summary.tuned_complete = len(complete) - len(baselines)
    if baselines:
        b = max(baselines, key=lambda t: t.value or 0.0)
        summary.best_baseline = str(b.user_attrs[BASELINE_ATTR])
        summary.best_baseline_value = b.value
    return summary
