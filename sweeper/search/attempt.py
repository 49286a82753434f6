"""One attempt of one trial: train it, record its epochs, decide after each epoch whether it goes
on, and tell Optuna how it ended.

The outcome of a trial is decided here, in :meth:`Attempt.run`: complete → its value; paused,
stalled or diverged → PRUNED with ``outcome`` and ``reason``; pruned by Optuna's pruner → PRUNED;
any other exception → FAIL with its traceback stored, except an error of this machine (a file that
cannot be written, a model that cannot be imported: :class:`EnvironmentFailed`), which the
worker puts back in the queue. After each epoch (:meth:`Attempt.decide`): the last epoch
completes; a spent epoch budget pauses; a baseline goes on; a tuned trial at chance level stops
(stalled); under ``asha`` a trial below its rung's cut pauses (:mod:`sweeper.search.promotion`),
except the reference configuration (``[sampler] reference``), which no pruner stops.

Each attempt checkpoints its training state at every epoch end in one folder per configuration,
so a retry after a crash, or a continuation after a pause, resumes from its last finished epoch;
a checkpoint is read only once its manifest verifies (:mod:`sweeper.training.checkpoints`: what
does not verify is set aside). A continuation, retry or requeued trial that had trained epochs
but finds no checkpoint to resume from restarts from epoch 0 and says why in its ``restarted``
attribute. The checkpoint is removed only once Optuna was told how the trial ended
(:func:`discard_checkpoint`, paused trials excepted), so a process killed at any moment before
resumes from it. A trial that completes keeps its trained model as the study's best when it
beats the one kept (:meth:`Attempt.keep_model`, :mod:`sweeper.search.best_model`).
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper import faults
from sweeper.errors import ConfigError, StorageError
from sweeper.interrupts import INTERRUPTS, SweepInterrupted
from sweeper.search import best_model, places, reference
from sweeper.search import promotion as promo
from sweeper.search import space as space_mod
from sweeper.search.outcomes import FINISHED, EpochEvent, finished_count
from sweeper.search.recovery import ended_elsewhere, mark_worker
from sweeper.search.trial_record import (
    CONFIG_ATTR,
    ERROR_ATTR,
    OPTIMIZER_ATTR,
    OUTCOME_ATTR,
    PAUSE_REASON_ATTR,
    PAUSED_ATTR,
    PROMOTED_AT_ATTR,
    REASON_ATTR,
    REQUEUED_ATTR,
    RESTARTED_ATTR,
    RESUMED_ATTR,
    SCHEDULE_ATTR,
    STEPS_PER_EPOCH_ATTR,
    TRACEBACK_ATTR,
    TrialRecord,
)
from sweeper.store import optuna_ids
from sweeper.store.store import Store
from sweeper.training import checkpoints
from sweeper.training.backend import CONSOLE
from sweeper.training.checkpoints import Checkpoint

if TYPE_CHECKING:
    from sweeper.studyfile.study_spec import StudySpec
    from sweeper.training.data import Dataset
    from sweeper.training.optimizers import OptimizerSpec
    from sweeper.training.schedule_base import Schedule
    from sweeper.training.shared_checkpoints import SharedCheckpoints
    from sweeper.training.train_trial import Decision, EpochRecord, TrainSettings, TrialResult

log = logging.getLogger(__name__)

STALL_MIN_STEPS = 50  # updates before a trial at chance level counts as stalled


class EnvironmentFailed(BaseException):
    """A trial failed because of this machine, not its configuration (the user model cannot be
    imported, a file cannot be written): the sweep stops, the trial goes back to the queue, and
    it does not count toward the target. A BaseException, so Optuna does not record it FAIL."""


def caused_by_environment(exc: BaseException) -> bool:
    return isinstance(exc, (ConfigError, ImportError, OSError)) or store_failed(exc)


def store_failed(exc: BaseException) -> bool:
    """A database error (a full disk, a lost server), Optuna's wrapping of one and the store's
    own one-line StorageError included: the store's fault, never the configuration's."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, (SQLAlchemyError, StorageInternalError, StorageError))


def origin_number(trial: FrozenTrial) -> int:
    """The number of the first attempt of this trial (itself unless it is a retry copy)."""
    failed = trial.system_attrs.get("failed_trial")
    return int(failed) if failed is not None else trial.number


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_line(exc: BaseException) -> str:
    """``Type: message`` in one line; Keras's wrapping of a layer's error is looked through
    ("Exception encountered when calling ...", "Arguments received by ..." left out)."""
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines()]
    message = ""
    for line in lines:
        if line.startswith("Arguments received by"):
            break
        if line and not line.startswith("Exception encountered when calling"):
            message = line
            break
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def budget_spent(store: Store, name: str, budget: int | None) -> bool:
    return budget is not None and store.epochs_spent(name) >= budget


def no_room(trials: list[FrozenTrial], target: int) -> bool:
    """Whether the study's target leaves no room for a new configuration: the finished and the
    running ones (this one included) take it all."""
    running = sum(1 for t in trials if t.state == TrialState.RUNNING)
    return finished_count(trials) + running >= target


@dataclass(frozen=True)
class Rules:
    """What is decided after each epoch, the same for every trial of a study in this process."""

    epochs: int
    target: int  # configurations the study is to finish
    budget: int | None
    asha: bool
    factor: int
    rungs: tuple[int, ...]
    brackets: int
    compare: str  # who a configuration is compared with at a rung (promotion.peers)
    stall_below: float  # val accuracy at or below which a tuned trial has stalled (0: never)
    stall_epoch: int  # the epoch (0-based) after which that is judged
    chance: float

    @classmethod
    def of(
        cls, spec: StudySpec, num_classes: int, spe: int, budget: int | None, target: int
    ) -> Rules:
        p = spec.pruner
        return cls(
            epochs=spec.train.epochs,
            target=target,
            budget=budget,
            asha=p.kind == "asha",
            factor=p.reduction_factor,
            rungs=tuple(promo.rungs(p.min_resource, p.reduction_factor, spec.train.epochs)),
            brackets=p.brackets,
            compare=p.compare,
            stall_below=p.stall_factor / num_classes if p.kind != "none" else 0.0,
            # judged after the first epoch that brings at least STALL_MIN_STEPS updates: a few
            # updates of a tiny epoch leave any rate at chance
            stall_epoch=math.ceil(STALL_MIN_STEPS / spe) - 1,
            chance=1.0 / num_classes,
        )


@dataclass(frozen=True)
class Context:
    """What every attempt run by one worker shares."""

    spec: StudySpec
    store: Store
    name: str
    study: optuna.Study
    dataset: Dataset
    settings: TrainSettings
    steps_per_epoch: int
    ranges: dict[str, tuple[float, float]]
    checkpoints: Path  # this study's folder of checkpoints
    worker: str  # host:pid
    run_id: int
    rules: Rules
    on_epoch: Callable[[EpochEvent], None] | None = None  # the progress display's, if any
    shared: SharedCheckpoints | None = None  # the study's shared checkpoint store, if any


class Attempt:
    """One run of one Optuna trial inside ``study.optimize``."""

    def __init__(self, ctx: Context, trial: optuna.Trial) -> None:
        self.ctx = ctx
        self.trial = trial
        self.trial_id = optuna_ids.trial_id(trial)
        self.first = -1  # the first and last epoch this attempt trained (-1: none yet)
        self.last = -1
        self.value: float | None = None  # val accuracy after the last epoch trained
        self.pause_reason = ""
        self.started = time.monotonic()

    def prepare(self) -> tuple[Schedule, OptimizerSpec]:
        """Stamp the trial with this worker, sample its configuration and record it on the
        trial; its schedule (defined for the trial's full length, even when it pauses on the
        way) and optimizer. A value Optuna or the schedule refuses fails the trial (raised)."""
        ctx, trial = self.ctx, self.trial
        mark_worker(trial, ctx.worker)
        faults.point("after-stamp")
        try:
            config = space_mod.sample(trial, ctx.spec.space, ctx.ranges)
            schedule = config.schedule(ctx.steps_per_epoch, ctx.rules.epochs)
        except Exception as exc:
            if store_failed(exc):
                raise EnvironmentFailed(f"trial {trial.number}: {error_line(exc)}") from exc
            self.record_error(exc)
            raise
        trial.set_user_attr(SCHEDULE_ATTR, schedule.to_dict())
        trial.set_user_attr(OPTIMIZER_ATTR, config.optimizer.describe())
        trial.set_user_attr(STEPS_PER_EPOCH_ATTR, ctx.steps_per_epoch)
        stored = optuna_ids.frozen(ctx.study, trial)
        record = TrialRecord.of(stored)
        self.origin = origin_number(stored)
        self.config = promo.config_of(stored)
        trial.set_user_attr(CONFIG_ATTR, self.config)
        self.parent = record.promoted_from
        self.baseline = promo.is_baseline(stored)
        self.reference = bool(record.reference)
        # the last rate a reference tries is never stopped for stalling (:mod:`reference`)
        self.reference_last = self.reference and reference.is_last(
            ctx.spec.space, str(config.optimizer.name), config.values.get("initial_lr"), ctx.ranges
        )
        # one checkpoint folder per configuration: retries and continuations resume from it
        self.backup = checkpoint_folder(ctx, self.config)
        self.checkpoint = Checkpoint(self.backup, trial.number, self.config, ctx.shared)
        resumable = (
            self.parent is not None  # a continuation
            or self.origin != trial.number  # a retry of a trial whose process died
            or REQUEUED_ATTR in stored.user_attrs  # put back in the queue by a stop or a reap
        )
        if not resumable and self.backup.exists():
            # a new configuration: a folder of that name is left from another store of a study
            # of the same name (deleted, or another run), and must not be resumed from
            log.info(
                "trial %d: checkpoint folder %s is not its own, removed", trial.number, self.backup
            )
            shutil.rmtree(self.backup, ignore_errors=True)
        if not resumable and ctx.shared is not None:  # the same, in the shared store
            ctx.shared.remove(self.config)
        elif resumable:
            self.resume_point(stored)
        return schedule, config.optimizer

    def resume_point(self, stored: FrozenTrial) -> None:
        """A continuation, retry or requeued trial: leave in its folder a checkpoint that
        verifies, or none (:func:`checkpoints.recover` sets aside what does not verify); when it
        had trained epochs it cannot resume from, it restarts from epoch 0, and says why."""
        try:
            found = checkpoints.recover(self.checkpoint)
        except OSError as exc:  # the folder cannot be read or moved in: this machine's fault
            raise EnvironmentFailed(f"trial {self.trial.number}: {error_line(exc)}") from exc
        done = max(stored.intermediate_values, default=-1) + 1  # epochs reported, parent's too
        at = int(stored.user_attrs.get(PROMOTED_AT_ATTR) or 0)
        # the final epoch is never checkpointed: a trial killed after it resumes before it
        expected = min(max(done, at), self.ctx.rules.epochs - 1)
        if found.epoch or expected <= 0:
            return
        if found.set_aside is not None:  # recover said so in its line
            why = (
                f"checkpoint of configuration {self.config} did not verify ({found.problem}), "
                f"set aside in {found.set_aside}"
            )
        else:
            why = f"checkpoint of configuration {self.config} not found here"
            host = self.trained_on()
            if host and self.ctx.shared is None:
                why += (
                    f" (it was trained on {host}; without a shared artifact store a checkpoint "
                    "stays on its machine: give every worker the same --artifacts URL)"
                )
            elif self.ctx.shared is not None:
                why += f" nor in {self.ctx.shared.describe()}"
            CONSOLE.warning(
                "trial %d restarts configuration %d from epoch 0: %s",
                self.trial.number,
                self.config,
                why,
            )
        self.trial.set_user_attr(RESTARTED_ATTR, why)

    def trained_on(self) -> str | None:
        """The host that trained this configuration's epochs before this attempt, if another
        one (:func:`places.checkpoint_hosts`, this attempt's own stamp left out)."""
        others = (
            t for t in self.ctx.study.get_trials(deepcopy=False) if t.number != self.trial.number
        )
        host = places.checkpoint_hosts(others).get(self.config)
        return host if host and host != self.ctx.worker.rpartition(":")[0] else None

    def run(self) -> float:
        from sweeper.training.train_trial import run_trial

        ctx, trial = self.ctx, self.trial
        try:
            schedule, optimizer = self.prepare()
        except Exception as exc:
            if store_failed(exc):  # the store cannot record the trial: not its configuration's
                raise EnvironmentFailed(f"trial {trial.number}: {error_line(exc)}") from exc
            raise
        try:
            with warnings.catch_warnings():
                # a resumed trial reports its finished epochs again: Optuna keeps the first
                warnings.filterwarnings("ignore", message=".*already reported.*")
                result = run_trial(
                    ctx.dataset,
                    schedule,
                    optimizer,
                    ctx.settings,
                    trial=None if self.baseline or self.reference else trial,
                    on_epoch=self.on_epoch,
                    backup_dir=self.checkpoint,
                    decide=self.decide,
                    on_complete=lambda model: self.keep_model(model.save),
                )
        except (SweepInterrupted, KeyboardInterrupt):
            raise  # keep the checkpoint: the trial is queued again and resumes from it
        except optuna.TrialPruned:
            self.finish()
            raise
        except Exception as exc:
            if INTERRUPTS.requested:  # an error the stop caused in a library: not a failure
                raise SweepInterrupted(f"during {type(exc).__name__}") from None
            if caused_by_environment(exc):
                raise EnvironmentFailed(f"trial {trial.number}: {error_line(exc)}") from exc
            if ended_elsewhere(exc):  # another process ended it: its rows and attributes stay
                raise
            self.finish()
            self.record_error(exc)
            raise
        try:
            return self.tell(result)
        except Exception as exc:
            if store_failed(exc):  # the outcome cannot be recorded: the trial is queued again
                raise EnvironmentFailed(f"trial {trial.number}: {error_line(exc)}") from exc
            raise
        finally:  # its outcome recorded on the trial, Optuna not told yet
            faults.point("before-tell")

    def record_error(self, exc: BaseException) -> None:
        """Store why the trial fails: its traceback and one line (shown by progress and status)."""
        self.trial.set_user_attr(TRACEBACK_ATTR, traceback.format_exc()[-8000:])
        self.trial.set_user_attr(ERROR_ATTR, error_line(exc)[:500])

    def tell(self, result: TrialResult) -> float:
        """Record how training ended on the trial; its value, or TrialPruned."""
        from sweeper.training.train_trial import TrialStatus

        trial = self.trial
        paused = result.status is TrialStatus.PAUSED
        self.finish()
        if paused:
            trial.set_user_attr(PAUSED_ATTR, self.last + 1)
            trial.set_user_attr(PAUSE_REASON_ATTR, self.pause_reason)
        if result.status is not TrialStatus.COMPLETE:
            trial.set_user_attr(OUTCOME_ATTR, str(result.status))
            trial.set_user_attr(REASON_ATTR, result.reason)
            if self.reference and result.status in (TrialStatus.STALLED, TrialStatus.DIVERGED):
                self.step_down(str(result.status))
            raise optuna.TrialPruned(result.reason)
        assert result.value is not None
        return float(result.value)

    def step_down(self, outcome: str) -> None:
        """The reference stalled or diverged: queue the next one at a lower rate, while the
        study's target has a place left for it (this trial holds its own already)."""
        ctx = self.ctx
        trials = ctx.study.get_trials(deepcopy=False)
        room = places.room_to_queue(ctx.study, trials, ctx.rules.target)
        stored = optuna_ids.frozen(ctx.study, self.trial)
        reference.step_down(
            ctx.study, stored, ctx.spec.space, ctx.ranges, room=room, outcome=outcome
        )

    def on_epoch(self, record: EpochRecord) -> None:
        ctx, trial = self.ctx, self.trial
        ctx.store.add_epoch(ctx.name, self.trial_id, trial.number, record.to_dict(), ctx.run_id)
        if (self.baseline or self.reference) and record.val_accuracy is not None:
            # reported here, not by the pruning callback: neither is ever pruned
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*already reported.*")
                trial.report(record.val_accuracy, record.epoch)
        if self.first < 0:
            self.first = record.epoch
            if record.epoch > 0:  # resumed from a checkpoint
                trial.set_user_attr(RESUMED_ATTR, record.epoch)
        self.last = record.epoch
        self.value = record.val_accuracy
        self.show_epoch(record)

    def show_epoch(self, record: EpochRecord) -> None:
        """Tell the progress display (``Context.on_epoch``) the epoch just trained; a display
        that fails is logged, never the trial's failure."""
        show = self.ctx.on_epoch
        if show is None:
            return
        event = EpochEvent(
            self.trial.number,
            record.epoch + 1,
            self.ctx.rules.epochs,
            record.val_accuracy,
            time.monotonic() - self.started,
        )
        try:
            show(event)
        except Exception:
            log.warning("the progress display failed on trial %d", event.number, exc_info=True)

    def keep_model(self, save: Callable[[Path], None]) -> None:
        """The trial completed: keep its model (written by ``save(path)``) as the study's best if
        it beats the one kept. Nothing is saved otherwise; a model that cannot be saved is
        logged and the trial goes on."""
        value, trial = self.value, self.trial
        if value is None or not math.isfinite(value):
            return
        try:
            best_model.keep_best(
                self.ctx.checkpoints,
                save,
                trial=trial.number,
                value=value,
                config=self.config,
                epochs=self.last + 1,
                study=self.ctx.study,
            )
        except Exception as exc:
            log.warning(
                "trial %d: its model is not kept as the best: %s", trial.number, error_line(exc)
            )

    def decide(self, record: EpochRecord) -> Decision:
        from sweeper.training.train_trial import TrialStatus

        rules, done = self.ctx.rules, record.epoch + 1
        if done >= rules.epochs:
            return None  # the last epoch: the trial completes
        if budget_spent(self.ctx.store, self.ctx.name, rules.budget):
            self.pause_reason = "budget"
            return TrialStatus.PAUSED, f"epoch budget of {rules.budget} spent"
        if self.baseline:
            return None  # a reference point: trained its full length
        value = record.val_accuracy or 0.0
        if (
            record.epoch == rules.stall_epoch
            and value <= rules.stall_below
            and not self.reference_last
        ):
            return TrialStatus.STALLED, (
                f"val_accuracy {value:.3f} after epoch {done}, chance is {rules.chance:.3f}"
            )
        if rules.asha and done in self.rungs(rules) and record.val_accuracy is not None:
            trials = self.ctx.study.get_trials(deepcopy=False)
            values = promo.rung_values(trials, done)
            values[self.config] = max(values.get(self.config, value), value)
            final = no_room(trials, rules.target)
            left = promo.rates_left(trials, done) if rules.compare != "all" else {}
            peers = promo.peers(values, left, self.config, rules.compare)
            if not promo.in_top(values[self.config], peers, rules.factor, final=final):
                self.pause_reason = "rung"
                return TrialStatus.PAUSED, (
                    f"paused after epoch {done}: not in the best 1/{rules.factor} of "
                    f"{len(peers)} at this rung yet"
                )
        return None

    def rungs(self, rules: Rules) -> tuple[int, ...]:
        """The rungs this configuration is compared at: those of its bracket; none for the
        reference configuration, which trains its full length."""
        if self.reference:
            return ()
        skip = promo.bracket_of(self.config, rules.brackets, len(rules.rungs), rules.factor)
        return rules.rungs[skip:]

    def finish(self) -> None:
        """The attempt is over, Optuna not told yet: a continuation or a retry copy that resumed
        gets the rows of the epochs done before it; rows an earlier, longer attempt left beyond
        the epoch this one ended at are dropped. Its checkpoint stays until Optuna is told
        (:func:`discard_checkpoint`)."""
        ctx, trial = self.ctx, self.trial
        if self.first > 0:
            sources = [int(self.parent)] if self.parent is not None else []
            if self.origin != trial.number:
                sources.append(self.origin)
            for number in sources:
                source_id = optuna_ids.id_of_number(ctx.study, number)
                ctx.store.copy_epochs(ctx.name, source_id, self.trial_id, trial.number, self.first)
        if self.last >= 0:
            ctx.store.trim_epochs(self.trial_id, self.last)


def checkpoint_folder(ctx: Context, config: int) -> Path:
    """The checkpoint folder of configuration ``config`` (its trials share it)."""
    return ctx.checkpoints / f"trial-{config}"


def discard_checkpoint(ctx: Context, told: FrozenTrial) -> None:
    """Optuna was told how ``told`` ended: its checkpoint goes, unless it paused (a later trial
    continues it). Until here, a process killed resumes from it."""
    faults.point("after-tell")
    if told.state in FINISHED and not promo.is_paused(told):
        config = promo.config_of(told)
        checkpoints.remove(
            Checkpoint(checkpoint_folder(ctx, config), config=config, shared=ctx.shared)
        )


def remove_leftover_checkpoints(ctx: Context) -> int:
    """Remove the checkpoints of configurations whose newest trial ended for good (complete,
    stopped, or failed for its configuration; not paused): a process killed between telling
    Optuna and :func:`discard_checkpoint` left them. Folders no trial of this study claims are
    left alone (a new trial of that number removes its stale folder). How many went."""
    if not ctx.checkpoints.is_dir():
        return 0
    newest: dict[int, FrozenTrial] = {}
    for t in ctx.study.get_trials(deepcopy=False):
        config = promo.config_of(t)
        if config not in newest or t.number > newest[config].number:
            newest[config] = t
    removed = 0
    for folder in ctx.checkpoints.glob("trial-*"):
        number = folder.name.removeprefix("trial-")
        last = newest.get(int(number)) if number.isdigit() else None
        if last is None or promo.is_paused(last):
            continue
        # a failure without an error line is a stale heartbeat's: its retry resumes from here
        if last.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            last.state == TrialState.FAIL and ERROR_ATTR in last.user_attrs
        ):
            log.info("checkpoint %s of finished trial %d removed", folder, last.number)
            checkpoints.remove(Checkpoint(folder, config=int(number), shared=ctx.shared))
            removed += 1
    return removed
