"""When a worker starts a trial, how a finished trial is shown, and when failures stop a sweep.

Shared by the trial loop of :mod:`sweeper.search.worker` (one trial at a time) and the packed one of
:mod:`sweeper.search.pack_loop` (several trials at once in one model).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper.errors import SweepAborted
from sweeper.interrupts import INTERRUPTS
from sweeper.search import places
from sweeper.search import promotion as promo
from sweeper.search.attempt import Context, budget_spent
from sweeper.search.outcomes import TrialEvent, describe, finished_count
from sweeper.search.recovery import reap_dead_local_trials
from sweeper.search.trial_record import TrialRecord

if TYPE_CHECKING:
    from sweeper.store.store import Store
    from sweeper.studyfile.study_spec import StudySpec

log = logging.getLogger(__name__)


def failure_reason(t: FrozenTrial) -> str:
    record = TrialRecord.of(t)
    if record.error:
        return record.error
    lines = (record.traceback or "").strip().splitlines()
    return lines[-1] if lines else "no traceback stored"


def environment_aborted(failure: BaseException) -> SweepAborted:
    """The sweep's stop when a trial failed because of this machine (the trial is requeued)."""
    return SweepAborted(
        f"{failure}; this machine cannot run the trial (it is queued again, not counted): "
        "fix the cause and rerun the same command"
    )


def check_failure_rate(study: optuna.Study, spec: StudySpec) -> None:
    """Stop the sweep when too many of the last finished trials failed."""
    window = spec.failure_window
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    ]
    finished.sort(key=lambda t: (t.datetime_complete is None, t.datetime_complete or 0, t.number))
    recent = finished[-window:]
    failed = [t for t in recent if t.state == TrialState.FAIL]
    if len(failed) > spec.max_failure_rate * window:
        last = failed[-1]
        reason = failure_reason(last)
        raise SweepAborted(
            f"{len(failed)} of the last {len(recent)} trials failed (trial {last.number}: "
            f"{reason}); fix the cause and rerun the same command to resume"
        )


def wants_more(
    study: optuna.Study,
    target: int,
    start: float,
    timeout: float | None,
    *,
    store: Store | None = None,
    budget: int | None = None,
    rung_list: tuple[int, ...] = (),
    factor: int = 3,
    compare: str = "all",
    wait: bool = True,
) -> bool:
    """Whether to start another trial; waits while the last ones run in other processes (with
    ``wait``; without, says no at once: a pack trains on with the trials it has).

    Before saying yes it continues the paused trial that has earned it, if any: the study takes
    that queued trial first. Yes means a trial may be taken: a queued one whose configuration
    holds a place, or a place for a new configuration (:mod:`sweeper.search.places`); the
    study's ``ask`` takes it, or raises :class:`~sweeper.search.places.NoPlace` when another
    worker was first.
    """
    while True:
        if timeout is not None and time.monotonic() - start > timeout:
            return False
        if store is not None and budget_spent(store, study.study_name, budget):
            return False
        with INTERRUPTS.deferred():  # a requeue is written whole
            reap_dead_local_trials(study)
        trials = study.get_trials(deepcopy=False)
        done = finished_count(trials)
        if done >= target:
            # no new configuration will start: continue the best paused one, if any is left
            if store is None or not rung_list:
                return False
            with INTERRUPTS.deferred():
                parent = promo.promote(study, store, rung_list, factor, final=True, compare=compare)
            if parent is None:
                return False
            log.info("trial %d promoted to finish the study: it continues", parent)
            continue
        if store is not None:
            with INTERRUPTS.deferred():  # a claim and its trial are written whole
                parent = promo.promote(study, store, rung_list, factor, compare=compare)
            if parent is not None:  # its configuration holds a place: taken even with none free
                log.info("trial %d promoted: it continues from its checkpoint", parent)
                return True
        if places.room(study, trials, target):
            return True  # a queued trial (baseline, requeued, promoted) is taken first
        # the rest is running elsewhere: wait for it to finish, or for its heartbeat to go stale
        if not wait:
            return False
        time.sleep(2.0)
        with INTERRUPTS.deferred(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)


class TrialReporter:
    """Tells a worker's progress display how each trial ended (a :class:`TrialEvent`), with the
    study's count and best value, and what is left of the epoch budget and of the timeout.

    ``start`` is when the worker began its trials, the clock its ``timeout`` counts on.
    """

    def __init__(
        self,
        ctx: Context,
        progress: Callable[[TrialEvent], None] | None,
        target: int,
        start: float,
        timeout: float | None,
    ) -> None:
        self.ctx, self.progress, self.target = ctx, progress, target
        self.start, self.timeout = start, timeout
        budget = ctx.rules.budget
        # the epochs spent before this worker began: its rate counts those trained since
        self.spent = (
            ctx.store.epochs_spent(ctx.name) if progress is not None and budget is not None else 0
        )

    def __call__(self, t: FrozenTrial, seconds: float) -> None:
        if self.progress is None:
            return
        trials = self.ctx.study.get_trials(deepcopy=False)
        event = trial_event(t, seconds, finished_count(trials), self.target)
        values = [x.value for x in trials if x.state == TrialState.COMPLETE and x.value is not None]
        elapsed = time.monotonic() - self.start
        budget = self.ctx.rules.budget
        spent = self.ctx.store.epochs_spent(self.ctx.name) if budget is not None else 0
        self.progress(
            replace(
                event,
                best=max(values) if values else None,
                elapsed=elapsed,
                epochs_run=max(0, spent - self.spent),
                epochs_left=None if budget is None else max(0, budget - spent),
                time_left=None if self.timeout is None else max(0.0, self.timeout - elapsed),
            )
        )


def trial_event(t: FrozenTrial, seconds: float, done: int, target: int) -> TrialEvent:
    state = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
    }.get(t.state, t.state.name.lower())
    description = describe(t) + _continuation(t)
    record = TrialRecord.of(t)
    outcome = record.outcome
    if t.state == TrialState.PRUNED and outcome in ("diverged", "paused", "stalled"):
        state = str(outcome)
        description += f" ({record.reason})"
    elif t.state == TrialState.FAIL:
        description += f" ({failure_reason(t)})"
    return TrialEvent(t.number, state, t.value, description, seconds, done, target)


def _continuation(t: FrozenTrial) -> str:
    """What the line says of a continuation, retry or requeued trial: the epoch it resumed
    after, or that it restarted from epoch 0 and why (never that it continues what it
    restarted)."""
    record = TrialRecord.of(t)
    parent = record.promoted_from
    if record.restarted:
        what = f"restarts trial {parent}" if parent is not None else "restarted"
        return f" ({what} from epoch 0: {record.restarted})"
    if parent is None:
        return ""
    at = record.resumed_from if record.resumed_from is not None else record.promoted_at
    return f" (continues trial {parent} after epoch {at})"


def worker_wants_more(
    ctx: Context, target: int, start: float, timeout: float | None, *, wait: bool = True
) -> bool:
    """:func:`wants_more` for a worker, by its study's rules (budget, rungs, factor)."""
    rules = ctx.rules
    return wants_more(
        ctx.study,
        target,
        start,
        timeout,
        store=ctx.store,
        budget=rules.budget,
        rung_list=rules.rungs if rules.asha else (),
        factor=rules.factor,
        compare=rules.compare,
        wait=wait,
    )
