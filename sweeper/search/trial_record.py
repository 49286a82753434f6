"""Every user attribute sweeper writes on an Optuna trial, declared once, and a typed view of them.

Optuna keeps a trial's user attributes as JSON values under string keys. Each key sweeper uses is
one constant here, with what its value is and who writes it; no other module of the package
spells one out (tests/study/test_trial_record.py). :class:`TrialRecord` reads them all from one
trial (:meth:`TrialRecord.of`), or from a plain mapping of them (:meth:`TrialRecord.from_attrs`:
the rows analysis/store_status.py reads by SQL), each as its type, None when the trial does not
carry it.

A study's own attributes (its steps per epoch, epochs, target, budget, the LR range test's
ranges, the model's fingerprint, the kept best model, the shared checkpoints' URL) are not here:
they sit beside the code that writes them.

No Keras, no store: read by the search, the read side and the API alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

# -- a configuration's chain of trials (sweeper.search.promotion) --------------------------------
# int: the number of the first trial of this trial's configuration; written by Attempt.prepare
# (search/attempt.py) and promotion.child_of (a continuation is created with it)
CONFIG_ATTR = "config"
# int: the number of the trial this one continues; written by promotion.child_of
PROMOTED_FROM_ATTR = "promoted_from"
# int: the epochs the parent had trained when it was continued; written by promotion.child_of
PROMOTED_AT_ATTR = "promoted_at_epoch"
# int: the epochs trained when the trial paused (at a rung, or the budget spent); Attempt.tell
PAUSED_ATTR = "paused_at_epoch"
# str: why it paused, "rung" | "budget"; written by Attempt.tell
PAUSE_REASON_ATTR = "pause_reason"

# -- how an attempt ended (sweeper.search.attempt) ------------------------------------------------
# str: "paused" | "stalled" | "diverged" for a trial stopped by sweeper (unset: the Optuna state
# says it); written by Attempt.tell
OUTCOME_ATTR = "outcome"
# str | None: why it paused or stopped, in words; written by Attempt.tell beside OUTCOME_ATTR
REASON_ATTR = "reason"
# str: the one-line error of a failed trial (``Type: message``); written by Attempt.record_error
ERROR_ATTR = "error"
# str: the end of a failed trial's traceback; written by Attempt.record_error
TRACEBACK_ATTR = "traceback"
# int: the epoch training resumed at, from a checkpoint; written by Attempt.on_epoch
RESUMED_ATTR = "resumed_from_epoch"
# str: why a continuation, retry or requeued trial trained again from epoch 0; written by
# Attempt.resume_point
RESTARTED_ATTR = "restarted"

# -- what the trial trained (sweeper.search.attempt) ----------------------------------------------
# dict: the trial's schedule (Schedule.to_dict, read back by training.schedules.from_dict);
# written by Attempt.prepare
SCHEDULE_ATTR = "schedule"
# str: the optimizer, OptimizerSpec.describe() ("sgd", "adam", ...); written by Attempt.prepare
OPTIMIZER_ATTR = "optimizer"
# int: the steps per epoch the trial's schedule was built for; written by Attempt.prepare
STEPS_PER_EPOCH_ATTR = "steps_per_epoch"

# -- what the study queued it as (sweeper.search.runner, sweeper.search.reference) ---------------
# str: the baseline's name; queued with the trial by runner._enqueue_baselines
BASELINE_ATTR = "baseline"
# dict: every value the baseline sets; queued with BASELINE_ATTR by runner._enqueue_baselines
BASELINE_VALUES_ATTR = "baseline_values"
# str: the reference configuration's one-line description; queued by runner._enqueue_reference
# and reference.step_down, kept by a continuation (promotion.child_of)
REFERENCE_ATTR = "reference"
# float | None: the initial rate this reference tries (None: pinned); queued with REFERENCE_ATTR
REFERENCE_RATE_ATTR = "reference_rate"

# -- who runs it (sweeper.search.recovery) -------------------------------------------------------
# str: "host:pid" of the process running the trial's attempt; written by recovery.mark_worker
WORKER_ATTR = "worker"
# str: where that pid names the process (liveness.process_scope: boot id, PID namespace); "" or
# absent: judged by host and pid alone; written by recovery.mark_worker
WORKER_SCOPE_ATTR = "worker_scope"
# str: the start time (ISO) of the attempt WORKER_ATTR was written for (a trial put back in the
# queue keeps the stamp of its last process until the next one overwrites it); "" when unknown;
# written by recovery.mark_worker, last
WORKER_SINCE_ATTR = "worker_since"
# str: why the trial was put back in the queue ("was interrupted", ...); written by
# recovery.requeue
REQUEUED_ATTR = "requeued"


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    """A number as a float; anything else (a pinned reference's None) reads as None."""
    return float(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """A typed, read-only view of one trial's sweeper attributes; None where the trial carries
    none. Numbers read with ``int()`` as the readers always did (a value of another type
    raises, as it did there); mappings (schedule, baseline values) are the stored JSON data."""

    configuration: int | None  # CONFIG_ATTR
    promoted_from: int | None  # PROMOTED_FROM_ATTR: the parent this trial continues
    promoted_at: int | None  # PROMOTED_AT_ATTR
    paused_at: int | None  # PAUSED_ATTR
    pause_reason: str | None  # PAUSE_REASON_ATTR
    outcome: str | None  # OUTCOME_ATTR
    reason: str | None  # REASON_ATTR
    error: str | None  # ERROR_ATTR
    traceback: str | None  # TRACEBACK_ATTR
    resumed_from: int | None  # RESUMED_ATTR
    restarted: str | None  # RESTARTED_ATTR
    schedule: Mapping[str, Any] | None  # SCHEDULE_ATTR
    optimizer: str | None  # OPTIMIZER_ATTR
    steps_per_epoch: int | None  # STEPS_PER_EPOCH_ATTR
    baseline: str | None  # BASELINE_ATTR
    baseline_values: Mapping[str, Any] | None  # BASELINE_VALUES_ATTR
    reference: str | None  # REFERENCE_ATTR
    reference_rate: float | None  # REFERENCE_RATE_ATTR
    worker: str | None  # WORKER_ATTR
    worker_scope: str | None  # WORKER_SCOPE_ATTR
    worker_since: str | None  # WORKER_SINCE_ATTR
    requeued: str | None  # REQUEUED_ATTR

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord:
        """The record of a frozen trial (its ``user_attrs``)."""
        return cls.from_attrs(trial.user_attrs)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> TrialRecord:
        """The record of a trial's user attributes as a plain mapping (key -> JSON value)."""
        get = attrs.get
        return cls(
            configuration=_int(get(CONFIG_ATTR)),
            promoted_from=_int(get(PROMOTED_FROM_ATTR)),
            promoted_at=_int(get(PROMOTED_AT_ATTR)),
            paused_at=_int(get(PAUSED_ATTR)),
            pause_reason=_str(get(PAUSE_REASON_ATTR)),
            outcome=_str(get(OUTCOME_ATTR)),
            reason=_str(get(REASON_ATTR)),
            error=_str(get(ERROR_ATTR)),
            traceback=_str(get(TRACEBACK_ATTR)),
            resumed_from=_int(get(RESUMED_ATTR)),
            restarted=_str(get(RESTARTED_ATTR)),
            schedule=get(SCHEDULE_ATTR),
            optimizer=_str(get(OPTIMIZER_ATTR)),
            steps_per_epoch=_int(get(STEPS_PER_EPOCH_ATTR)),
            baseline=_str(get(BASELINE_ATTR)),
            baseline_values=get(BASELINE_VALUES_ATTR),
            reference=_str(get(REFERENCE_ATTR)),
            reference_rate=_number(get(REFERENCE_RATE_ATTR)),
            worker=_str(get(WORKER_ATTR)),
            worker_scope=_str(get(WORKER_SCOPE_ATTR)),
            worker_since=_str(get(WORKER_SINCE_ATTR)),
            requeued=_str(get(REQUEUED_ATTR)),
        )
