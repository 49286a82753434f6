"""The one adapter to Optuna's private attributes.

sweeper's tables key every epoch row on a trial's storage id, the trial loop needs a trial's
frozen record while it runs, and a worker takes its trials itself (a queued one, or a new one,
only where the study has a place for it: :mod:`sweeper.search.places`); Optuna's public API names
none of these (a trial's ``_trial_id``, a study's ``_storage``, ``_study_id`` and its per-trial
cache of trials). Every other module asks here, so an Optuna release that renames them is fixed in
this file alone. No Keras, no store.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The trial's id in the storage (unique across studies, unlike its number)."""
    return int(trial._trial_id)


def storage_of(study: optuna.Study) -> Any:
    """The storage a study object reads and writes (Optuna's cached RDB storage)."""
    return study._storage


def frozen(study: optuna.Study, trial: optuna.Trial) -> FrozenTrial:
    """The stored record of a running trial: its attributes as queued (retry, promotion)."""
    return study._storage.get_trial(trial._trial_id)


def id_of_number(study: optuna.Study, number: int) -> int:
    """The storage id of the study's trial ``number``."""
    return int(study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number))


def take_queued(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Take the queued (WAITING) ``trial``: RUNNING now, as ``study.ask`` takes one; False when
    another process took it first (the storage switches the state once)."""
    try:
        return bool(study._storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING))
    except UpdateFinishedTrialError:  # it finished meanwhile
        return False


def new_trial_id(study: optuna.Study) -> int:
    """A new RUNNING trial of the study, as ``study.ask`` creates one when nothing is queued: its
    storage id."""
    return int(study._storage.create_new_trial(study._study_id))


def number_of_id(study: optuna.Study, trial_id: int) -> int:
    """The number of the study's trial of storage id ``trial_id``."""
    return int(study._storage.get_trial_number_from_id(trial_id))


def trial_of(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """The trial object of a trial just taken, as ``study.ask`` returns it: the study's cache of
    trials (its sampler's view within one trial) is dropped first, so the sampler sees the study
    as it is now."""
    study._thread_local.cached_all_trials = None
    return optuna.Trial(study, trial_id)


class TrialList:
    """A study's trials in number order, as ``study.get_trials(deepcopy=False)`` gives them, read
    by what changed since the last read: the trials new since then and those that were unfinished
    then (Optuna never changes a finished trial).

    Optuna's cached storage fetches only those rows from the database too, but then sorts every
    trial of the study on each call, and a worker asks several times per trial: at 10,000 trials
    that sort is most of a worker's coordination time (docs/benchmarks.md §13). This keeps the
    list itself and touches only the changed entries. It reads the cache's private dictionary
    (``storage._studies[...].trials``), hence here; any other storage, or trial numbers read out
    of order (a later trial committed before an earlier one), take Optuna's own path."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study
        self._trials: list[FrozenTrial] = []
        self._open: set[int] = set()  # numbers of the trials unfinished at the last read

    def read(self) -> list[FrozenTrial]:
        storage: Any = self._study._storage
        study_id = self._study._study_id
        cache = getattr(storage, "_studies", None)
        refresh = getattr(storage, "_read_trials_from_remote_storage", None)
        if cache is None or refresh is None:
            return self._study._storage.get_all_trials(study_id, deepcopy=False)
        refresh(study_id)
        with storage._lock:
            cached: dict[int, FrozenTrial] = cache[study_id].trials
            if len(cached) < len(self._trials):  # the study was emptied: read it anew
                self._trials, self._open = [], set()
            # numbers 0 .. len - 1 were all there at the last read (the cache never drops one):
            # the new ones must continue them, else a number is not read yet
            if not all(n in cached for n in range(len(self._trials), len(cached))):
                self._trials, self._open = [], set()
                return sorted(cached.values(), key=lambda t: t.number)
            for number in list(self._open):
                trial = self._trials[number] = cached[number]
                if trial.state.is_finished():
                    self._open.discard(number)
            for number in range(len(self._trials), len(cached)):
                trial = cached[number]
                self._trials.append(trial)
                if not trial.state.is_finished():
                    self._open.add(number)
            return list(self._trials)
