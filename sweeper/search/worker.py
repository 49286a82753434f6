"""A worker: the trial loop of one process, and the launcher of several.

A worker asks the shared study for trials until the study holds its target of finished trials
(or its epoch budget is spent); a new configuration starts only in a place of the target claimed
in the store (:mod:`sweeper.search.places`), so however many workers ask at once the study ends
with exactly its target. Before each trial it continues the paused trial that has earned
it, if any (:mod:`sweeper.search.promotion`); each trial runs as one :class:`~sweeper.search.attempt.Attempt`,
where its outcome is decided. Too many failures in a row stop the sweep
(:class:`~sweeper.errors.SweepAborted`); a trial that failed because of this machine goes back to
the queue and stops the sweep.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial

from sweeper import faults
from sweeper.environment import (
    ARTIFACTS_ENV,
    CHECKPOINT_ENV,
    STORAGE_ENV,
    TRUSTED_HASH_ENV,
    WORKER_INDEX_ENV,
    artifacts_from_env,
    checkpoint_root_from_env,
    host_name,
    worker_index_from_env,
)
from sweeper.errors import ConfigError
from sweeper.interrupts import INTERRUPTS, SweepInterrupted
from sweeper.search.attempt import (
    Attempt,
    Context,
    EnvironmentFailed,
    Rules,
    discard_checkpoint,
    remove_leftover_checkpoints,
)
from sweeper.search.loop_rules import (
    TrialReporter,
    check_failure_rate,
    environment_aborted,
    worker_wants_more,
)
from sweeper.search.lrfind import lr_ranges
from sweeper.search.outcomes import EpochEvent, TrialEvent
from sweeper.search.places import Claimant, NoPlace, PlacedStudy
from sweeper.search.recovery import dropped_if_ended_elsewhere, requeue
from sweeper.search.samplers_pruners import make_pruner, make_sampler
from sweeper.store import optuna_ids
from sweeper.store.storage_url import resolve_url
from sweeper.store.store import Store
from sweeper.studyfile.names import file_stem
from sweeper.training.backend import CONSOLE, load_keras

if TYPE_CHECKING:
    from sweeper.search.run_options import RunOptions
    from sweeper.studyfile.study_spec import StudySpec
    from sweeper.training.data import Dataset
    from sweeper.training.shared_checkpoints import SharedCheckpoints

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINTS = "sweeper-checkpoints"


def checkpoint_root(checkpoint_dir: str | None) -> Path:
    return Path(checkpoint_dir or checkpoint_root_from_env() or DEFAULT_CHECKPOINTS)


def check_checkpoint_dir(checkpoint_dir: str | None, name: str) -> None:
    """Refuse, in one line and before any trial, a checkpoint folder this process cannot write.

    The folders made to find out are removed again: a run refused later (a bad storage URL, say)
    leaves nothing behind.
    """
    folder = checkpoint_root(checkpoint_dir) / file_stem(name)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        for attempt in range(5):
            probe = folder / f".probe-{os.getpid()}"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe.write_bytes(b"")
            except FileNotFoundError:  # another worker starting removed the folder it made
                if attempt == 4:
                    raise
                continue
            probe.unlink()
            break
    except OSError as exc:
        raise ConfigError(
            f"checkpoint folder {folder} cannot be written ({exc.strerror or exc}); give "
            f"--checkpoint-dir (or ${CHECKPOINT_ENV}) a folder you may write"
        ) from None
    for path in made:  # innermost first; another worker may be writing there already: kept
        try:
            path.rmdir()
        except OSError:
            break


def shared_store(artifacts: str | None, name: str, host: str = "") -> SharedCheckpoints | None:
    """The study's shared checkpoint store, when ``artifacts`` (already resolved: see
    :func:`check_artifacts`) names one."""
    if not artifacts:
        return None
    from sweeper.training.shared_checkpoints import SharedCheckpoints, parse_url

    return SharedCheckpoints(parse_url(artifacts), file_stem(name), host)


def check_artifacts(artifacts: str | None, spec: StudySpec, name: str) -> str | None:
    """The artifact store's URL for this run (``--artifacts``, else ``$SWEEPER_ARTIFACTS``, else
    the study file's ``[study] artifacts``; None: checkpoints stay on each machine), once a
    small object was written there, read back and removed: what cannot reach or write it (a
    missing folder or bucket, no credentials) is one line here, before any trial trains."""
    url = artifacts or artifacts_from_env() or spec.artifacts
    shared = shared_store(url, name)
    if shared is not None:
        shared.probe()
    return url or None


def _n_trials(storage: optuna.storages.BaseStorage, name: str) -> int:
    """Trials of study ``name`` so far (read before a sampler is built for it)."""
    return storage.get_n_trials(storage.get_study_id_from_name(name))


def run_worker(
    spec: StudySpec,
    store: Store,
    name: str,
    options: RunOptions,
    *,
    target: int,
    dataset: Dataset | None = None,
    worker_index: int = 0,
    budget: int | None = None,
) -> tuple[int, bool]:
    """Run trials of study ``name`` until it holds ``target`` finished ones, ``budget`` epochs
    have been trained for it in all (every process and run counted) or ``options.timeout``
    seconds pass. ``options.pack`` trials train at once (default: the study's ``[train] pack``;
    see :mod:`sweeper.search.pack_loop`); checkpoints go under ``options.checkpoint_dir`` or to
    ``options.artifacts``, already resolved (:func:`check_artifacts`).

    ``options.progress`` is called with each finished trial (a :class:`TrialEvent`); its ``epoch``
    method, when it has one, with each epoch trained (an :class:`EpochEvent`), and its
    ``clear`` once the trials end, except in the workers ``tune --workers`` starts, which share
    one console.

    Returns (trials run here, interrupted). Ctrl-C/SIGTERM puts the running trial back in the
    queue (its checkpoint kept) and returns.
    """
    from sweeper.training.train_trial import environment

    env = environment()  # imports Keras
    progress, timeout = options.progress, options.timeout
    spawned = worker_index_from_env() is not None  # one of tune --workers' processes
    index = f"worker {worker_index}: " if spawned else ""
    CONSOLE.info("%s%s", index, load_keras().describe())
    show = getattr(progress, "epoch", None)
    on_epoch: Callable[[EpochEvent], None] | None = show if callable(show) and not spawned else None
    with INTERRUPTS.installed():
        with INTERRUPTS.deferred():
            run_id = store.start_run(name, env)
        ctx = _context(
            spec,
            store,
            name,
            dataset,
            options,
            worker_index,
            budget,
            target,
            run_id,
            on_epoch=on_epoch,
        )
        try:
            remove_leftover_checkpoints(ctx)  # of trials told before a kill let them be removed
            if ctx.settings.pack > 1:
                from sweeper.search.pack_loop import packed_trial_loop

                return packed_trial_loop(ctx, target, timeout, progress)
            return _trial_loop(ctx, target, timeout, progress)
        finally:
            with INTERRUPTS.shielded():
                store.roll_back_abandoned()  # an interrupted store call may hold SQLite's lock
                store.finish_run(run_id)
            clear = getattr(progress, "clear", None)
            if on_epoch is not None and callable(clear):
                clear()  # its epoch line goes, however the trials ended


def _context(
    spec: StudySpec,
    store: Store,
    name: str,
    dataset: Dataset | None,
    options: RunOptions,
    worker_index: int,
    budget: int | None,
    target: int,
    run_id: int,
    *,
    on_epoch: Callable[[EpochEvent], None] | None = None,
) -> Context:
    """What this worker's attempts share; the sampler and the pruner are built once, here."""
    from sweeper.training.data import load_dataset
    from sweeper.training.train_trial import steps_per_epoch

    dataset = dataset or load_dataset(spec.data)
    storage = store.optuna_storage()
    # a different seed per worker and per resume, so no two samplers replay the same draws
    offset = _n_trials(storage, name) + 7919 * worker_index
    worker = f"{host_name()}:{os.getpid()}"
    # its trials are taken only where the study has a place for them (search/places.py)
    shared = shared_store(options.artifacts, name, host_name())
    study = PlacedStudy(
        study_name=name,
        storage=storage,
        sampler=make_sampler(spec, offset),
        pruner=make_pruner(spec),
        claimant=Claimant(store, target, worker, local_checkpoints=shared is None),
    )
    # computed once per study, when it was prepared; every worker's schedules use that value
    stored_spe = study.user_attrs.get("steps_per_epoch")
    spe = int(stored_spe or steps_per_epoch(len(dataset.x_train), spec.train.batch_size))
    log.info("worker %s on study %s (%s): %s", worker, name, store.masked_url, dataset.summary())
    checkpoints = checkpoint_root(options.checkpoint_dir) / file_stem(name)  # never outside it
    return Context(
        spec=spec,
        store=store,
        name=name,
        study=study,
        dataset=dataset,
        settings=dataclasses.replace(
            spec.train, seed=spec.seed, pack=options.pack or spec.train.pack
        ),
        steps_per_epoch=spe,
        ranges=lr_ranges(spec, store, name),
        checkpoints=checkpoints,
        shared=shared,
        worker=worker,
        run_id=run_id,
        rules=Rules.of(spec, dataset.num_classes, spe, budget, target),
        on_epoch=on_epoch,
    )


def _trial_loop(
    ctx: Context,
    target: int,
    timeout: float | None,
    progress: Callable[[TrialEvent], None] | None,
) -> tuple[int, bool]:
    """Ask for trials until the study has enough; (trials run here, interrupted).

    While Optuna creates a trial, the trial trains and its outcome is recorded, a signal only
    records the stop (see sweeper.interrupts): training ends after the batch in progress, and
    the stop is raised at the next safe point, so it never lands in a store write or a library
    callback. The running trial is then put back in the queue.
    """
    study = ctx.study
    active: list[int] = []  # trial_id of the trial being trained, for Ctrl-C
    asked: list[int] = []  # number of the trial of this round
    last: list[FrozenTrial] = []

    def objective(trial: optuna.Trial) -> float:
        active[:] = [optuna_ids.trial_id(trial)]
        asked[:] = [trial.number]
        faults.point("after-ask")
        INTERRUPTS.check()
        value = Attempt(ctx, trial).run()
        active.clear()
        return value

    def remember(_study: optuna.Study, frozen: FrozenTrial) -> None:
        last.append(frozen)
        discard_checkpoint(ctx, frozen)  # Optuna calls back once it was told

    start = time.monotonic()
    report = TrialReporter(ctx, progress, target, start, timeout)
    ran = 0
    try:
        while worker_wants_more(ctx, target, start, timeout):
            t0 = time.monotonic()
            last.clear()
            active.clear()
            asked.clear()
            try:
                with INTERRUPTS.shielded(), dropped_if_ended_elsewhere(asked):
                    study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[remember])
            except NoPlace:  # another worker took the last place or the queued trial first
                continue
            if not asked:  # another process ended it: it is not this worker's to requeue
                active.clear()
            ran += 1
            if last:
                report(last[-1], time.monotonic() - t0)
            INTERRUPTS.check()  # a stop while the outcome was recorded: the trial is done
            check_failure_rate(study, ctx.spec)
    except (SweepInterrupted, KeyboardInterrupt):
        with INTERRUPTS.shielded():
            if active:
                requeue(study, active[0], "was interrupted")
        return ran, True
    except EnvironmentFailed as failure:
        with INTERRUPTS.shielded():
            if active:
                requeue(study, active[0], "failed because of the environment")
        raise environment_aborted(failure) from None
    return ran, False


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
    env[WORKER_INDEX_ENV] = str(index)
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


def worker_command(name: str, target: int, options: RunOptions) -> list[str]:
    """The command line of a worker process started by ``tune --workers``: the study, its
    target and the options of ``options`` that a worker takes as flags.

    The storage URL (and its password) is not on it: it goes through the environment, since any
    user of the machine can read a command line (ps, /proc/PID/cmdline). ``-P`` keeps the working
    directory off ``sys.path``, so no file there is imported in place of a module.
    """
    cmd = [sys.executable, "-P", "-m", "sweeper", "worker"]
    cmd += ["--study-name", name, "--n-trials", str(target)]
    if options.timeout is not None:
        cmd += ["--timeout", str(options.timeout)]
    if options.checkpoint_dir is not None:
        cmd += ["--checkpoint-dir", options.checkpoint_dir]
    if options.pack is not None:
        cmd += ["--pack", str(options.pack)]
    return cmd


def spawn_workers(
    url: str, name: str, options: RunOptions, *, target: int, trusted_hash: str | None = None
) -> tuple[bool, list[int]]:
    """Run ``options.workers`` processes of ``sweeper worker`` on the study, ``workers_per_gpu``
    on each GPU: (interrupted, exit codes). The shared checkpoint store (``options.artifacts``,
    resolved) and ``trusted_hash`` reach them through the environment."""
    workers, artifacts = options.workers, options.artifacts
    gpus = visible_gpus()
    log.info(
        "starting %d workers on %s",
        workers,
        f"{len(gpus)} GPU(s)" if gpus else f"{os.cpu_count()} CPU cores",
    )
    cmd = worker_command(name, target, options)
    procs = [
        subprocess.Popen(
            cmd,
            env={
                **worker_env(i, workers, options.workers_per_gpu, gpus),
                STORAGE_ENV: resolve_url(url),
                **({ARTIFACTS_ENV: artifacts} if artifacts else {}),
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
