"""A worker: the trial loop of one process, and the launcher of several.

A worker asks the shared study for trials until the study holds its target of finished trials
(or its epoch budget is spent). Each trial's outcome is decided in one place (``train`` inside
:func:`run_worker`): complete → its value; pruned, paused, stalled or diverged → PRUNED; any
other exception → FAIL with the traceback stored on the trial. Too many failures in a row stop
the sweep (:class:`~sweeper.errors.SweepAborted`). Before each trial a worker continues the paused
trial that has earned it, if any (:mod:`sweeper.promotion`).

Each trial checkpoints its training state at every epoch end, so a trial retried after its
worker died, or continued after a pause, resumes from its last finished epoch with identical
parameters.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper import faults
from sweeper import promotion as promo
from sweeper import space as space_mod
from sweeper.backend import CONSOLE, load_keras
from sweeper.errors import ConfigError, SweepAborted
from sweeper.interrupts import INTERRUPTS, SweepInterrupted
from sweeper.lrfind import lr_ranges
from sweeper.names import file_stem
from sweeper.recovery import mark_worker, reap_dead_local_trials, requeue
from sweeper.search import make_pruner, make_sampler
from sweeper.store import ENV_VAR, Store, resolve_url
from sweeper.trials import TrialEvent, describe, finished_count

if TYPE_CHECKING:
    from sweeper.config import StudySpec
    from sweeper.data import Dataset

log = logging.getLogger(__name__)

STALL_MIN_STEPS = 50  # updates before a trial at chance level counts as stalled
TRUSTED_HASH_ENV = "SWEEPER_TRUSTED_HASH"  # set by `tune --workers` for the workers it starts
CHECKPOINT_ENV = "SWEEPER_CHECKPOINTS"
DEFAULT_CHECKPOINTS = "sweeper-checkpoints"


def checkpoint_root(checkpoint_dir: str | None) -> Path:
    return Path(checkpoint_dir or os.environ.get(CHECKPOINT_ENV) or DEFAULT_CHECKPOINTS)


def check_checkpoint_dir(checkpoint_dir: str | None, name: str) -> None:
    """Refuse, in one line and before any trial, a checkpoint folder this process cannot write.

    The folders made to find out are removed again: a run refused later (a bad storage URL, say)
    leaves nothing behind.
    """
    folder = checkpoint_root(checkpoint_dir) / file_stem(name)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        for path in made:  # innermost first
            path.rmdir()
    except OSError as exc:
        raise ConfigError(
            f"checkpoint folder {folder} cannot be written ({exc.strerror or exc}); give "
            f"--checkpoint-dir (or ${CHECKPOINT_ENV}) a folder you may write"
        ) from None


class _EnvironmentFailed(BaseException):
    """A trial failed because of this machine, not its configuration (the user model cannot be
    imported, a file cannot be written): the sweep stops, the trial goes back to the queue, and
    it does not count toward the target. A BaseException, so Optuna does not record it FAIL."""


def _caused_by_environment(exc: BaseException) -> bool:
    return isinstance(exc, (ConfigError, ImportError, OSError))


def _origin_number(trial: FrozenTrial) -> int:
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


def _failure_reason(t: FrozenTrial) -> str:
    error = t.user_attrs.get("error")
    if error:
        return str(error)
    lines = str(t.user_attrs.get("traceback", "")).strip().splitlines()
    return lines[-1] if lines else "no traceback stored"


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
        reason = _failure_reason(last)
        raise SweepAborted(
            f"{len(failed)} of the last {len(recent)} trials failed (trial {last.number}: "
            f"{reason}); fix the cause and rerun the same command to resume"
        )


def _n_trials(storage: optuna.storages.BaseStorage, name: str) -> int:
    """Trials of study ``name`` so far (read before a sampler is built for it)."""
    return storage.get_n_trials(storage.get_study_id_from_name(name))


def budget_spent(store: Store, name: str, budget: int | None) -> bool:
    return budget is not None and store.epochs_spent(name) >= budget


def _wants_more(
    study: optuna.Study,
    target: int,
    start: float,
    timeout: float | None,
    *,
    store: Store | None = None,
    budget: int | None = None,
    rung_list: tuple[int, ...] = (),
    factor: int = 3,
) -> bool:
    """Whether to start another trial; waits while the last ones run in other processes.

    Before saying yes it continues the paused trial that has earned it, if any: Optuna takes
    that queued trial first.
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
            return False
        running = sum(1 for t in trials if t.state == TrialState.RUNNING)
        if done + running < target:
            if store is not None:
                with INTERRUPTS.deferred():  # a claim and its trial are written whole
                    parent = promo.promote(study, store, rung_list, factor)
                if parent is not None:
                    log.info("trial %d promoted: it continues from its checkpoint", parent)
            return True  # a queued trial (baseline, requeued, promoted) is taken first
        # the rest is running elsewhere: wait for it to finish, or for its heartbeat to go stale
        time.sleep(2.0)
        with INTERRUPTS.deferred(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)


def _event(t: FrozenTrial, seconds: float, done: int, target: int) -> TrialEvent:
    state = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
    }.get(t.state, t.state.name.lower())
    description = describe(t)
    parent = t.user_attrs.get(promo.PROMOTED_FROM_ATTR)
    if parent is not None:
        at = t.user_attrs.get(promo.PROMOTED_AT_ATTR)
        description += f" (continues trial {parent} after epoch {at})"
    outcome = t.user_attrs.get(promo.OUTCOME_ATTR)
    if t.state == TrialState.PRUNED and outcome in ("diverged", "paused", "stalled"):
        state = str(outcome)
        description += f" ({t.user_attrs.get('reason')})"
    elif t.state == TrialState.FAIL:
        description += f" ({_failure_reason(t)})"
    return TrialEvent(t.number, state, t.value, description, seconds, done, target)


def run_worker(
    spec: StudySpec,
    store: Store,
    name: str,
    *,
    target: int,
    timeout: float | None = None,
    progress: Callable[[TrialEvent], None] | None = None,
    checkpoint_dir: str | None = None,
    dataset: Dataset | None = None,
    worker_index: int = 0,
    budget: int | None = None,
) -> tuple[int, bool]:
    """Run trials of study ``name`` until it holds ``target`` finished ones, or ``budget``
    epochs have been trained for it in all (every process and run counted).

    Returns (trials run here, interrupted). Ctrl-C/SIGTERM puts the running trial back in the
    queue (its checkpoint kept) and returns.
    """
    from sweeper.data import load_dataset
    from sweeper.training import Decision, TrialStatus, environment, run_trial, steps_per_epoch

    dataset = dataset or load_dataset(spec.data)
    settings = spec.train.__class__(**{**spec.train.__dict__, "seed": spec.seed})
    storage = store.optuna_storage()
    # a different seed per worker and per resume, so no two samplers replay the same draws; the
    # sampler and the pruner are built once, here
    offset = _n_trials(storage, name) + 7919 * worker_index
    study = optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(spec, offset),
        pruner=make_pruner(spec),
    )
    # computed once per study, when it was prepared; every worker's schedules use that value
    stored_spe = study.user_attrs.get("steps_per_epoch")
    spe = int(stored_spe or steps_per_epoch(len(dataset.x_train), spec.train.batch_size))
    ranges = lr_ranges(spec, store, name)
    env = environment()  # imports Keras
    index = f"worker {worker_index}: " if os.environ.get("SWEEPER_WORKER_INDEX") else ""
    CONSOLE.info("%s%s", index, load_keras().describe())
    worker = f"{socket.gethostname()}:{os.getpid()}"
    ckpt_root = checkpoint_root(checkpoint_dir) / file_stem(name)  # never outside the root
    log.info("worker %s on study %s (%s): %s", worker, name, store.masked_url, dataset.summary())
    active: list[int] = []  # trial_id of the trial being trained, for Ctrl-C
    asha = spec.pruner.kind == "asha"
    factor = spec.pruner.reduction_factor
    rung_list = tuple(promo.rungs(spec.pruner.min_resource, factor, spec.train.epochs))
    stall_below = (
        spec.pruner.stall_factor / dataset.num_classes if spec.pruner.kind != "none" else 0.0
    )
    # judged after the first epoch that brings at least STALL_MIN_STEPS updates: a few updates
    # of a tiny epoch leave any rate at chance
    stall_epoch = math.ceil(STALL_MIN_STEPS / spe) - 1

    # While Optuna creates a trial, the trial trains and its outcome is recorded, a signal only
    # records the stop (see sweeper.interrupts): training ends after the batch in progress, and
    # the stop is raised at the next safe point, so it never lands in a store write or a library
    # callback. The running trial is then put back in the queue.
    def objective(trial: optuna.Trial) -> float:
        active[:] = [trial._trial_id]
        faults.point("after-ask")
        INTERRUPTS.check()
        return train(trial)

    def train(trial: optuna.Trial) -> float:
        mark_worker(trial, worker)
        faults.point("after-stamp")
        config = space_mod.sample(trial, spec.space, ranges)
        schedule = config.schedule(spe, spec.train.epochs)  # its full length, even when paused
        trial.set_user_attr("schedule", schedule.to_dict())
        trial.set_user_attr("optimizer", config.optimizer.describe())
        trial.set_user_attr("steps_per_epoch", spe)
        frozen = study._storage.get_trial(trial._trial_id)
        origin = _origin_number(frozen)
        config_number = promo.config_of(frozen)
        trial.set_user_attr(promo.CONFIG_ATTR, config_number)
        parent = frozen.user_attrs.get(promo.PROMOTED_FROM_ATTR)
        baseline = promo.is_baseline(frozen)
        # one checkpoint folder per configuration: retries and continuations resume from it
        backup = ckpt_root / f"trial-{config_number}"
        epochs_seen = Epochs()
        pause = Pause()

        def on_epoch(record: Any) -> None:
            store.add_epoch(name, trial._trial_id, trial.number, record.to_dict(), run_id)
            if baseline and record.val_accuracy is not None:
                # reported here, not by the pruning callback: a baseline is never pruned
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*already reported.*")
                    trial.report(record.val_accuracy, record.epoch)
            if epochs_seen.first < 0:
                epochs_seen.first = record.epoch
                if record.epoch > 0:  # resumed from a checkpoint
                    trial.set_user_attr("resumed_from_epoch", record.epoch)
            epochs_seen.last = record.epoch

        def decide(record: Any) -> Decision:
            done = record.epoch + 1
            if done >= spec.train.epochs:
                return None  # the last epoch: the trial completes
            if budget_spent(store, name, budget):
                pause.reason = "budget"
                return TrialStatus.PAUSED, f"epoch budget of {budget} spent"
            if baseline:
                return None  # a reference point: trained its full length
            value = record.val_accuracy
            if record.epoch == stall_epoch and stall_below > 0 and (value or 0.0) <= stall_below:
                return TrialStatus.STALLED, (
                    f"val_accuracy {value or 0.0:.3f} after epoch {done}, "
                    f"chance is {1 / dataset.num_classes:.3f}"
                )
            if asha and done in rung_list and value is not None:
                values = promo.rung_values(study.get_trials(deepcopy=False), done)
                values[config_number] = max(values.get(config_number, value), value)
                if not promo.in_top(values[config_number], list(values.values()), factor):
                    pause.reason = "rung"
                    return TrialStatus.PAUSED, (
                        f"paused after epoch {done}: not in the best 1/{factor} of "
                        f"{len(values)} at this rung yet"
                    )
            return None

        def finish(*, keep: bool = False) -> None:
            # the trial is over: drop its checkpoint (kept when it pauses); a continuation or a
            # retry copy that resumed gets the rows of the epochs done before it; rows an
            # earlier, longer attempt left beyond the epoch this one ended at are dropped
            if not keep:
                shutil.rmtree(backup, ignore_errors=True)
            if epochs_seen.first > 0:
                sources = [int(parent)] if parent is not None else []
                if origin != trial.number:
                    sources.append(origin)
                for number in sources:
                    source_id = study._storage.get_trial_id_from_study_id_trial_number(
                        study._study_id, number
                    )
                    store.copy_epochs(
                        name, source_id, trial._trial_id, trial.number, epochs_seen.first
                    )
            if epochs_seen.last >= 0:
                store.trim_epochs(trial._trial_id, epochs_seen.last)

        try:
            with warnings.catch_warnings():
                # a resumed trial reports its finished epochs again: Optuna keeps the first
                warnings.filterwarnings("ignore", message=".*already reported.*")
                result = run_trial(
                    dataset,
                    schedule,
                    config.optimizer,
                    settings,
                    trial=None if baseline else trial,
                    on_epoch=on_epoch,
                    backup_dir=str(backup),
                    decide=decide,
                )
        except (SweepInterrupted, KeyboardInterrupt):
            raise  # keep the checkpoint: the trial is queued again and resumes from it
        except optuna.TrialPruned:
            finish()
            raise
        except Exception as exc:
            if INTERRUPTS.requested:  # an error the stop caused in a library: not a failure
                raise SweepInterrupted(f"during {type(exc).__name__}") from None
            if _caused_by_environment(exc):
                raise _EnvironmentFailed(f"trial {trial.number}: {error_line(exc)}") from exc
            finish()
            trial.set_user_attr("traceback", traceback.format_exc()[-8000:])
            trial.set_user_attr("error", error_line(exc)[:500])
            raise
        faults.point("before-tell")
        paused = result.status is TrialStatus.PAUSED
        finish(keep=paused)
        active.clear()
        if paused:
            trial.set_user_attr(promo.PAUSED_ATTR, epochs_seen.last + 1)
            trial.set_user_attr(promo.PAUSE_REASON_ATTR, pause.reason)
        if result.status is not TrialStatus.COMPLETE:
            trial.set_user_attr(promo.OUTCOME_ATTR, str(result.status))
            trial.set_user_attr("reason", result.reason)
            raise optuna.TrialPruned(result.reason)
        assert result.value is not None
        return float(result.value)

    last: list[FrozenTrial] = []

    def remember(_study: optuna.Study, frozen: FrozenTrial) -> None:
        last.append(frozen)

    start = time.monotonic()
    ran = 0
    interrupted = False
    with INTERRUPTS.installed():
        with INTERRUPTS.deferred():
            run_id = store.start_run(name, env)
        try:
            while _wants_more(
                study,
                target,
                start,
                timeout,
                store=store,
                budget=budget,
                rung_list=rung_list if asha else (),
                factor=factor,
            ):
                t0 = time.monotonic()
                last.clear()
                active.clear()
                with INTERRUPTS.shielded():
                    study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[remember])
                ran += 1
                if progress is not None and last:
                    done = finished_count(study.get_trials(deepcopy=False))
                    progress(_event(last[-1], time.monotonic() - t0, done, target))
                INTERRUPTS.check()  # a stop while the outcome was recorded: the trial is done
                check_failure_rate(study, spec)
        except (SweepInterrupted, KeyboardInterrupt):
            interrupted = True
            with INTERRUPTS.shielded():
                if active:
                    requeue(study, active[0], "was interrupted")
        except _EnvironmentFailed as failure:
            with INTERRUPTS.shielded():
                if active:
                    requeue(study, active[0], "failed because of the environment")
            raise SweepAborted(
                f"{failure}; this machine cannot run the trial (it is queued again, not counted): "
                "fix the cause and rerun the same command"
            ) from None
        finally:
            with INTERRUPTS.shielded():
                store.finish_run(run_id)
    return ran, interrupted


class Epochs:
    """The first and last epoch a trial's run trained (-1: none yet)."""

    first = -1
    last = -1


class Pause:
    """Why a trial paused: ``"rung"`` (not among the best yet) or ``"budget"``."""

    reason = ""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to send SIGTERM to this worker when its parent dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def visible_gpus() -> list[str]:
    """GPU ids visible to child processes, without importing a framework."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def worker_env(index: int, workers: int, workers_per_gpu: int, gpus: list[str]) -> dict[str, str]:
    """Environment of worker ``index``: its GPU, or its share of the CPU cores."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["SWEEPER_WORKER_INDEX"] = str(index)
    if gpus:
        gpu = gpus[(index // max(1, workers_per_gpu)) % len(gpus)]
        env["CUDA_VISIBLE_DEVICES"] = gpu
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"  # several workers may share one GPU
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    else:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        env["OMP_NUM_THREADS"] = threads
        env["TF_NUM_INTRAOP_THREADS"] = threads
        env["TF_NUM_INTEROP_THREADS"] = "1"
    return env


def worker_command(
    name: str, target: int, timeout: float | None, checkpoint_dir: str | None
) -> list[str]:
    """The command line of a worker process started by ``tune --workers``.

    The storage URL (and its password) is not on it: it goes through the environment, since any
    user of the machine can read a command line (ps, /proc/PID/cmdline). ``-P`` keeps the working
    directory off ``sys.path``, so no file there is imported in place of a module.
    """
    cmd = [sys.executable, "-P", "-m", "sweeper", "worker"]
    cmd += ["--study-name", name, "--n-trials", str(target)]
    if timeout is not None:
        cmd += ["--timeout", str(timeout)]
    if checkpoint_dir is not None:
        cmd += ["--checkpoint-dir", checkpoint_dir]
    return cmd


def spawn_workers(
    url: str,
    name: str,
    *,
    workers: int,
    workers_per_gpu: int,
    target: int,
    timeout: float | None,
    checkpoint_dir: str | None,
    trusted_hash: str | None = None,
) -> tuple[bool, list[int]]:
    """Run ``workers`` processes of ``sweeper worker`` on the study: (interrupted, exit codes)."""
    gpus = visible_gpus()
    log.info(
        "starting %d workers on %s",
        workers,
        f"{len(gpus)} GPU(s)" if gpus else f"{os.cpu_count()} CPU cores",
    )
    cmd = worker_command(name, target, timeout, checkpoint_dir)
    procs = [
        subprocess.Popen(
            cmd,
            env={
                **worker_env(i, workers, workers_per_gpu, gpus),
                ENV_VAR: resolve_url(url),
                **({TRUSTED_HASH_ENV: trusted_hash} if trusted_hash else {}),
            },
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        for i in range(workers)
    ]
    interrupted = False
    with INTERRUPTS.installed():
        try:
            # poll them all, so a worker that dies is reaped at once (not left a zombie that
            # still looks alive to the others)
            while any(p.poll() is None for p in procs):
                time.sleep(0.5)
        except (SweepInterrupted, KeyboardInterrupt):
            interrupted = True
            with INTERRUPTS.shielded():
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
                for p in procs:
                    p.wait()
    codes = [int(p.returncode) for p in procs]
    return interrupted or any(c == 130 for c in codes), codes
