"""The trial vocabulary: what a finished trial is, how trials are counted and described, and what
the progress display is told after each trial and each epoch.

Read by the runner, the workers and the progress display; no Keras, no store of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

from sweeper.errors import NotTrainedError
from sweeper.search import promotion as promo
from sweeper.search import space as space_mod
from sweeper.search.folds import Fold
from sweeper.search.trial_record import PAUSE_REASON_ATTR, TrialRecord

if TYPE_CHECKING:
    from sweeper.training.handover import Tuned

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class TrialEvent:
    """What the progress display is told after each trial: the trial, the study's count and best,
    and what bounds the rest of the run (the display's ETA)."""

    number: int
    state: str  # complete | pruned | paused | stalled | diverged | failed
    value: float | None
    description: str
    seconds: float
    finished: int
    target: int
    best: float | None = None  # the study's best complete value so far (baselines included)
    elapsed: float = 0.0  # seconds since this worker began its trials (0: not known)
    epochs_run: int = 0  # epochs trained for the study since then, by every process
    epochs_left: int | None = None  # of the epoch budget; None: no budget
    time_left: float | None = None  # of the timeout, after which no trial starts; None: none


@dataclass(frozen=True)
class EpochEvent:
    """What the progress display is told after each epoch a trial trains: epoch ``epoch`` of
    ``epochs`` (1-based: the trial's full length), ``seconds`` since its attempt began."""

    number: int
    epoch: int
    epochs: int
    val_accuracy: float | None
    seconds: float


def _add_retried(out: set[int], t: FrozenTrial) -> None:
    # the retry callback's "retry_history": every earlier attempt of this trial
    out.update(t.system_attrs.get("retry_history", ()))


_superseded: Fold[set[int]] = Fold(set, _add_retried, set.copy)


def superseded(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that have been queued again (their retry counts instead)."""
    return _superseded(trials)


@dataclass
class _Tally:
    """The trials by state, those whose count depends on later trials (continued, retried) by
    number: what :func:`count_states` folds."""

    complete: int = 0
    paused: set[int] = field(default_factory=set)
    budget_paused: set[int] = field(default_factory=set)  # paused when the epoch budget ran out
    pruned: set[int] = field(default_factory=set)  # pruned and not paused
    failed: set[int] = field(default_factory=set)
    running: int = 0
    waiting: int = 0

    def copy(self) -> _Tally:
        return _Tally(
            self.complete,
            set(self.paused),
            set(self.budget_paused),
            set(self.pruned),
            set(self.failed),
            self.running,
            self.waiting,
        )

    def add(self, t: FrozenTrial) -> None:
        if t.state == TrialState.COMPLETE:
            self.complete += 1
        elif t.state == TrialState.PRUNED:
            if promo.is_paused(t):
                self.paused.add(t.number)
                if t.user_attrs.get(PAUSE_REASON_ATTR) == "budget":
                    self.budget_paused.add(t.number)
            else:
                self.pruned.add(t.number)
        elif t.state == TrialState.FAIL:
            self.failed.add(t.number)
        elif t.state == TrialState.RUNNING:
            self.running += 1
        else:
            self.waiting += 1


_tally: Fold[_Tally] = Fold(_Tally, _Tally.add, _Tally.copy)


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials by outcome; a failed trial that was retried is counted as ``retried``, a paused
    one as ``paused``, and one that a later trial continues as ``promoted``."""
    retried = superseded(trials)
    continued = promo.promoted(trials)
    tally = _tally(trials)
    return {
        "complete": tally.complete,
        "pruned": len(tally.pruned - continued),
        "paused": len(tally.paused - continued),
        "failed": len(tally.failed - retried),
        "running": tally.running,
        "waiting": tally.waiting,
        "retried": len(tally.failed & retried),
        "promoted": len(tally.paused & continued) + len(tally.pruned & continued),
    }


def finished_count(trials: list[FrozenTrial]) -> int:
    """Configurations finished: a trial continued by another counts through its continuation,
    one paused only because the epoch budget ran out does not count (a larger budget goes on)."""
    c = count_states(trials)
    waiting_for_budget = len(_tally(trials).budget_paused - promo.promoted(trials))
    return c["complete"] + c["pruned"] + c["paused"] + c["failed"] - waiting_for_budget


def describe(trial: FrozenTrial, *, baseline: bool = True, unknown: str = "") -> str:
    """The trial in one line: its stored schedule (``cosine(initial_lr=0.1, ...)``), then
    `` + adam`` for an optimizer other than SGD.

    ``baseline``: a baseline's name goes first, ``[baseline: name] ...`` (the progress display;
    the read side shows it apart), and the reference configuration is ``[reference] ...``. A
    trial whose schedule is not stored yet is its family, or ``unknown`` where that is not known
    either.
    """
    record = TrialRecord.of(trial)
    schedule = record.schedule
    text = str(trial.params.get(space_mod.SCHEDULE_PARAM, unknown))
    if schedule:
        from sweeper.training.schedules import from_dict

        try:
            text = from_dict(schedule).describe()
        except Exception:  # an unreadable attribute must not stop the progress display
            text = str(schedule.get("family"))
    optimizer = record.optimizer
    if optimizer and optimizer != "sgd":
        text += f" + {optimizer}"
    name = record.baseline
    if baseline and name:
        text = f"[baseline: {name}] {text}"
    elif baseline and record.reference:
        text = f"[reference] {text}"
    return text


def tuned_of(trial: FrozenTrial, epochs: int, steps_per_epoch: int | None = None) -> Tuned:
    """What ``trial`` trained with, for :mod:`sweeper.training.handover`: its stored schedule,
    its optimizer (a searched momentum or warm-up exactly as sampled) and the run it was built
    for: ``epochs`` (the study's) of its stored steps per epoch (``steps_per_epoch``, the
    study's, for a trial that stored none)."""
    from sweeper.training.handover import Tuned
    from sweeper.training.optimizers import OptimizerSpec
    from sweeper.training.schedules import from_dict

    record = TrialRecord.of(trial)
    schedule = record.schedule
    spe = record.steps_per_epoch if record.steps_per_epoch is not None else steps_per_epoch
    if not schedule or spe is None:
        raise NotTrainedError(
            f"trial {trial.number} has no stored schedule: it never started training"
        )
    spec = OptimizerSpec.parse(record.optimizer if record.optimizer is not None else "sgd")
    exact: dict[str, Any] = {}
    if spec.momentum and "momentum" in trial.params:
        exact["momentum"] = float(trial.params["momentum"])
    if spec.warmup and "schedule_free_warmup" in trial.params:
        exact["warmup"] = float(trial.params["schedule_free_warmup"])
    return Tuned(from_dict(schedule), replace(spec, **exact), int(spe), int(epochs))
