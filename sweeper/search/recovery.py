"""Recovery of trials whose process is gone: stamping the running attempt with its worker,
putting a trial back in the queue, and finding the trials no live process owns.

A trial left RUNNING by a process that died is retried with the same parameters: at once when
that process ran where this one sees its pid (same host, boot and PID namespace: its pid is gone;
see :mod:`sweeper.search.liveness`), after the heartbeat grace period when it died before its
first heartbeat (:func:`unowned`), otherwise when Optuna's heartbeat marks it stale.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from sweeper.environment import host_name
from sweeper.search.liveness import Owner, process_scope
from sweeper.search.trial_record import (
    REQUEUED_ATTR,
    WORKER_ATTR,
    WORKER_SCOPE_ATTR,
    WORKER_SINCE_ATTR,
    TrialRecord,
)
from sweeper.store import optuna_ids
from sweeper.store.store import GRACE_PERIOD
from sweeper.training.backend import CONSOLE

log = logging.getLogger(__name__)


def requeue(study: optuna.Study, trial_id: int, reason: str) -> bool:
    """Put a RUNNING trial back to WAITING: the next run re-trains it with the same parameters.

    It keeps its number (so it runs before later queued trials), parameters and user attributes;
    its per-epoch rows are overwritten, not duplicated, when it runs again.
    """
    storage = optuna_ids.storage_of(study)
    try:
        trial = storage.get_trial(trial_id)
        if trial.state != TrialState.RUNNING:
            return False
        storage.set_trial_user_attr(trial_id, REQUEUED_ATTR, reason)
        ok = storage.set_trial_state_values(trial_id, TrialState.WAITING)
    except (RuntimeError, UpdateFinishedTrialError):  # it finished meanwhile
        return False
    if ok:
        _forget_heartbeat(storage, trial_id)
        log.info("trial %d %s: queued again with the same parameters", trial.number, reason)
    return ok


def _engine_of(storage: Any) -> Any:
    """The SQLAlchemy engine under an Optuna storage (its cache wraps the RDB storage), or None."""
    return getattr(getattr(storage, "_backend", storage), "engine", None)


def _forget_heartbeat(storage: Any, trial_id: int) -> None:
    """Delete the last heartbeat of a trial put back in the queue.

    When the trial is taken from the queue again, maybe days later, Optuna marks it RUNNING a
    moment before the new attempt's first heartbeat; kept, the old heartbeat would make the trial
    look stale to any other worker in that moment, which would fail it and queue a copy while it
    trains. A RUNNING trial without a heartbeat is never stale.
    """
    engine = _engine_of(storage)
    if engine is None:
        return
    try:
        with engine.begin() as con:
            con.execute(
                sa.text("DELETE FROM trial_heartbeats WHERE trial_id = :trial_id"),
                {"trial_id": trial_id},
            )
    except sa.exc.SQLAlchemyError:  # no heartbeat table (heartbeats never enabled): nothing to do
        log.debug("could not delete the heartbeat of trial id %d", trial_id, exc_info=True)


def mark_worker(trial: optuna.Trial, worker: str, scope: str | None = None) -> None:
    """Stamp the running attempt of ``trial`` with its process, ``host:pid``, and the scope
    where that pid names it (default: this process's boot and PID namespace).

    The stamp names the attempt by its start time, written last: a trial taken from the queue
    still carries the stamp of the process that ran it before (dead, or it would not have been
    queued) until this call, and must not be mistaken for a trial of that dead process meanwhile.
    """
    trial.set_user_attr(WORKER_SCOPE_ATTR, process_scope() if scope is None else scope)
    trial.set_user_attr(WORKER_ATTR, worker)
    started = trial.datetime_start
    trial.set_user_attr(WORKER_SINCE_ATTR, started.isoformat() if started else "")


def _stamped_by_this_attempt(trial: FrozenTrial) -> bool:
    started = trial.datetime_start
    return started is not None and trial.user_attrs.get(WORKER_SINCE_ATTR) == started.isoformat()


def _beating(storage: Any, trial_ids: list[int]) -> set[int]:
    """The trials among ``trial_ids`` that have a heartbeat row."""
    engine = _engine_of(storage)
    if engine is None or not trial_ids:
        return set(trial_ids)  # no heartbeats to read: judge nothing by them
    try:
        with engine.connect() as con:
            rows = con.execute(
                sa.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": trial_ids},
            )
            return {int(r[0]) for r in rows}
    except sa.exc.SQLAlchemyError:
        return set(trial_ids)


def unowned(trial: FrozenTrial, beating: set[int], now: datetime | None = None) -> bool:
    """A RUNNING trial no process owns: its attempt was never stamped and never beat, and it
    started longer than the heartbeat grace period ago (its process died between taking it and
    its first heartbeat, which Optuna's stale check cannot see)."""
    started = trial.datetime_start
    if started is None or _stamped_by_this_attempt(trial) or optuna_ids.trial_id(trial) in beating:
        return False
    return ((now or datetime.now()) - started).total_seconds() > GRACE_PERIOD


def owner_of(trial: FrozenTrial) -> Owner | None:
    """The process named by the stamp of ``trial``'s running attempt; None when it has none."""
    if not _stamped_by_this_attempt(trial):
        return None
    record = TrialRecord.of(trial)
    return Owner.parse(record.worker or "", record.worker_scope or "")


def reap_dead_local_trials(study: optuna.Study) -> int:
    """Requeue RUNNING trials whose process is known to be gone.

    A trial whose running attempt was stamped by ``mark_worker`` where this process sees its
    pid (same host name, boot and PID namespace) is requeued when that process no longer
    exists; one just taken from the queue, not yet stamped by its new process, is left alone for
    the heartbeat grace period, then requeued if it never beat (:func:`unowned`). Trials of
    processes this one cannot see (other hosts, other containers of one host name) are left to
    Optuna's heartbeat, which notices them after its grace period and queues a copy.
    """
    host, scope = host_name(), process_scope()
    n = 0
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    beating = _beating(optuna_ids.storage_of(study), [optuna_ids.trial_id(t) for t in running])
    for t in running:
        if unowned(t, beating):
            if requeue(
                study,
                optuna_ids.trial_id(t),
                "was left running by a process that died before it began",
            ):
                n += 1
                CONSOLE.info(
                    "trial %d was left running by a process that died before it began: "
                    "queued again",
                    t.number,
                )
            continue
        owner = owner_of(t)
        if owner is None or not owner.gone(host, scope):
            continue
        pid = owner.pid
        if requeue(study, optuna_ids.trial_id(t), f"was left running by process {pid}, which died"):
            n += 1
            CONSOLE.info(
                "trial %d was left running by process %d, which died: queued again", t.number, pid
            )
    return n


def ended_elsewhere(exc: BaseException) -> bool:
    """Whether ``exc`` says the trial was no longer running when this process reported on it or
    told Optuna how it ended: another process ended it, or put it back in the queue (Optuna's
    ``UpdateFinishedTrialError``, or "Cannot tell a PRUNED trial.", maybe under the assertion
    ``study.optimize`` raises when the trial it told is WAITING)."""
    if not isinstance(exc, (ValueError, RuntimeError, AssertionError)):
        return False
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, UpdateFinishedTrialError):
            return True
        if isinstance(e, (ValueError, RuntimeError)) and str(e).startswith("Cannot tell a "):
            return True
        e = e.__cause__ if e.__cause__ is not None or e.__suppress_context__ else e.__context__
    return False


def drop_result(number: int) -> None:
    """Say that this process's result of trial ``number`` is dropped: another process ended it."""
    CONSOLE.warning("trial %d was ended by another worker; this result is dropped", number)


@contextmanager
def dropped_if_ended_elsewhere(asked: list[int]) -> Iterator[None]:
    """Around training and telling the trial numbered ``asked[0]`` (set once it is asked): when
    another process ended it meanwhile, one line, its result dropped and ``asked`` emptied; any
    other error is raised."""
    try:
        yield
    except (ValueError, RuntimeError, AssertionError) as exc:
        if not asked or not ended_elsewhere(exc):
            raise
        drop_result(asked.pop())
