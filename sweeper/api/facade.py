"""The Python API: tune a learning-rate schedule from a notebook or a script.

A :class:`Study` is a study file in Python: built from keywords (``Study(model, data, ...)``,
one keyword for every setting of the study file) or read from a file (``Study.from_file``), it
holds the validated :class:`~sweeper.studyfile.config.StudySpec` and the TOML text that identifies it
(``to_toml()``). ``Study.tune`` and :func:`tune` run it through :func:`sweeper.search.runner.tune`, the
function behind ``sweeper tune``: the same store, resume, baselines, pruning, budgets and
workers. A second call with the same arguments resumes the study and runs only what is missing.

In-memory data: NumPy arrays are written once to an ``.npz`` file named by their content (under
``data_dir``, by default ``~/.cache/sweeper/data``) and the study's ``[data]`` points at it with
``dataset = "npz"``, so they are split exactly as a file would be and the study's hash names the
data. A model function is named in the study by its import path (``module:function``) when it
has one; a function of a notebook or a script has none, so it is named
``__in_process__:NAME`` and built by calling the function itself, in this process only: several
workers, or a study file for later, need the function in a module.

Keras is imported only when a study trains; reading results (``trials``, ``plot``, ``report``,
``importance``) never imports it.

The pieces live beside this module: :mod:`sweeper.api.study` (:class:`Study`),
:mod:`sweeper.api.results` (:class:`TuneResult`), :mod:`sweeper.api.settings` (keywords as
study-file settings), :mod:`sweeper.api.data` (in-memory data), :mod:`sweeper.api.study_text` (the
TOML text) and :mod:`sweeper.api.run_context` (console, figures); this module holds the entry points.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sweeper.api.progress import Progress
from sweeper.api.results import TuneResult
from sweeper.api.run_context import console
from sweeper.api.settings import Data, Model, keywords_checked
from sweeper.api.study import Study
from sweeper.search.run_options import RunOptions
from sweeper.studyfile.study_spec import StudySpec

__all__ = ["WorkerRun", "join", "join_with", "load", "same_definition", "tune"]


# --------------------------------------------------------------------------------------------
# The entry points
# --------------------------------------------------------------------------------------------


def load(study_name: str, storage: str | None = None) -> TuneResult:
    """The results of a study already in the store (tuned by the API or by ``sweeper tune``).

    ``storage`` defaults to ``$SWEEPER_STORAGE``, else ``sqlite:///sweeper.db`` here. Raises
    :class:`~sweeper.errors.SweeperError` when the store or the study does not exist.
    """
    from sweeper.analysis import queries as an
    from sweeper.store.storage_url import resolve_url

    url = resolve_url(storage)
    an.load(url, study_name)
    return TuneResult(study_name, url)


@dataclass(frozen=True)
class WorkerRun:
    """What :func:`join` did: trials run by this worker, whether it was stopped, the target."""

    ran: int
    interrupted: bool
    target: int


@keywords_checked
def join(
    study_name: str,
    *,
    storage: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    checkpoint_dir: str | None = None,
    artifacts: str | None = None,
    study_file: str | os.PathLike[str] | None = None,
    trust_store: bool = False,
    progress: Progress | None = None,
    pack: int | None = None,
) -> WorkerRun:
    """Join a study already in the store as one more worker, as ``sweeper worker`` does, from
    any machine that reaches the store: trials run until it holds ``n_trials`` finished ones
    (default: the target it was started with) or ``timeout`` seconds have passed.

    The study's definition is read from the store; one that imports a user model runs only
    when ``study_file`` (or the stored source path here) holds the same definition, or with
    ``trust_store``.
    """
    return join_with(
        study_name,
        RunOptions(
            storage=storage,
            n_trials=n_trials,
            timeout=timeout,
            checkpoint_dir=checkpoint_dir,
            artifacts=artifacts,
            study_file=None if study_file is None else os.fspath(study_file),
            trust_store=trust_store,
            progress=progress,
            pack=pack,
        ),
    )


def join_with(study_name: str, options: RunOptions) -> WorkerRun:
    """:func:`join` with its options made already (and so checked): what ``sweeper worker``
    calls."""
    from sweeper.search.runner import join_study
    from sweeper.store.store import Store
    from sweeper.training.backend import quiet_environment

    quiet_environment()
    store = Store(options.storage)
    ran, interrupted, target = join_study(store, study_name, options)
    return WorkerRun(ran, interrupted, target)


@keywords_checked
def tune(
    model: Model,
    data: Data,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    n_trials: int | None = None,
    budget_epochs: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    jit_compile: bool | str | None = None,
    pack: int | None = None,
    space: Mapping[str, Any] | None = None,
    sampler: str | Mapping[str, Any] | None = None,
    pruner: str | Mapping[str, Any] | None = None,
    baselines: Sequence[Mapping[str, Any]] | None = None,
    seed: int | None = None,
    metric: str | None = None,
    max_failure_rate: float | None = None,
    failure_window: int | None = None,
    data_path: str | os.PathLike[str] | None = None,
    subset: int | None = None,
    validation_fraction: float | None = None,
    test_fraction: float | None = None,
    data_seed: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    workers: int = 1,
    workers_per_gpu: int = 1,
    allow_changed: bool = False,
    checkpoint_dir: str | None = None,
    artifacts: str | None = None,
    progress: bool | Progress | None = True,
) -> TuneResult:
    """Find the best learning-rate schedule for ``model`` on ``data``; the study is stored, and
    calling again with the same arguments resumes it (only what is missing runs).

    Every setting of a study file is a keyword (README, "Study file reference"); one left out
    (None) takes the study file's default. This runs ``Study(model, data, ...).tune(...)``,
    which runs :func:`sweeper.search.runner.tune` like ``sweeper tune``. A bad setting raises
    :class:`~sweeper.errors.SweeperError` (one line) before anything is stored; Ctrl-C or
    Kernel → Interrupt stops after the batch in progress, puts the running trial back in the
    queue and raises ``KeyboardInterrupt``: call again to resume.

    Args:
        model: the network: a built-in name (``"mnist-cnn"``, ``"fashion-cnn"``,
            ``"cifar-cnn"``), ``"module:function"``, or a function ``build(input_shape,
            num_classes) -> keras.Model`` ending in a softmax. A function of a notebook or
            script runs in this process only (``workers=1``).
        data: a dataset name (``"digits"``, ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``,
            ``"idx"``, ``"npz"``), an ``.npz`` path, or NumPy arrays: ``(x, y)`` (images
            ``(N, H, W[, C])`` uint8 or floats in [0, 1], labels class indices (one-hot rows
            are turned into class indices, with a notice); a test split is
            carved by ``test_fraction``), ``((x, y), (x_test, y_test))`` (the second pair is the
            held-out test split, as Keras's ``load_data()`` returns it), a mapping with those
            ``.npz`` keys, or a ``keras.utils.PyDataset`` of ``(images, labels)`` batches (or
            a pair of them, training and test), read once into arrays. Validation is carved
            from the training data by ``validation_fraction``. Arrays are stored once as
            ``.npz`` under ``data_dir``.
        storage: SQLAlchemy URL of the store [default: ``$SWEEPER_STORAGE`` or
            ``sqlite:///sweeper.db`` in the working directory].
        study_name: the study's name in the store ([study] name) [default: the model's and
            the data's names, e.g. ``"build-arrays"``].
        n_trials: run until the study holds this many finished trials (like ``--n-trials``:
            not part of the study's identity, so a larger number extends it) [default: 20].
        budget_epochs: stop once this many epochs were trained for the study in all (like
            ``--budget-epochs``).
        epochs: epochs per trial ([train] epochs) [default: 5].
        batch_size: [train] batch_size [default: 64].
        jit_compile: [train] jit_compile: ``"auto"``, True or False [default: "auto"].
        pack: [train] pack: trials each worker trains at once, as copies of the network in one
            model [default: 1]; ``Study.tune(pack=K)`` and ``sweeper tune --pack K`` run a study
            with another pack without changing it.
        space: the [space] section: ``{"schedules": ["constant", "cosine"], "initial_lr":
            (1e-3, 0.3, "log"), "decay_rate": (0.1, 0.9), "drop_every": [1, 2, 3],
            "staircase": True}``; a tuple ``(low, high[, "log"][, "int"])`` is a range, a list
            the choices, a plain value pins the dimension, and the study-file forms
            (``{"low": ..., "high": ..., "log": True}``, ``"auto"``) work too [default: every
            family, the README's default ranges].
        sampler: [sampler]: a type (``"tpe"``, ``"random"``, ``"grid"``) or a mapping such as
            ``{"type": "tpe", "n_startup_trials": 10}`` [default: tpe].
        pruner: [pruner]: a type (``"asha"``, ``"median"``, ``"successive_halving"``,
            ``"hyperband"``, ``"none"``) or a mapping with ``type``, ``min_resource``,
            ``reduction_factor``, ``brackets``, ``n_startup_trials``, ``n_warmup_steps``,
            ``stall_factor`` [default: asha].
        baselines: the [[baselines]] tables, run first: a list of mappings such as
            ``{"name": "constant 0.01", "schedule": "constant", "initial_lr": 0.01}``.
        seed: [study] seed, for the sampler and training [default: 0].
        metric: [study] metric, the only one so far [default: "val_accuracy"].
        max_failure_rate: [study] max_failure_rate: stop when more than this share of the last
            ``failure_window`` trials failed [default: 0.5].
        failure_window: [study] failure_window [default: 10].
        data_path: [data] path: the offline files of a named dataset (relative to the working
            directory).
        subset: [data] subset: draw this many examples for train + validation.
        validation_fraction: [data] validation_fraction [default: 0.2].
        test_fraction: [data] test_fraction, for data without a test split [default: 0.2].
        data_seed: [data] seed of the splits [default: 0].
        data_dir: where arrays are written as ``.npz`` [default: ``$SWEEPER_DATA_DIR``, else
            ``~/.cache/sweeper/data``].
        timeout: start no new trial after this many seconds.
        workers: worker processes sharing the study (like ``--workers``); more than one needs
            a model that worker processes can import (a name, or a function of a module).
        workers_per_gpu: workers packed onto each GPU.
        allow_changed: continue a stored study of the same name whose settings differ.
        checkpoint_dir: where trials keep their per-epoch checkpoints [default:
            ``$SWEEPER_CHECKPOINTS`` or ``./sweeper-checkpoints``].
        artifacts: a store every worker shares for checkpoints, ``file:///shared/folder`` or
            ``s3://bucket/prefix`` (like ``--artifacts``) [default: ``$SWEEPER_ARTIFACTS``,
            else the study file's ``[study] artifacts``, else none].
        progress: True: an HTML block updated in place in a Jupyter notebook, one line per trial elsewhere;
            False: quiet; or a function called with each :class:`~sweeper.search.outcomes.TrialEvent`.

    Returns:
        A :class:`TuneResult`: ``best``, ``trials``, ``importance()``, ``plot(kind)``,
        ``report(path)``, ``evaluate()``.
    """
    # the data's notices (one-hot labels converted) shown as the run's lines are
    with console(progress is not False and progress is not None):
        study = Study(
            model,
            data,
            name=study_name,
            seed=seed,
            metric=metric,
            max_failure_rate=max_failure_rate,
            failure_window=failure_window,
            data_path=data_path,
            subset=subset,
            validation_fraction=validation_fraction,
            test_fraction=test_fraction,
            data_seed=data_seed,
            batch_size=batch_size,
            epochs=epochs,
            jit_compile=jit_compile,
            pack=pack,
            space=space,
            sampler=sampler,
            pruner=pruner,
            baselines=baselines,
            data_dir=data_dir,
        )
    return study.tune(
        storage=storage,
        n_trials=n_trials,
        budget_epochs=budget_epochs,
        timeout=timeout,
        workers=workers,
        workers_per_gpu=workers_per_gpu,
        allow_changed=allow_changed,
        checkpoint_dir=checkpoint_dir,
        artifacts=artifacts,
        progress=progress,
    )


def same_definition(a: StudySpec, b: StudySpec) -> bool:
    """Whether two specs define the same study, whatever their text, source and overrides
    (a study file and the TOML that :meth:`Study.to_toml` renders from its settings)."""
    return dataclasses.replace(a, text="", source="", overrides=()) == dataclasses.replace(
        b, text="", source="", overrides=()
    )
