"""One trial: train a model under one schedule and optimizer, epoch by epoch.

Keras 3 API only (``keras``, ``keras.ops``, ``keras.callbacks``), so the same code runs under the
TensorFlow, JAX and PyTorch backends. Keras is imported inside the functions, never at module
import time.

How a training run ends is decided here (the worker maps it onto the Optuna trial):

* every epoch ends with an :class:`EpochRecord` handed to ``on_epoch`` (the store writes it at
  once, so an interrupted trial keeps the epochs it finished);
* a non-finite loss ends the trial as ``DIVERGED`` with a reason such as
  ``"diverged at epoch 2, lr=0.5"`` instead of raising;
* with an Optuna trial, validation accuracy is reported after every epoch and the pruner may stop
  the trial: ``optuna.TrialPruned`` propagates to the caller, after the epoch was recorded;
* a ``decide`` hook may end training after an epoch, as ``PAUSED`` (its checkpoint kept, so a
  later run continues it: see :mod:`sweeper.search.promotion`) or ``STALLED`` (it learns nothing);
* a run that completes hands its trained model to ``on_complete`` (the study keeps the best one:
  :mod:`sweeper.search.best_model`);
* with a backup folder, every epoch but the last is checkpointed, atomically and with a manifest
  (:mod:`sweeper.training.checkpoints`), and the checkpoint is kept however the run ends: the
  caller removes it once the outcome is stored.
"""

from __future__ import annotations

import enum
import gc
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.interrupts import INTERRUPTS
from sweeper.training import checkpoints
from sweeper.training.backend import load_keras
from sweeper.training.checkpoints import Checkpoint
from sweeper.training.optimizers import OptimizerSpec

if TYPE_CHECKING:
    import optuna

    from sweeper.training.data import Dataset
    from sweeper.training.schedule_base import Schedule

log = logging.getLogger(__name__)

MONITOR = "val_accuracy"


class TrialStatus(enum.StrEnum):
    COMPLETE = "complete"
    DIVERGED = "diverged"
    PAUSED = "paused"  # stopped after an epoch with its checkpoint kept, to be continued
    STALLED = "stalled"  # stopped after an epoch because it learns nothing


# what a ``decide`` hook answers after an epoch: None (go on) or (PAUSED | STALLED, reason)
Decision = tuple[TrialStatus, str] | None


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 0-based
    step: int  # optimizer updates done at the end of the epoch
    lr: float  # rate applied in the epoch's last update
    loss: float
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrialResult:
    status: TrialStatus
    records: list[EpochRecord] = field(default_factory=list)
    reason: str | None = None
    seconds: float = 0.0

    @property
    def first_epoch(self) -> int:
        """The epoch training started at (> 0 when it resumed from a checkpoint)."""
        return self.records[0].epoch if self.records else 0

    @property
    def value(self) -> float | None:
        """The trial's objective: validation accuracy after the last epoch (None if diverged)."""
        if self.status is not TrialStatus.COMPLETE or not self.records:
            return None
        return self.records[-1].val_accuracy


@dataclass(frozen=True)
class TrainSettings:
    model: str = "mnist-cnn"
    batch_size: int = 64
    epochs: int = 5
    seed: int = 0
    # "auto" is Keras's own choice, the fastest measured on CPU for every backend
    # (docs/benchmarks.md): TensorFlow XLA only with a GPU, JAX jit, PyTorch eager
    jit_compile: bool | str = "auto"
    # where a user model ("module:function") is looked up first: the study file's folder
    model_dir: str | None = None
    # trials a worker trains at once, as copies of the network in one model (sweeper.training.packing)
    pack: int = 1


class _Diverged(Exception):
    def __init__(self, epoch: int, lr: float) -> None:
        super().__init__(f"diverged at epoch {epoch + 1}, lr={lr:.4g}")


# every this many resets, the frozen heap is collected too (see reset_keras)
FULL_COLLECT_EVERY = 50
_resets = 0


def reset_keras(seed: int | None = None) -> None:
    """Start a run from a clean Keras state (so memory does not grow from run to run).

    Clears the Keras session, collects garbage, then freezes what survived (``gc.freeze``), so
    that the next collection walks only what was created since: the previous run's model and
    graph, a few milliseconds. Without re-freezing, each run's long-lived leftovers (a few
    thousand objects of Keras and TensorFlow per run) would be walked again by every later
    collection, a cost growing with the number of runs in the process (~100 ms per trial after
    some 50 trials of the seed CNN). Every ``FULL_COLLECT_EVERY`` resets, the frozen objects are
    collected as well, so cycles that died after being frozen are freed too.
    """
    global _resets
    load_keras()
    import keras

    keras.backend.clear_session()
    if _resets % FULL_COLLECT_EVERY == 0:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    _resets += 1
    if seed is not None:
        keras.utils.set_random_seed(seed)


def steps_per_epoch(n_examples: int, batch_size: int) -> int:
    """Optimizer updates per epoch, as ``model.fit`` does them (the last batch may be short)."""
    return max(1, math.ceil(n_examples / batch_size))


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _make_recorder(
    keras: Any,
    schedule_obj: Any,
    on_epoch: Callable[[EpochRecord], None] | None,
    records: list[EpochRecord],
) -> Any:
    class EpochRecorder(keras.callbacks.Callback):
        """Records each epoch, then stops a diverged run before any pruner sees its NaN.

        A stop requested by Ctrl-C (see sweeper.interrupts) is raised when training begins and
        when an epoch ends, before that epoch is recorded, backed up or shown to the pruner: an
        epoch cut short by the stop (``fit`` still validates and ends it) counts for nothing.
        """

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            INTERRUPTS.check()

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            INTERRUPTS.check()
            logs = logs or {}
            opt = self.model.optimizer
            step = int(keras.ops.convert_to_numpy(opt.iterations))
            if callable(schedule_obj):
                lr = float(keras.ops.convert_to_numpy(schedule_obj(max(step - 1, 0))))
            else:
                lr = float(keras.ops.convert_to_numpy(opt.learning_rate))
            loss = float(logs.get("loss", math.nan))
            record = EpochRecord(
                epoch=epoch,
                step=step,
                lr=lr,
                loss=loss,
                accuracy=_finite_or_none(logs.get("accuracy")),
                val_loss=_finite_or_none(logs.get("val_loss")),
                val_accuracy=_finite_or_none(logs.get("val_accuracy")),
                seconds=time.perf_counter() - self._start,
            )
            records.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if not math.isfinite(loss):
                raise _Diverged(epoch, lr)

    return EpochRecorder()


def _make_backup(keras: Any, backup: Checkpoint) -> Any:
    class TrialBackup(keras.callbacks.BackupAndRestore):
        """Keras's ``BackupAndRestore``, its files written atomically with a manifest and
        verified before they are read (:mod:`sweeper.training.checkpoints`); at each epoch end
        except after the final epoch, and never removed here.

        A backup of the final epoch would only matter if the run stopped between that backup and
        the end of training; resuming from it would then train no epoch at all and leave the
        trial without a result. Without it, such a run trains its final epoch again. The caller
        removes the checkpoint once the run's outcome is stored (:func:`checkpoints.remove`).
        """

        # Saving by epoch needs no per-batch hook. Keras's own one (it counts batches for
        # save_freq=N) would make ``fit`` under JAX and PyTorch, whose batch-end hooks run
        # asynchronously only when no callback overrides them, wait for every batch's results.
        on_train_batch_end = keras.callbacks.Callback.on_train_batch_end

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            checkpoints.recover(backup)  # what Keras then reads verifies, or is set aside
            super().on_train_begin(logs)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if epoch + 1 < int(self.params.get("epochs", epoch + 2)):
                checkpoints.save(
                    backup,
                    lambda path: self.model.save_weights(str(path), overwrite=True),
                    epoch + 1,
                    checkpoints.state_bytes(self.model),
                )

    return TrialBackup(
        str(backup.folder), save_freq="epoch", delete_checkpoint=False, double_checkpoint=True
    )


def _make_decider(
    keras: Any,
    decide: Callable[[EpochRecord], Decision],
    records: list[EpochRecord],
    outcome: list[tuple[TrialStatus, str]],
) -> Any:
    class Decider(keras.callbacks.Callback):
        """Asks ``decide`` after each recorded (and backed-up) epoch whether to stop there."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if not records or records[-1].epoch != epoch:
                return
            decision = decide(records[-1])
            if decision is None:
                return
            outcome.append(decision)
            self.model.stop_training = True

    return Decider()


def run_trial(
    dataset: Dataset,
    schedule: Schedule,
    optimizer: OptimizerSpec | None = None,
    settings: TrainSettings | None = None,
    *,
    trial: optuna.Trial | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    backup_dir: str | Path | Checkpoint | None = None,
    decide: Callable[[EpochRecord], Decision] | None = None,
    on_complete: Callable[[Any], None] | None = None,
    verbose: int = 0,
) -> TrialResult:
    """Train ``settings.model`` on ``dataset`` with ``schedule`` and return the outcome.

    Keras state is cleared first, so memory does not grow from trial to trial, and the run is
    seeded by ``settings.seed``. Raises ``optuna.TrialPruned`` when ``trial``'s pruner stops it.

    With ``backup_dir`` (a folder, or a :class:`~sweeper.training.checkpoints.Checkpoint` naming
    the trial and configuration its manifest records), the training state (weights, optimizer
    state, epoch) is saved there at every epoch end but the last (Keras ``BackupAndRestore``'s
    files, written atomically with a manifest); a run started again with the same directory
    resumes after the last saved epoch that verifies (what does not verify is set aside:
    :func:`~sweeper.training.checkpoints.recover`). The directory is kept however training ends:
    the caller removes it (:func:`~sweeper.training.checkpoints.remove`) once the outcome is
    stored, so a process killed before that resumes from it.

    ``decide`` is asked after every epoch (recorded, backed up and shown to the pruner) whether
    to stop there; the result then has the status it answered and its reason.

    ``on_complete`` is called with the trained ``keras.Model`` (compiled, its optimizer's state
    with it) when training completes, neither diverged, paused, stalled, pruned nor interrupted.
    A schedule-free optimizer's model stands at its averaged point x then (``fit`` ends with the
    optimizer's ``finalize_variable_values``), the point its last validation was taken at. What
    ``on_complete`` raises propagates.
    """
    load_keras()
    import keras

    from sweeper.training.models import build_model

    optimizer = optimizer or OptimizerSpec()
    settings = settings or TrainSettings()
    reset_keras(settings.seed)

    model = build_model(
        settings.model, dataset.input_shape, dataset.num_classes, settings.model_dir
    )
    schedule_obj = schedule.keras()
    total_steps = settings.epochs * steps_per_epoch(len(dataset.x_train), settings.batch_size)
    model.compile(
        optimizer=optimizer.build(schedule_obj, total_steps=total_steps),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=settings.jit_compile,
    )
    records: list[EpochRecord] = []
    outcome: list[tuple[TrialStatus, str]] = []
    callbacks = _callbacks(
        keras, optimizer, schedule_obj, records, outcome, trial, on_epoch, backup_dir, decide
    )

    def stop() -> None:  # called by the signal handler: fit ends after the batch in progress
        model.stop_training = True

    start = time.perf_counter()
    try:
        with INTERRUPTS.on_stop(stop):
            model.fit(
                dataset.x_train,
                dataset.y_train,
                batch_size=settings.batch_size,
                epochs=settings.epochs,
                validation_data=(dataset.x_val, dataset.y_val),
                callbacks=callbacks,
                shuffle=True,
                verbose=verbose,
            )
        INTERRUPTS.check()
    except _Diverged as exc:
        log.info("trial %s", exc)
        return TrialResult(
            TrialStatus.DIVERGED, records, reason=str(exc), seconds=time.perf_counter() - start
        )
    seconds = time.perf_counter() - start
    if outcome:
        return TrialResult(outcome[0][0], records, reason=outcome[0][1], seconds=seconds)
    if on_complete is not None:
        on_complete(model)
    return TrialResult(TrialStatus.COMPLETE, records, seconds=seconds)


def _callbacks(
    keras: Any,
    optimizer: OptimizerSpec,
    schedule_obj: Any,
    records: list[EpochRecord],
    outcome: list[tuple[TrialStatus, str]],
    trial: optuna.Trial | None,
    on_epoch: Callable[[EpochRecord], None] | None,
    backup_dir: str | Path | Checkpoint | None,
    decide: Callable[[EpochRecord], Decision] | None,
) -> list[Any]:
    """``fit``'s callbacks for a trial. Order matters: record the epoch, then back it up, then
    let the pruner decide (a schedule-free optimizer's callback, first, only swaps its averaged
    point in for validation)."""
    callbacks = [*optimizer.callbacks(), _make_recorder(keras, schedule_obj, on_epoch, records)]
    if backup_dir is not None:
        callbacks.append(_make_backup(keras, checkpoints.Checkpoint.at(backup_dir)))
    if trial is not None:
        from optuna_integration import KerasPruningCallback

        callbacks.append(KerasPruningCallback(trial, MONITOR))
    if decide is not None:
        callbacks.append(_make_decider(keras, decide, records, outcome))
    return callbacks


def environment() -> dict[str, Any]:
    """Package versions, Keras backend and devices of this process (imports Keras)."""
    import platform
    from importlib import metadata

    info = load_keras()
    versions: dict[str, str] = {}
    for package in ("keras", "tensorflow", "jax", "torch", "optuna", "sqlalchemy", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "keras_backend": info.backend,
        "devices": list(info.devices),
    }
