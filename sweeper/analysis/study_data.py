"""One study as read from the store (:class:`StudyData`) and the read-only Optuna study over its
trials (:func:`copy_study`, over :class:`TrialsStorage`), on which Optuna's importance evaluators
and plots run without copying a trial.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna

from sweeper.store import optuna_ids

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial


@dataclass
class StudyData:
    """A study as read from the store: its trials, in number order, and its attributes."""

    name: str
    storage: str  # masked URL
    direction: str  # "maximize" | "minimize"
    user_attrs: dict[str, Any]
    trials: list[FrozenTrial]
    _copies: dict[str, optuna.Study] = field(default_factory=dict, repr=False)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def steps_per_epoch(self) -> int | None:
        value = self.user_attrs.get("steps_per_epoch")
        return int(value) if value else None

    @property
    def epochs(self) -> int | None:
        value = self.user_attrs.get("epochs")
        return int(value) if value else None

    def complete(self) -> list[FrozenTrial]:
        from optuna.trial import TrialState

        return [
            t
            for t in self.trials
            if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
        ]

    def ranked(self) -> list[FrozenTrial]:
        """Complete trials, best first."""
        sign = -1.0 if self.maximize else 1.0
        return sorted(self.complete(), key=lambda t: (sign * float(t.value or 0.0), t.number))

    def as_study(
        self, trials: Iterable[FrozenTrial] | None = None, key: str = "all"
    ) -> optuna.Study:
        """A read-only Optuna study of ``trials`` (all by default), cached under ``key``."""
        if key not in self._copies:
            chosen = self.trials if trials is None else trials
            self._copies[key] = copy_study(chosen, self.direction)
        return self._copies[key]


def admissible(trial: FrozenTrial) -> FrozenTrial:
    """``trial``, its distributions widened where a value lies outside them.

    A baseline trial may hold a value outside the searched range (enqueued on purpose); Optuna
    stores it, but refuses such a trial in ``add_trials``.
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import FrozenTrial

    widened: dict[str, BaseDistribution] = {}
    for name, dist in trial.distributions.items():
        value = trial.params[name]
        if isinstance(dist, FloatDistribution) and not dist.low <= value <= dist.high:
            step = None if dist.step is None or dist.log else dist.step
            low, high = min(dist.low, value), max(dist.high, value)
            if step is not None:
                low = dist.low - math.ceil((dist.low - low) / step) * step
                high = dist.high + math.ceil((high - dist.high) / step) * step
            widened[name] = FloatDistribution(low, high, log=dist.log, step=step)
        elif isinstance(dist, IntDistribution) and not dist.low <= value <= dist.high:
            widened[name] = IntDistribution(
                min(dist.low, value), max(dist.high, value), log=dist.log
            )
        elif isinstance(dist, CategoricalDistribution) and value not in dist.choices:
            widened[name] = CategoricalDistribution([*dist.choices, value])
    if not widened:
        return trial
    return FrozenTrial(
        number=trial.number,
        state=trial.state,
        value=None,
        values=trial.values,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=trial.params,
        distributions={**trial.distributions, **widened},
        user_attrs=trial.user_attrs,
        system_attrs=trial.system_attrs,
        intermediate_values=trial.intermediate_values,
        trial_id=optuna_ids.trial_id(trial),
    )


class TrialsStorage(optuna.storages.BaseStorage):
    """A read-only Optuna storage over trials already read: one study, nothing can be written.

    Optuna's functions (importance evaluators, plots) run on a :class:`optuna.Study` over it
    without copying a trial: the trials are handed out as they are (Optuna's storage contract lets
    a storage assume that its callers never modify what it returns).
    """

    def __init__(
        self,
        trials: Iterable[FrozenTrial],
        direction: str = "maximize",
        name: str = "copy",
        user_attrs: dict[str, Any] | None = None,
    ) -> None:
        from optuna.study import StudyDirection

        self._trials = sorted((admissible(t) for t in trials), key=lambda t: t.number)
        self._by_id = {optuna_ids.trial_id(t): t for t in self._trials}
        self._name = name
        self._direction = StudyDirection[direction.upper()]
        self._user_attrs = dict(user_attrs or {})

    def _read_only(self, *_args: Any, **_kwargs: Any) -> Any:
        raise NotImplementedError("a TrialsStorage is read-only")

    create_new_study = delete_study = set_study_user_attr = set_study_system_attr = _read_only
    create_new_trial = set_trial_param = set_trial_state_values = _read_only
    set_trial_intermediate_value = set_trial_user_attr = set_trial_system_attr = _read_only

    def get_study_id_from_name(self, study_name: str) -> int:
        if study_name != self._name:
            raise KeyError(study_name)
        return 0

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._name

    def get_study_directions(self, study_id: int) -> list[optuna.study.StudyDirection]:
        return [self._direction]

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._user_attrs

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return {}

    def get_all_studies(self) -> list[Any]:
        raise NotImplementedError("a TrialsStorage holds one study and lists none")

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._by_id[trial_id]

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[optuna.trial.TrialState] | None = None,
    ) -> list[FrozenTrial]:
        if states is None:
            return list(self._trials)
        return [t for t in self._trials if t.state in states]


def copy_study(trials: Iterable[FrozenTrial], direction: str = "maximize") -> optuna.Study:
    """A read-only Optuna study of ``trials``, which keep their numbers (see TrialsStorage)."""
    storage = TrialsStorage(trials, direction)
    return optuna.Study("copy", storage, sampler=optuna.samplers.RandomSampler(seed=0))
