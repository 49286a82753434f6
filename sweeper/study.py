"""Run a study: open it on the store, enqueue baselines, run trials until N have finished.

``--n-trials N`` means *until the study holds N finished trials* (complete + pruned + failed, a
failed trial that was retried not counted), so rerunning the same command after any stop runs
only what is missing. A trial left RUNNING by a process that died is retried with the same
parameters: at once when that process ran on this host (its pid is gone), otherwise when
Optuna's heartbeat marks it stale. Ctrl-C (or SIGTERM) marks the running trial failed and queues
its retry, so the store stays consistent and the next run re-trains it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from sweeper import space as space_mod
from sweeper.config import Choices, StudySpec
from sweeper.data import load_dataset
from sweeper.errors import StorageError
from sweeper.store import Store

log = logging.getLogger(__name__)

WORKER_ATTR = "worker"  # user attr "host:pid" of the process running the trial
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class TrialEvent:
    """What the progress display is told after each trial."""

    number: int
    state: str  # complete | pruned | diverged | failed
    value: float | None
    description: str
    seconds: float
    finished: int
    target: int


@dataclass
class TuneSummary:
    study_name: str
    storage: str
    target: int
    counts: dict[str, int]
    ran: int
    seconds: float
    best_value: float | None = None
    best_number: int | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_schedule: str | None = None
    best_baseline: str | None = None
    best_baseline_value: float | None = None
    interrupted: bool = False

    @property
    def gain(self) -> float | None:
        if self.best_value is None or self.best_baseline_value is None:
            return None
        return self.best_value - self.best_baseline_value


def make_sampler(spec: StudySpec, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    seed = spec.seed + seed_offset
    if spec.sampler.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler.kind == "grid":
        return optuna.samplers.GridSampler(space_mod.grid(spec.space), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.sampler.n_startup_trials)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    if p.kind == "none":
        return optuna.pruners.NopPruner()
    if p.kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=p.min_resource, reduction_factor=p.reduction_factor
        )
    if p.kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=p.min_resource,
            max_resource=spec.train.epochs,
            reduction_factor=p.reduction_factor,
        )
    return optuna.pruners.MedianPruner(
        n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps
    )


def superseded(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that have been queued again (their retry counts instead)."""
    out: set[int] = set()
    for t in trials:
        # the retry callback's "retry_history": every earlier attempt of this trial
        out.update(t.system_attrs.get("retry_history", ()))
    return out


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials by outcome; a failed trial that was retried is counted as ``retried``."""
    retried = superseded(trials)
    counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0, "retried": 0}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["pruned"] += 1
        elif t.state == TrialState.FAIL:
            counts["retried" if t.number in retried else "failed"] += 1
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
        else:
            counts["waiting"] += 1
    return counts


def finished_count(trials: list[FrozenTrial]) -> int:
    c = count_states(trials)
    return c["complete"] + c["pruned"] + c["failed"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SweepInterrupted(BaseException):
    """Ctrl-C or SIGTERM during a sweep.

    A BaseException that Optuna's trial runner does not catch, so the running trial is not
    marked failed behind our back and can be put back in the queue as it is.
    """


def requeue(study: optuna.Study, trial_id: int, reason: str) -> bool:
    """Put a RUNNING trial back to WAITING: the next run re-trains it with the same parameters.

    It keeps its number (so it runs before later queued trials), parameters and user attributes;
    its per-epoch rows are overwritten, not duplicated, when it runs again.
    """
    storage = study._storage
    try:
        trial = storage.get_trial(trial_id)
        if trial.state != TrialState.RUNNING:
            return False
        storage.set_trial_user_attr(trial_id, "requeued", reason)
        ok = storage.set_trial_state_values(trial_id, TrialState.WAITING)
    except (RuntimeError, UpdateFinishedTrialError):  # it finished meanwhile
        return False
    if ok:
        log.info("trial %d %s: queued again with the same parameters", trial.number, reason)
    return ok


def reap_dead_local_trials(study: optuna.Study) -> int:
    """Requeue RUNNING trials whose process, on this host, no longer exists.

    Trials of dead processes on other hosts are left to Optuna's heartbeat, which notices them
    after its grace period and queues a copy.
    """
    host = socket.gethostname()
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(t.user_attrs.get(WORKER_ATTR, ""))
        w_host, _, w_pid = worker.rpartition(":")
        if w_host != host or not w_pid.isdigit():
            continue
        pid = int(w_pid)
        if pid == os.getpid() or _pid_alive(pid):
            continue
        n += requeue(study, t._trial_id, f"was left running by process {pid}, which died")
    return n


@contextmanager
def _interrupts_as(exc: type[BaseException]) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into ``exc`` while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: Any) -> None:
        raise exc

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _describe(trial: FrozenTrial) -> str:
    schedule = trial.user_attrs.get("schedule")
    text = str(trial.params.get(space_mod.SCHEDULE_PARAM, ""))
    if schedule:
        from sweeper.schedules import from_dict

        try:
            text = from_dict(schedule).describe()
        except Exception:  # an unreadable attribute must not stop the progress display
            text = str(schedule.get("family"))
    optimizer = trial.user_attrs.get("optimizer")
    if optimizer and optimizer != "sgd":
        text += f" + {optimizer}"
    baseline = trial.user_attrs.get(space_mod.BASELINE_ATTR)
    if baseline:
        text = f"[baseline: {baseline}] {text}"
    return text


def _enqueue_baselines(study: optuna.Study, spec: StudySpec) -> None:
    if study.user_attrs.get("baselines_enqueued"):
        return
    families = set(spec.space.families())
    for b in spec.baselines:
        if b.family not in families:
            log.warning(
                "baseline %r skipped: its family %r is not in [space] schedules", b.name, b.family
            )
            continue
        values = space_mod.baseline_values(b.values, spec.space)
        params = space_mod.baseline_params(values, spec.space)
        bad = [
            k
            for k, v in params.items()
            if isinstance(spec.space.dims.get(k), Choices) and v not in spec.space.dims[k].values  # type: ignore[union-attr]
        ]
        if bad:
            log.warning("baseline %r skipped: %s outside the space's choices", b.name, bad)
            continue
        study.enqueue_trial(
            params,
            user_attrs={
                space_mod.BASELINE_ATTR: b.name,
                space_mod.BASELINE_VALUES_ATTR: values,
            },
        )
    study.set_user_attr("baselines_enqueued", True)


def open_study(
    spec: StudySpec, store: Store, study_name: str, *, n_existing_hint: int = 0
) -> optuna.Study:
    storage = store.optuna_storage()
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=study_name,
            direction="maximize",
            sampler=make_sampler(spec, n_existing_hint),
            pruner=make_pruner(spec),
            load_if_exists=True,
        )
    except Exception as exc:
        if isinstance(exc, StorageError):
            raise
        raise store._fail(exc) from exc
    if n_existing_hint == 0:
        # a resumed study must not replay the sampler's first draws: offset its seed
        n = len(study.get_trials(deepcopy=False))
        if n:
            study.sampler = make_sampler(spec, n)
    return study


def summarize(study: optuna.Study, target: int, storage: str) -> TuneSummary:
    trials = study.get_trials(deepcopy=False)
    summary = TuneSummary(
        study_name=study.study_name,
        storage=storage,
        target=target,
        counts=count_states(trials),
        ran=0,
        seconds=0.0,
    )
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if complete:
        best = max(complete, key=lambda t: t.value or 0.0)
        summary.best_value = best.value
        summary.best_number = best.number
        summary.best_params = dict(best.params)
        summary.best_schedule = _describe(best)
    baselines = [t for t in complete if t.user_attrs.get(space_mod.BASELINE_ATTR)]
    if baselines:
        b = max(baselines, key=lambda t: t.value or 0.0)
        summary.best_baseline = str(b.user_attrs[space_mod.BASELINE_ATTR])
        summary.best_baseline_value = b.value
    return summary


def _wants_more(study: optuna.Study, target: int, start: float, timeout: float | None) -> bool:
    """Whether to start another trial; waits while the last ones run in other processes."""
    while True:
        if timeout is not None and time.monotonic() - start > timeout:
            return False
        reap_dead_local_trials(study)
        trials = study.get_trials(deepcopy=False)
        done = finished_count(trials)
        if done >= target:
            return False
        running = sum(1 for t in trials if t.state == TrialState.RUNNING)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if done + running < target or waiting:
            return True
        # the rest is running elsewhere: wait for it to finish, or for its heartbeat to go stale
        time.sleep(2.0)
        optuna.storages.fail_stale_trials(study)


def _event(t: FrozenTrial, seconds: float, done: int, target: int) -> TrialEvent:
    state = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
    }.get(t.state, t.state.name.lower())
    if t.user_attrs.get("outcome") == "diverged":
        state = "diverged"
    return TrialEvent(t.number, state, t.value, _describe(t), seconds, done, target)


def tune(
    spec: StudySpec,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    allow_changed: bool = False,
    progress: Callable[[TrialEvent], None] | None = None,
) -> TuneSummary:
    """Run ``spec`` until the study holds ``n_trials`` finished trials (or ``timeout`` passes)."""
    from sweeper.training import TrialStatus, environment, run_trial, steps_per_epoch

    name = study_name or spec.name
    target = n_trials or spec.n_trials
    dataset = load_dataset(spec.data)  # bad data fails here, before the store is touched
    spe = steps_per_epoch(len(dataset.x_train), spec.train.batch_size)
    settings = spec.train.__class__(**{**spec.train.__dict__, "seed": spec.seed})

    store = Store(storage)
    store.check_study_file(name, spec.hash, allow_changed=allow_changed)
    study = open_study(spec, store, name)
    store.save_study_file(name, spec.source, spec.text, spec.overrides, spec.hash)
    study.set_user_attr("steps_per_epoch", spe)
    study.set_user_attr("epochs", spec.train.epochs)
    _enqueue_baselines(study, spec)
    run_id = store.start_run(name, environment())
    worker = f"{socket.gethostname()}:{os.getpid()}"
    log.info("study %s on %s: %s", name, store.masked_url, dataset.summary())

    active: list[int] = []  # trial_id of the trial being trained, for Ctrl-C

    def objective(trial: optuna.Trial) -> float:
        active[:] = [trial._trial_id]
        trial.set_user_attr(WORKER_ATTR, worker)
        config = space_mod.sample(trial, spec.space)
        schedule = config.schedule(spe, spec.train.epochs)
        trial.set_user_attr("schedule", schedule.to_dict())
        trial.set_user_attr("optimizer", config.optimizer.describe())
        trial.set_user_attr("steps_per_epoch", spe)

        def on_epoch(record: Any) -> None:
            store.add_epoch(name, trial._trial_id, trial.number, record.to_dict(), run_id)

        try:
            result = run_trial(
                dataset, schedule, config.optimizer, settings, trial=trial, on_epoch=on_epoch
            )
        except optuna.TrialPruned:
            raise
        except Exception:
            trial.set_user_attr("traceback", traceback.format_exc()[-8000:])
            raise
        if result.status is TrialStatus.DIVERGED:
            trial.set_user_attr("outcome", "diverged")
            trial.set_user_attr("reason", result.reason)
            raise optuna.TrialPruned(result.reason)
        assert result.value is not None
        active.clear()
        return float(result.value)

    last: list[FrozenTrial] = []

    def remember(_study: optuna.Study, frozen: FrozenTrial) -> None:
        last.append(frozen)

    start = time.monotonic()
    ran = 0
    interrupted = False
    with _interrupts_as(SweepInterrupted):
        try:
            while _wants_more(study, target, start, timeout):
                t0 = time.monotonic()
                last.clear()
                study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[remember])
                ran += 1
                if progress is not None and last:
                    done = finished_count(study.get_trials(deepcopy=False))
                    progress(_event(last[-1], time.monotonic() - t0, done, target))
        except (SweepInterrupted, KeyboardInterrupt):
            interrupted = True
            if active:
                requeue(study, active[0], "was interrupted")
        finally:
            store.finish_run(run_id)

    summary = summarize(study, target, store.masked_url)
    summary.ran = ran
    summary.seconds = time.monotonic() - start
    summary.interrupted = interrupted
    store.close()
    return summary
