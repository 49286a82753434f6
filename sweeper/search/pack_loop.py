"""The packed trial loop: one worker trains up to ``[train] pack`` trials at once, as copies of the
network in one Keras model (:mod:`sweeper.training.packing`).

Each trial in the pack is an ordinary Optuna trial, asked for with ``study.ask()`` and ended with
``study.tell()``, and an ordinary :class:`~sweeper.search.attempt.Attempt`: it samples its configuration,
stores its epoch rows, reports to the pruner and is decided after every epoch exactly as a trial
trained alone (complete, budget or rung pause, stalled, diverged, pruned by Optuna's pruner). What
differs is only who trains: every epoch of the pack trains each live copy one epoch on the same
batches, then each copy's record goes to its own trial.

* **Continuous batching**: when a copy ends, its slot takes the next trial at once (a baseline, a
  requeued or a promoted trial first, as ``study.optimize`` would), its network built and seeded
  as alone and its schedule counting from its own first step; the pack stays full while the
  study wants trials. The new trial takes the old one's slot in the traced model
  (``Pack(stop="reuse")``: new values in the same variables), so a change of members costs no
  new trace unless its optimizer settings differ or a slot stays empty. With the slots full and the rest of the study running elsewhere the pack
  trains on with what it has, where a single-trial worker would wait.
* **Checkpoints**: after every epoch but the last, each copy's state is written to its trial's
  checkpoint folder in the format of Keras's ``BackupAndRestore`` with its manifest
  (:func:`~sweeper.training.pack_checkpoint.save_copy`), so a requeued or promoted trial resumes
  from it in a pack or alone; it is read only once it verifies, and removed once Optuna was told
  how its trial ended (:func:`~sweeper.search.attempt.discard_checkpoint`), paused ones excepted. A copy that
  completes is kept as the study's best model when it beats it, saved as the trial alone would
  be (:meth:`~sweeper.training.packing.Pack.save_model`, :meth:`Attempt.keep_model`).
* **Heartbeats**: ``study.optimize`` beats one trial's heartbeat; here a thread beats every trial
  in the pack, so other workers see them alive and see them stale once this process dies.
* **A stop** (Ctrl-C, SIGTERM) ends the epoch in progress after its batch; every trial in the pack
  goes back in the queue with its checkpoint of the last finished epoch.

Batches: a pack draws one order per pack epoch (:func:`~sweeper.training.packing.epoch_order`), so a
trial's batches depend on when it joined; the same trial alone shuffles with ``fit``. Both are
uniform shuffles; ``tests/training/test_packing.py`` shows a copy equal to its trial alone given the same
order. The epoch budget can be overshot by up to ``workers * pack - 1`` epochs (``pack - 1``
with one worker): every copy finishes the epoch it is in.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from sweeper import faults
from sweeper.errors import SweepAborted
from sweeper.interrupts import INTERRUPTS, SweepInterrupted
from sweeper.search.attempt import (
    Attempt,
    Context,
    EnvironmentFailed,
    caused_by_environment,
    discard_checkpoint,
    error_line,
)
from sweeper.search.loop_rules import (
    TrialReporter,
    check_failure_rate,
    environment_aborted,
    worker_wants_more,
)
from sweeper.search.outcomes import TrialEvent
from sweeper.search.places import NoPlace
from sweeper.search.recovery import drop_result, ended_elsewhere, requeue
from sweeper.store import optuna_ids
from sweeper.store.store import HEARTBEAT_INTERVAL

if TYPE_CHECKING:
    from sweeper.training.pack_copies import PackedCopy
    from sweeper.training.packing import Pack
    from sweeper.training.train_trial import EpochRecord, TrialResult

log = logging.getLogger(__name__)


class Heartbeats:
    """A thread that records the heartbeat of every trial in the pack every few seconds."""

    def __init__(self, study: optuna.Study) -> None:
        self.storage = optuna_ids.storage_of(study)
        interval = getattr(self.storage, "get_heartbeat_interval", lambda: None)()
        self.enabled = interval is not None  # a storage opened without heartbeats has none
        self.interval = float(interval or HEARTBEAT_INTERVAL)
        self.ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, trial_id: int | None = None) -> None:
        """Record the heartbeats now (of one trial, or of all)."""
        if not self.enabled:
            return
        with self._lock:
            ids = [trial_id] if trial_id is not None else sorted(self.ids)
        for tid in ids:
            try:
                self.storage.record_heartbeat(tid)
            except Exception:  # a store that blinks: the next beat tries again
                log.debug("heartbeat of trial id %d not recorded", tid, exc_info=True)

    def add(self, trial_id: int) -> None:
        with self._lock:
            self.ids.add(trial_id)
        self.beat(trial_id)

    def remove(self, trial_id: int) -> None:
        with self._lock:
            self.ids.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def __enter__(self) -> Heartbeats:
        self._thread = threading.Thread(target=self._run, name="pack-heartbeats", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass
class Slot:
    """One trial training as one copy of the pack."""

    attempt: Attempt
    copy: PackedCopy
    started: float
    records: list[EpochRecord] = field(default_factory=list)

    @property
    def trial(self) -> optuna.Trial:
        return self.attempt.trial


@dataclass
class _End:
    """How a slot's trial ended: told to Optuna with ``value`` or as ``state``."""

    state: TrialState
    value: float | None = None
    error: BaseException | None = None


def _start(ctx: Context, pack: Pack, trial: optuna.Trial) -> Slot:
    """Prepare ``trial`` and put it in the pack (from its checkpoint, when it has one)."""
    attempt = Attempt(ctx, trial)
    started = time.monotonic()
    schedule, optimizer = attempt.prepare()
    copy = None
    try:
        copy = pack.add(schedule, optimizer, seed=ctx.settings.seed)
        pack.restore(copy, attempt.checkpoint)
    except BaseException as exc:
        if copy is not None:
            pack.stop(copy)  # never trained: its slot is free again
        if isinstance(exc, Exception):
            attempt.record_error(exc)
            if caused_by_environment(exc):
                raise EnvironmentFailed(f"trial {trial.number}: {error_line(exc)}") from exc
        raise
    if copy.start:
        log.info("trial %d resumes from its checkpoint after epoch %d", trial.number, copy.start)
    return Slot(attempt, copy, started)


def _result(slot: Slot, status: Any, reason: str | None) -> TrialResult:
    from sweeper.training.train_trial import TrialResult

    seconds = sum(r.seconds for r in slot.records)
    return TrialResult(status, list(slot.records), reason=reason, seconds=seconds)


def _told(slot: Slot, result: TrialResult) -> _End:
    """Record the outcome on the trial as :meth:`Attempt.tell` does; how to tell Optuna."""
    try:
        return _End(TrialState.COMPLETE, slot.attempt.tell(result))
    except optuna.TrialPruned:
        return _End(TrialState.PRUNED)


def _after_epoch(ctx: Context, pack: Pack, slot: Slot, record: EpochRecord) -> _End | None:
    """Everything that follows an epoch of one copy, in the order a trial alone does it: store
    the epoch, stop a diverged run, checkpoint, report to the pruner, decide. None: it goes on."""
    from sweeper.training.train_trial import MONITOR, TrialStatus

    attempt, trial, copy = slot.attempt, slot.trial, slot.copy
    slot.records.append(record)
    attempt.on_epoch(record)
    if not math.isfinite(record.loss):
        reason = f"diverged at epoch {record.epoch + 1}, lr={record.lr:.4g}"
        log.info("trial %d %s", trial.number, reason)
        return _told(slot, _result(slot, TrialStatus.DIVERGED, reason))
    final = copy.epoch >= ctx.rules.epochs
    if not final:
        pack.save(copy, attempt.checkpoint)
    if not attempt.baseline and record.val_accuracy is not None:
        # what optuna_integration's KerasPruningCallback does for a trial trained alone
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*already reported.*")
            trial.report(float(record.val_accuracy), record.epoch)
        if trial.should_prune():
            log.debug("trial %d pruned at epoch %d by %s", trial.number, record.epoch, MONITOR)
            attempt.finish()
            return _End(TrialState.PRUNED)
    decision = attempt.decide(record)
    if decision is not None:
        return _told(slot, _result(slot, decision[0], decision[1]))
    if final:
        attempt.keep_model(lambda path: pack.save_model(copy, path))
        return _told(slot, _result(slot, TrialStatus.COMPLETE, None))
    return None


def _fail(slot: Slot, exc: BaseException) -> _End:
    if not ended_elsewhere(exc):  # else another process ended it: its rows and attributes stay
        slot.attempt.finish()
        slot.attempt.record_error(exc)
    return _End(TrialState.FAIL, error=exc)


def packed_trial_loop(
    ctx: Context,
    target: int,
    timeout: float | None,
    progress: Callable[[TrialEvent], None] | None,
) -> tuple[int, bool]:
    """Ask for trials until the study has enough, ``ctx.settings.pack`` of them training at once;
    (trials run here, interrupted). The packed counterpart of ``worker._trial_loop``."""
    return _PackRun(ctx, target, timeout, progress).run()


class _PackRun:
    """One worker's packed trial loop: its pack, the trials in it and their heartbeats."""

    def __init__(
        self,
        ctx: Context,
        target: int,
        timeout: float | None,
        progress: Callable[[TrialEvent], None] | None,
    ) -> None:
        from sweeper.training.packing import Pack
        from sweeper.training.train_trial import reset_keras

        self.ctx, self.study, self.target = ctx, ctx.study, target
        self.timeout = timeout
        self.size = ctx.settings.pack
        reset_keras(ctx.settings.seed)
        self.pack = Pack(ctx.dataset, ctx.settings, stop="reuse")  # a freed slot keeps the trace
        self.slots: dict[int, Slot] = {}  # by copy index
        self.start = time.monotonic()
        self.report = TrialReporter(ctx, progress, target, self.start, timeout)
        self.ran = 0
        self.beats = Heartbeats(self.study)

    def run(self) -> tuple[int, bool]:
        study, slots, pack = self.study, self.slots, self.pack
        try:
            # a signal only records the stop; it is raised at the checks, between two epochs, so
            # it never cuts a checkpoint or a store write (a wait for trials elsewhere excepted)
            with self.beats, INTERRUPTS.deferred():
                while True:
                    self.fill()
                    if not slots:
                        break
                    self.train()
                    INTERRUPTS.check()
                    check_failure_rate(study, self.ctx.spec)
        except (SweepInterrupted, KeyboardInterrupt):
            _requeue_all(study, slots, "was interrupted")
            return self.ran, True
        except EnvironmentFailed as failure:
            _requeue_all(study, slots, "failed because of the environment")
            raise environment_aborted(failure) from None
        except SweepAborted:
            _requeue_all(study, slots, "was stopped with the sweep")
            raise
        finally:
            log.info(
                "pack of %d: %d models built, %d slots reused",
                self.size,
                pack.compiles,
                pack.reused,
            )
        return self.ran, False

    def fill(self) -> None:
        """Give every free slot a trial while the study wants more (waiting only when empty)."""
        study, slots = self.study, self.slots
        while len(slots) < self.size and _wants_more(
            self.ctx, self.target, self.start, self.timeout, not slots
        ):
            with INTERRUPTS.deferred():
                try:  # the study's own ask: a trial only where it has a place (places.py)
                    trial = study.ask()
                except NoPlace:  # another worker took the last place or the queued trial first
                    if slots:
                        break  # the pack trains on with what it has
                    continue
                self.beats.add(optuna_ids.trial_id(trial))
            faults.point("after-ask")
            INTERRUPTS.check()
            asked = time.monotonic()
            try:
                slot = _start(self.ctx, self.pack, trial)
            except (SweepInterrupted, KeyboardInterrupt, EnvironmentFailed):
                with INTERRUPTS.shielded():
                    requeue(study, optuna_ids.trial_id(trial), "was interrupted")
                raise
            except Exception as exc:  # a configuration that cannot be trained
                self.tell(trial, _End(TrialState.FAIL, error=exc), asked)
                check_failure_rate(study, self.ctx.spec)
                continue
            slots[slot.copy.index] = slot

    def train(self) -> None:
        """One epoch of the pack, then each trial's epoch as a trial alone follows it."""
        slots = self.slots
        try:
            trained = self.pack.train_epoch()
        except (SweepInterrupted, KeyboardInterrupt):
            raise
        except Exception as exc:
            if INTERRUPTS.requested:
                raise SweepInterrupted(f"during {type(exc).__name__}") from None
            if caused_by_environment(exc):
                raise EnvironmentFailed(f"packed trials: {error_line(exc)}") from exc
            for slot in list(slots.values()):
                self.end(slot, _fail(slot, exc))
            return
        for copy, record in trained:
            slot = slots[copy.index]
            try:
                outcome = _after_epoch(self.ctx, self.pack, slot, record)
            except (SweepInterrupted, KeyboardInterrupt, EnvironmentFailed):
                raise
            except Exception as exc:
                outcome = _fail(slot, exc)
            if outcome is not None:
                self.end(slot, outcome)

    def tell(self, trial: optuna.Trial, outcome: _End, started: float) -> None:
        """Tell Optuna how ``trial`` ended and show it, as the single-trial loop does."""
        faults.point("before-tell")
        with INTERRUPTS.shielded():
            try:
                if outcome.state == TrialState.COMPLETE:
                    frozen = self.study.tell(trial, outcome.value)
                else:
                    frozen = self.study.tell(trial, state=outcome.state)
            except (ValueError, RuntimeError) as exc:
                if not ended_elsewhere(exc):
                    raise
                drop_result(trial.number)
                self.beats.remove(optuna_ids.trial_id(trial))
                self.ran += 1
                return
            discard_checkpoint(self.ctx, frozen)  # told: nothing resumes from it now
        if outcome.error is not None:
            log.warning("trial %d failed: %s", trial.number, error_line(outcome.error))
        self.beats.remove(optuna_ids.trial_id(trial))
        self.ran += 1
        self.report(frozen, time.monotonic() - started)

    def end(self, slot: Slot, outcome: _End) -> None:
        self.slots.pop(slot.copy.index, None)
        if slot.copy in self.pack.live:
            self.pack.stop(slot.copy)
        self.tell(slot.trial, outcome, slot.started)


def _wants_more(ctx: Context, target: int, start: float, timeout: float | None, wait: bool) -> bool:
    """Whether a slot of the pack should take a new trial now (waiting only with ``wait``: an
    empty pack waits for trials that run elsewhere, as a single-trial worker does)."""
    with INTERRUPTS.undeferred():  # its waits stop at once; its writes defer themselves
        return worker_wants_more(ctx, target, start, timeout, wait=wait)


def _requeue_all(study: optuna.Study, slots: dict[int, Slot], reason: str) -> None:
    with INTERRUPTS.shielded():
        for slot in slots.values():
            requeue(study, slot.attempt.trial_id, reason)
