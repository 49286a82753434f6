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
