"""The one adapter to Optuna's private attributes.

sweeper's tables key every epoch row on a trial's storage id, and the trial loop needs a trial's
frozen record while it runs; Optuna's public API names neither (a trial's ``_trial_id``, a study's
``_storage`` and ``_study_id``). Every other module asks here, so an Optuna release that renames
them is fixed in this file alone. No Keras, no store.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial


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
