"""The model as part of a study's identity, beside its study file's hash.

A user model's fingerprint (:mod:`sweeper.training.fingerprint`: the network built for the
study's data, and the function's source) is stored with the study, in the study user attribute
``MODEL_ATTR``, by the first run that has it. A later run whose model differs is refused before
anything is written, naming what changed, unless it is allowed (``--allow-changed``), which
records the new fingerprint, or no epoch of the study was trained yet (a model that never built
on this machine, then fixed: nothing to guard), which records it too. A study stored before fingerprints existed gets its first one
without a word. Built-in models have none: the study file names them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sweeper.errors import StudyChangedError
from sweeper.training.backend import CONSOLE
from sweeper.training.fingerprint import ModelFingerprint, differences

if TYPE_CHECKING:
    import optuna

    from sweeper.store.store import Store

MODEL_ATTR = "model_fingerprint"  # study user attr: the user model's fingerprint, as JSON data

TUNE_FIX = (
    "use the model the study was created with, another --study-name, or --allow-changed to "
    "continue it with this one"
)
WORKER_FIX = (
    "run this worker with the model the study was created with, or continue the study with "
    "this one by `sweeper tune STUDY_FILE --allow-changed` (`allow_changed=True` from Python)"
)


def stored_fingerprint(store: Store, name: str) -> ModelFingerprint | None:
    """The fingerprint stored with study ``name``, read without creating anything; None when
    the study or its fingerprint is not stored."""
    if store.study_file(name) is None:  # no sweeper study of that name (or no store yet)
        return None
    storage = store.optuna_storage()
    with store.guard():
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:
            return None
        attrs = storage.get_study_user_attrs(study_id)
    return ModelFingerprint.from_attr(attrs.get(MODEL_ATTR))


def check_model_identity(
    store: Store,
    name: str,
    model: str,
    now: ModelFingerprint | None,
    *,
    allow_changed: bool,
    fix: str = TUNE_FIX,
) -> None:
    """Refuse ``now``, the fingerprint of user model ``model``, when study ``name`` was stored
    with another one (one line naming what changed and ``fix``), unless ``allow_changed``."""
    if now is None or allow_changed:
        return
    before = stored_fingerprint(store, name)
    changed = None if before is None else differences(before, now)
    if changed and store.epochs_spent(name) == 0:
        return  # nothing was trained with the old model (it never built, say): no result to guard
    if changed:
        raise StudyChangedError(
            f"the model {model!r} changed since study {name!r} in {store.masked_url} was "
            f"created: {changed}; {fix}"
        )


def record_model_identity(study: optuna.Study, model: str, now: ModelFingerprint | None) -> None:
    """Store ``now`` with the study when it has none yet or another (a change that was
    allowed, said in one console line)."""
    if now is None:
        return
    before = ModelFingerprint.from_attr(study.user_attrs.get(MODEL_ATTR))
    changed = None if before is None else differences(before, now)
    if before is None or changed:
        if changed:
            CONSOLE.warning(
                "the model %r changed since study %r was created (%s): continuing with this one, "
                "its fingerprint recorded",
                model,
                study.study_name,
                changed,
            )
        study.set_user_attr(MODEL_ATTR, now.to_attr())
