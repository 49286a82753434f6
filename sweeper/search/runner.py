"""Run a study: open it on the store, enqueue baselines, run trials until N have finished.

``--n-trials N`` means *until the study holds N finished trials* (complete + pruned + failed, a
failed trial that was retried not counted), so rerunning the same command after any stop runs
only what is missing. A trial left RUNNING by a process that died is retried with the same
parameters (:mod:`sweeper.search.recovery`). Ctrl-C (or SIGTERM) puts the running trial back in the
queue with its number and parameters, so the store stays consistent and the next run re-trains
it. The trials themselves run in :mod:`sweeper.search.worker`, one process or several.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from pathlib import Path

import optuna

from sweeper import faults
from sweeper.environment import trusted_hash_from_env, worker_index_from_env
from sweeper.errors import ConfigError, StorageError, SweepAborted
from sweeper.interrupts import INTERRUPTS
from sweeper.search import reference
from sweeper.search import space as space_mod
from sweeper.search.attempt import budget_spent
from sweeper.search.loop_rules import check_failure_rate
from sweeper.search.lrfind import lr_ranges
from sweeper.search.outcomes import count_states, finished_count
from sweeper.search.places import forget_leftover_places
from sweeper.search.run_options import RunOptions
from sweeper.search.summary import TuneSummary, summarize
from sweeper.search.trial_record import (
    BASELINE_ATTR,
    BASELINE_VALUES_ATTR,
    REFERENCE_ATTR,
    REFERENCE_RATE_ATTR,
)
from sweeper.search.worker import check_artifacts, check_checkpoint_dir, run_worker, spawn_workers
from sweeper.store.model_identity import WORKER_FIX, check_model_identity, record_model_identity
from sweeper.store.storage_url import check_sqlite_dir
from sweeper.store.store import Store
from sweeper.studyfile.dimensions import Choices
from sweeper.studyfile.study_spec import StudySpec
from sweeper.training.backend import CONSOLE
from sweeper.training.data import Dataset, load_dataset
from sweeper.training.fingerprint import ModelFingerprint
from sweeper.training.models import check_model, check_model_module

log = logging.getLogger(__name__)


def _taken(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Trials that take a place of the study's target: finished, running or queued."""
    counts = count_states(trials)
    return sum(counts[k] for k in ("complete", "pruned", "paused", "failed", "running", "waiting"))


def _enqueue_baselines(study: optuna.Study, spec: StudySpec, target: int) -> None:
    """Queue the study file's baselines that are not in the study yet, as many as ``target`` has
    room for (the rest are queued when a later run raises the target).

    Which baselines are in the study is read from its trials (their baseline attribute), so a
    run killed while queueing them queues only the missing ones the next time.
    """
    families = set(spec.space.families())
    wanted = []
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
        wanted.append((b.name, values, params))
    trials = study.get_trials(deepcopy=False)
    present = {t.user_attrs.get(BASELINE_ATTR) for t in trials}
    missing = [w for w in wanted if w[0] not in present]
    room = target - _taken(trials)
    if missing and room < len(missing):
        CONSOLE.warning(
            "warning: %d trial%s leave%s room for %d of the %d baselines not yet run and for no "
            "tuned trial; use --n-trials %d or more to tune the schedule",
            target,
            "" if target == 1 else "s",
            "s" if target == 1 else "",
            max(room, 0),
            len(missing),
            target - room + len(missing) + 1,
        )
    elif missing and room == len(missing):
        CONSOLE.warning(
            "warning: %d trials are all taken by the %d baselines: no tuned trial will run; use "
            "--n-trials %d or more to tune the schedule",
            target,
            len(missing),
            target + 1,
        )
    for name, values, params in missing[: max(room, 0)]:
        study.enqueue_trial(
            params,
            user_attrs={BASELINE_ATTR: name, BASELINE_VALUES_ATTR: values},
        )
        faults.point("baselines")


def _enqueue_reference(
    study: optuna.Study, spec: StudySpec, target: int, ranges: dict[str, tuple[float, float]]
) -> None:
    """Queue the reference configuration (``[sampler] reference``) once, before the first tuned
    trial: a new study gets it, a study that has tuned trials already is left as it is."""
    family = spec.sampler.reference
    if family == "none" or spec.sampler.kind == "grid":
        return
    trials = study.get_trials(deepcopy=False)
    if any(not t.user_attrs.get(BASELINE_ATTR) for t in trials):
        return  # it is queued, or the study was tuned before (and without one)
    found = reference.reference_params(spec.space, family, ranges)
    if found is None or _taken(trials) >= target:
        return
    params, described = found
    study.enqueue_trial(
        params,
        user_attrs={
            REFERENCE_ATTR: described,
            REFERENCE_RATE_ATTR: params.get("initial_lr"),
        },
    )
    log.info("reference configuration queued: %s", described)


def open_study(spec: StudySpec, store: Store, study_name: str) -> optuna.Study:
    """Open the study, creating it if needed, to prepare it (its file, attributes, baselines).

    This study object samples nothing: the process that runs trials loads the study with its
    own sampler and pruner, built once there (:func:`sweeper.search.worker.run_worker`), so the
    placeholders below are all that is built here.
    """
    storage = store.optuna_storage()
    try:
        return optuna.create_study(
            storage=storage,
            study_name=study_name,
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=spec.seed),
            pruner=optuna.pruners.NopPruner(),
            load_if_exists=True,
        )
    except Exception as exc:
        if isinstance(exc, StorageError):
            raise
        raise store.as_error(exc) from exc


def prepare_study(
    spec: StudySpec,
    store: Store,
    name: str,
    *,
    allow_changed: bool,
    steps_per_epoch: int,
    target: int,
    budget: int | None = None,
    model: ModelFingerprint | None = None,
) -> optuna.Study:
    """Open or create the study, record its file and its model's fingerprint, queue baselines."""
    store.check_study_file(
        name, spec.hash, allow_changed=allow_changed, text=spec.text, overrides=spec.overrides
    )
    check_model_identity(store, name, spec.train.model, model, allow_changed=allow_changed)
    study = open_study(spec, store, name)
    forget_leftover_places(study, store)  # a new study's name may be a deleted one's
    # keep the file's absolute path: workers elsewhere resolve the data path against it
    source = Path(spec.source)
    stored_source = str(source.resolve()) if source.is_file() else spec.source
    store.save_study_file(name, stored_source, spec.text, spec.overrides, spec.hash)
    record_model_identity(study, spec.train.model, model)
    if study.metric_names != [spec.metric]:  # optuna-dashboard and the CLI name the objective
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([spec.metric])
    study.set_user_attr("steps_per_epoch", steps_per_epoch)
    study.set_user_attr("epochs", spec.train.epochs)
    study.set_user_attr("n_trials", target)
    study.set_user_attr("budget_epochs", budget)
    _enqueue_baselines(study, spec, target)
    with INTERRUPTS.undeferred():  # an LR range test trains: let Ctrl-C stop it
        ranges = lr_ranges(spec, store, name)
    if ranges:
        study.set_user_attr("initial_lr_ranges", {k: list(v) for k, v in ranges.items()})
    _enqueue_reference(study, spec, target, ranges)
    return study


def runs_code(spec: StudySpec) -> list[str]:
    """What in ``spec`` would run code of the store's choosing on a worker: a user model is
    imported; CIFAR-10 batches from a path are unpickled (restricted, but still a path)."""
    from sweeper.training.models import MODELS

    found = []
    if spec.train.model not in MODELS:
        found.append(f"imports model {spec.train.model!r}")
    if spec.data.path is not None and spec.data.name == "cifar10":
        found.append(f"reads CIFAR-10 pickles from {spec.data.path}")
    return found


def load_stored_spec(
    store: Store, name: str, *, trust_store: bool = False, study_file: str | None = None
) -> StudySpec:
    """The study's definition as stored, for a worker that has no local copy of the file.

    The store is data, not a program: the stored text must match its stored hash, and a
    definition that would import a user model (or unpickle files) is run only when something
    on this machine confirms it: ``study_file`` (this worker's copy, same hash), the stored
    source path holding that same text here, ``$SWEEPER_TRUSTED_HASH`` (set by the ``tune`` that
    started this worker) or ``trust_store``.
    """
    from sweeper.studyfile.config import load_study_file, parse_study

    stored = store.study_file(name)
    if stored is None:
        raise ConfigError(
            f"study {name!r} has no stored study file in {store.masked_url}; start it with "
            "`sweeper tune STUDY_FILE` first"
        )
    source = Path(stored.source)
    here = source.parent.is_dir()
    base = source.resolve().parent if here else Path.cwd()
    spec = parse_study(
        stored.text,
        stored.source,
        base_dir=base,
        default_name=name,
        overrides=stored.overrides,
    )
    if not here and spec.train.model_dir is not None:
        # the study's folder is not on this machine: a user model comes from sys.path alone,
        # never from whatever the working directory holds
        spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, model_dir=None))
    if spec.hash != stored.hash:
        raise ConfigError(
            f"study {name!r} in {store.masked_url}: its stored study file does not match its "
            "stored hash (the store was edited); continue it with `sweeper tune STUDY_FILE "
            "--allow-changed` from a file you trust"
        )
    if study_file is not None:
        mine = load_study_file(study_file, stored.overrides)
        if mine.hash != stored.hash:
            raise ConfigError(
                f"--study-file {study_file}: differs from the study file of {name!r} stored in "
                f"{store.masked_url}; give the file the study was started with"
            )
        return mine  # paths (data, a user model beside it) as this worker's copy names them
    risky = runs_code(spec)
    if risky and not trust_store and trusted_hash_from_env() != stored.hash:
        try:
            local = load_study_file(source, stored.overrides).hash if source.is_file() else None
        except ConfigError:
            local = None
        if local != stored.hash:
            raise ConfigError(
                f"study {name!r} {' and '.join(risky)}, as named only by the store; confirm it "
                "with --study-file FILE (your copy of the study file) or --trust-store"
            )
    return spec


@INTERRUPTS.handling
def tune(spec: StudySpec, options: RunOptions) -> TuneSummary:
    """Run ``spec`` until the study holds ``options.n_trials`` finished trials (default: the
    study file's), ``budget_epochs`` epochs were trained for it in all, or ``timeout`` passes.

    With ``workers > 1`` the trials run in that many worker processes sharing the store; each
    worker trains ``pack`` trials at once (default: the study file's ``[train] pack``).
    Ctrl-C/SIGTERM while trials run returns a summary with ``interrupted`` set (the running
    trial back in the queue); before the first trial starts it raises
    :class:`~sweeper.interrupts.SweepInterrupted`, with nothing half-written in the store.
    """
    from sweeper.training.train_trial import steps_per_epoch

    name = options.study_name or spec.name  # checked when the options were made
    target = options.n_trials or spec.n_trials
    budget = options.budget_epochs or spec.budget_epochs
    store = Store(options.storage)  # a URL that cannot be a store is refused before the data
    check_sqlite_dir(store.url)
    dataset, model, options = _checked_dataset(spec, name, options)
    # a database error anywhere in the run (a full disk, a lost server) is one line
    with store.writes():
        with INTERRUPTS.deferred():  # the study, its file and its baselines are written whole
            study = prepare_study(
                spec,
                store,
                name,
                allow_changed=options.allow_changed,
                steps_per_epoch=steps_per_epoch(len(dataset.x_train), spec.train.batch_size),
                target=target,
                budget=budget,
                model=model,
            )
            record_artifacts(study, options.artifacts)
        start = time.monotonic()
        before = finished_count(study.get_trials(deepcopy=False))
        if options.workers <= 1:
            ran, interrupted = run_worker(
                spec, store, name, options, target=target, dataset=dataset, budget=budget
            )
        else:
            interrupted, codes = spawn_workers(
                store.url,
                name,
                options,
                target=target,
                trusted_hash=spec.hash,  # this process read the study file: its workers may trust it
            )
            ran = finished_count(study.get_trials(deepcopy=False)) - before
            if not interrupted:
                _check_worker_codes(codes, study, spec, store, name, target=target, budget=budget)
        summary = summarize(study, target, store.masked_url)
        summary.ran = ran
        summary.seconds = time.monotonic() - start
        summary.interrupted = interrupted
        summary.workers = options.workers
        stored_ranges = study.user_attrs.get("initial_lr_ranges", {})
        summary.lr_ranges = {k: (float(v[0]), float(v[1])) for k, v in stored_ranges.items()}
        summary.epochs_spent = store.epochs_spent(name)
        summary.budget_epochs = budget
        store.close()
        return summary


def record_artifacts(study: optuna.Study, artifacts: str | None) -> None:
    """Note in the study where its checkpoints are shared (``sweeper status`` says it), the
    URL only: credentials never go in it (:func:`~sweeper.training.shared_checkpoints.parse_url`)."""
    from sweeper.training.shared_checkpoints import ARTIFACTS_ATTR

    if artifacts and study.user_attrs.get(ARTIFACTS_ATTR) != artifacts:
        study.set_user_attr(ARTIFACTS_ATTR, artifacts)


def _checked_dataset(
    spec: StudySpec, name: str, options: RunOptions
) -> tuple[Dataset, ModelFingerprint | None, RunOptions]:
    """The study's data, its user model's fingerprint and the options with the shared checkpoint
    store's URL resolved (``artifacts``; None: none), once the model, the checkpoint folder and
    the shared store are known to work: what can fail fails here, before the store is touched."""
    # a user model's module that is not there fails now, not after the backend's start-up
    check_model_module(spec.train.model, spec.train.model_dir)
    dataset = load_dataset(spec.data)
    INTERRUPTS.check()  # a stop during start-up that a library swallowed is taken here
    # and so does a user model that cannot be imported, called or trained on this data
    model = check_model(
        spec.train.model, dataset.input_shape, dataset.num_classes, spec.train.model_dir
    )
    check_checkpoint_dir(options.checkpoint_dir, name)
    shared = check_artifacts(options.artifacts, spec, name)
    INTERRUPTS.check()
    return dataset, model, dataclasses.replace(options, artifacts=shared)


def _check_worker_codes(
    codes: list[int],
    study: optuna.Study,
    spec: StudySpec,
    store: Store,
    name: str,
    *,
    target: int,
    budget: int | None,
) -> None:
    """After the workers of a sweep ended: raise if one failed before the study was done (the
    failure-cap message when that was it), warn if it failed once the study was complete."""
    if all(c in (0, 130) for c in codes):
        return
    check_failure_rate(study, spec)
    trials = study.get_trials(deepcopy=False)
    if finished_count(trials) < target and not budget_spent(store, name, budget):
        raise SweepAborted(
            f"worker exit codes {codes} (see their messages above); rerun the same command to "
            "resume"
        )
    log.warning("a worker ended with an error (exit codes %s); the study is complete", codes)


@INTERRUPTS.handling
def join_study(store: Store, name: str, options: RunOptions) -> tuple[int, bool, int]:
    """Run trials of a stored study as one more worker: (trials run, interrupted, target).

    The study's definition comes from the store, under the trust rule of :func:`load_stored_spec`
    (``options.trust_store``, ``options.study_file``); its user model must build the network the
    study was stored with (its fingerprint). The target is ``options.n_trials``, else the one the
    study was started with; the epoch budget is the study's.
    """
    if not name.strip():
        raise ConfigError("--study-name is empty; give the name of a study in the store")
    spec = load_stored_spec(
        store, name, trust_store=options.trust_store, study_file=options.study_file
    )
    dataset, model, options = _checked_dataset(spec, name, options)
    check_model_identity(store, name, spec.train.model, model, allow_changed=False, fix=WORKER_FIX)
    with INTERRUPTS.deferred():
        study = open_study(spec, store, name)
        record_model_identity(study, spec.train.model, model)
        record_artifacts(study, options.artifacts)
    target = options.n_trials or int(study.user_attrs.get("n_trials", spec.n_trials))
    stored_budget = study.user_attrs.get("budget_epochs", spec.budget_epochs)
    index = worker_index_from_env()  # set by --workers; else a joiner
    with store.writes():  # a database error while trials run (a full disk) is one line
        ran, interrupted = run_worker(
            spec,
            store,
            name,
            options,
            target=target,
            dataset=dataset,
            worker_index=index if index is not None else os.getpid(),
            budget=int(stored_budget) if stored_budget is not None else None,
        )
    store.close()
    return ran, interrupted, target
