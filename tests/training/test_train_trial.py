"""Tests for sweeper.training.train_trial: real (small) Keras training runs, no mocks."""

from __future__ import annotations

import ast
import gc
import json
import math
import platform
import weakref
from pathlib import Path

import numpy as np
import optuna
import pytest

from sweeper.training import train_trial as training
from sweeper.training.data import Dataset, DataSpec, load_dataset
from sweeper.training.families.constant import Constant
from sweeper.training.families.exponential import Exponential
from sweeper.training.families.piecewise import Piecewise
from sweeper.training.families.step import StepDecay
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.schedule_base import Schedule
from sweeper.training.train_trial import (
    EpochRecord,
    TrainSettings,
    TrialResult,
    TrialStatus,
    environment,
    run_trial,
    steps_per_epoch,
)

ROOT = Path(__file__).resolve().parents[2]
MNIST_T10K = ROOT / "studies" / "data" / "mnist-t10k"
BATCH = 64
# Chance on ten balanced classes is 0.1; two epochs of fashion-cnn on 1,600 MNIST images reach
# about 0.8 on the 400 validation images (0.80 to 0.87 over seeds 0-2), so 0.6 leaves a margin.
MNIST_VAL_ACCURACY_BAR = 0.6


@pytest.fixture(autouse=True)
def _seeded() -> None:
    np.random.seed(0)


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_dataset(DataSpec("mnist", path=str(MNIST_T10K), subset=2000, seed=0))


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset(DataSpec("digits", seed=0))


@pytest.fixture(scope="module")
def small_digits() -> Dataset:
    return load_dataset(DataSpec("digits", subset=400, seed=0))


def _settings(model: str = "mnist-cnn", epochs: int = 1, seed: int = 0) -> TrainSettings:
    return TrainSettings(model=model, batch_size=BATCH, epochs=epochs, seed=seed)


def _check_records(records: list[EpochRecord], schedule: Schedule, spe: int, epochs: int) -> None:
    assert [r.epoch for r in records] == list(range(epochs))
    for r in records:
        assert r.step == (r.epoch + 1) * spe
        assert r.lr == pytest.approx(schedule.lr_at(r.step - 1), rel=1e-6)
        assert math.isfinite(r.loss)
        assert r.val_loss is not None and math.isfinite(r.val_loss)
        assert r.accuracy is not None and 0.0 <= r.accuracy <= 1.0
        assert r.val_accuracy is not None and 0.0 <= r.val_accuracy <= 1.0
        assert r.seconds > 0


# --------------------------------------------------------------------------------------------
# A real run on MNIST
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_fashion_cnn_learns_mnist_under_exponential_decay(mnist: Dataset) -> None:
    spe = steps_per_epoch(len(mnist.y_train), BATCH)
    assert spe == math.ceil(len(mnist.y_train) / BATCH)
    schedule = Exponential(0.05, decay_steps=spe, decay_rate=0.7)
    seen: list[EpochRecord] = []

    result = run_trial(
        mnist,
        schedule,
        optimizer=OptimizerSpec("sgd"),
        settings=_settings("fashion-cnn", epochs=2),
        on_epoch=seen.append,
    )

    assert isinstance(result, TrialResult)
    assert result.status is TrialStatus.COMPLETE
    assert result.reason is None
    assert result.seconds > 0
    assert len(result.records) == 2
    _check_records(result.records, schedule, spe, epochs=2)
    # The schedule decays: the last update of epoch 1 uses a smaller rate than that of epoch 0.
    assert result.records[1].lr < result.records[0].lr < schedule.initial_lr
    assert result.value == result.records[-1].val_accuracy
    assert result.value is not None
    assert result.value >= MNIST_VAL_ACCURACY_BAR, result.records
    assert result.records[1].loss < result.records[0].loss
    assert seen == result.records
    assert [r.to_dict() for r in seen] == [r.to_dict() for r in result.records]


def test_steps_per_epoch_counts_the_short_last_batch() -> None:
    assert steps_per_epoch(1600, 64) == 25
    assert steps_per_epoch(1601, 64) == 26
    assert steps_per_epoch(10, 64) == 1
    assert steps_per_epoch(0, 64) == 1


# --------------------------------------------------------------------------------------------
# Divergence, repeatability, pruning
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_huge_constant_rate_diverges_without_raising(digits: Dataset) -> None:
    # 1e20 makes the loss non-finite under every backend; at 1e8 TensorFlow's loss is already NaN
    # while JAX's and PyTorch's saturate near 14 (a dead network, but a finite loss)
    seen: list[EpochRecord] = []
    result = run_trial(
        digits,
        Constant(1e20),
        optimizer=OptimizerSpec("sgd"),
        settings=_settings("mnist-cnn", epochs=2),
        on_epoch=seen.append,
    )

    assert result.status is TrialStatus.DIVERGED
    assert result.reason is not None
    assert result.reason.startswith("diverged at epoch 1, lr="), result.reason
    assert float(result.reason.split("lr=", 1)[1]) == pytest.approx(1e20)
    assert result.value is None
    # The diverged epoch is recorded (and handed to on_epoch) and training stops there.
    assert len(result.records) == 1
    record = result.records[0]
    assert record.epoch == 0
    assert not math.isfinite(record.loss)
    assert record.lr == pytest.approx(1e20)
    assert record.step == steps_per_epoch(len(digits.y_train), BATCH)
    assert seen == result.records


@pytest.mark.slow
def test_same_seed_gives_same_result(digits: Dataset) -> None:
    schedule = Constant(0.05)
    runs = [
        run_trial(digits, schedule, settings=_settings("mnist-cnn", seed=seed))
        for seed in (3, 3, 4)
    ]
    first, again, other = (run.records[0] for run in runs)
    assert all(run.status is TrialStatus.COMPLETE for run in runs)
    assert again.val_accuracy == first.val_accuracy
    assert again.loss == pytest.approx(first.loss, rel=1e-5)
    assert again.val_loss == pytest.approx(first.val_loss, rel=1e-5)
    # The seed matters: another seed starts from other weights and ends with another loss.
    assert other.loss != pytest.approx(first.loss, rel=1e-5)


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


@pytest.mark.slow
def test_pruner_stops_trial_after_the_epoch_was_recorded(small_digits: Dataset) -> None:
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune())
    trial = study.ask()
    seen: list[EpochRecord] = []

    with pytest.raises(optuna.TrialPruned):
        run_trial(
            small_digits,
            Constant(0.05),
            settings=_settings("mnist-cnn", epochs=2),
            trial=trial,
            on_epoch=seen.append,
        )

    assert len(seen) == 1
    assert seen[0].epoch == 0
    assert seen[0].val_accuracy is not None
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    frozen = study.trials[0]
    assert frozen.state is optuna.trial.TrialState.PRUNED
    assert frozen.intermediate_values == {0: pytest.approx(seen[0].val_accuracy)}


@pytest.mark.slow
def test_trial_that_is_not_pruned_reports_every_epoch(small_digits: Dataset) -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    result = run_trial(
        small_digits, Constant(0.05), settings=_settings("mnist-cnn", epochs=2), trial=trial
    )
    assert result.status is TrialStatus.COMPLETE
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {
        r.epoch: pytest.approx(r.val_accuracy) for r in result.records
    }


class _StopAt(Exception):
    """Raised by ``_StoppingTrial`` to cut a run short after the pruner's turn at an epoch."""


class _StoppingTrial:
    """Stands in for an Optuna trial; raises when the pruning callback reports epoch ``stop``,
    which is after the epoch was recorded and (if it is backed up at all) backed up."""

    def __init__(self, stop: int) -> None:
        self.stop = stop

    def report(self, value: float, step: int) -> None:
        if step == self.stop:
            raise _StopAt(step)

    def should_prune(self) -> bool:
        return False


def _resume_epoch(backup: Path) -> int | None:
    meta = backup / "training_metadata.json"
    return int(json.loads(meta.read_text())["epoch"]) if meta.exists() else None


def _cut_short_after_epoch(
    epoch: int, dataset: Dataset, settings: TrainSettings, backup: Path
) -> list[EpochRecord]:
    """Run a backed-up trial that stops after ``epoch`` was recorded; the epochs it recorded."""
    seen: list[EpochRecord] = []
    with pytest.raises(_StopAt):
        run_trial(
            dataset,
            Constant(0.05),
            settings=settings,
            trial=_StoppingTrial(epoch),  # type: ignore[arg-type]
            on_epoch=seen.append,
            backup_dir=str(backup),
        )
    return seen


@pytest.mark.slow
def test_run_cut_short_resumes_from_its_backup(small_digits: Dataset, tmp_path: Path) -> None:
    backup, settings = tmp_path / "backup", _settings("mnist-cnn", epochs=3)
    seen = _cut_short_after_epoch(1, small_digits, settings, backup)
    assert [r.epoch for r in seen] == [0, 1]
    assert _resume_epoch(backup) == 2

    result = run_trial(small_digits, Constant(0.05), settings=settings, backup_dir=str(backup))
    assert [r.epoch for r in result.records] == [2]
    assert result.records[0].step == 3 * seen[0].step  # optimizer state came back too
    assert result.value is not None
    # kept until the caller has stored the outcome (sweeper.search.attempt.discard_checkpoint)
    assert _resume_epoch(backup) == 2


@pytest.mark.slow
def test_run_cut_short_after_its_final_epoch_trains_that_epoch_again(
    small_digits: Dataset, tmp_path: Path
) -> None:
    # Stopped after the final epoch was recorded, before training ended: no backup of the final
    # epoch exists, so the rerun trains it again (a backup of it would leave nothing to train
    # and the trial without a result).
    backup, settings = tmp_path / "backup", _settings("mnist-cnn", epochs=2)
    seen = _cut_short_after_epoch(1, small_digits, settings, backup)
    assert [r.epoch for r in seen] == [0, 1]
    assert _resume_epoch(backup) == 1

    result = run_trial(small_digits, Constant(0.05), settings=settings, backup_dir=str(backup))
    assert result.status is TrialStatus.COMPLETE
    assert [r.epoch for r in result.records] == [1]
    assert result.value == result.records[-1].val_accuracy
    assert _resume_epoch(backup) == 1  # the final epoch is never backed up


def test_reset_collects_frozen_cycles_at_every_full_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # reset_keras freezes what survives each collection; a cycle frozen while alive is freed by
    # the next full collection (every FULL_COLLECT_EVERY resets), not before.
    monkeypatch.setattr(training, "FULL_COLLECT_EVERY", 3)
    monkeypatch.setattr(training, "_resets", 1)

    class Node:
        other: Node | None = None

    node = Node()
    node.other = node
    alive = weakref.ref(node)
    training.reset_keras()  # reset 1: node is alive, and frozen
    del node
    training.reset_keras()  # reset 2: only the unfrozen part is collected
    assert alive() is not None
    training.reset_keras()  # reset 3: a full collection
    assert alive() is None
    assert gc.get_freeze_count() > 0


# --------------------------------------------------------------------------------------------
# Optimizers and schedule families
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("optimizer", "lr"),
    [
        (OptimizerSpec("sgd", momentum=0.9, nesterov=True), 0.02),
        (OptimizerSpec("adam"), 1e-3),
        (OptimizerSpec("rmsprop"), 1e-3),
        (OptimizerSpec("adagrad"), 0.05),
        (OptimizerSpec("adadelta"), 1.0),
    ],
    ids=lambda v: v.describe() if isinstance(v, OptimizerSpec) else None,
)
def test_each_optimizer_trains(small_digits: Dataset, optimizer: OptimizerSpec, lr: float) -> None:
    schedule = Constant(lr)
    result = run_trial(small_digits, schedule, optimizer=optimizer, settings=_settings())
    assert result.status is TrialStatus.COMPLETE, result.reason
    spe = steps_per_epoch(len(small_digits.y_train), BATCH)
    _check_records(result.records, schedule, spe, epochs=1)
    assert result.records[0].lr == pytest.approx(lr, rel=1e-6)


@pytest.mark.slow
def test_step_decay_lr_follows_lr_at(small_digits: Dataset) -> None:
    spe = steps_per_epoch(len(small_digits.y_train), BATCH)
    schedule = StepDecay(0.1, decay_rate=0.5, drop_every=1.0, steps_per_epoch=spe)
    result = run_trial(small_digits, schedule, settings=_settings(epochs=2))
    assert result.status is TrialStatus.COMPLETE, result.reason
    _check_records(result.records, schedule, spe, epochs=2)
    # lr0 * 0.5 ** floor((1 + epoch) / 1): halved in epoch 0 already, quartered in epoch 1.
    assert [r.lr for r in result.records] == pytest.approx([0.05, 0.025], rel=1e-6)


@pytest.mark.slow
def test_piecewise_lr_follows_lr_at(small_digits: Dataset) -> None:
    spe = steps_per_epoch(len(small_digits.y_train), BATCH)
    assert spe > 2
    # values[0] holds up to and including the first boundary, the last update of epoch 0.
    schedule = Piecewise(0.05, boundaries=(spe - 1, spe + 1), values=(0.05, 0.02, 0.01))
    result = run_trial(small_digits, schedule, settings=_settings(epochs=2))
    assert result.status is TrialStatus.COMPLETE, result.reason
    _check_records(result.records, schedule, spe, epochs=2)
    assert [r.lr for r in result.records] == pytest.approx([0.05, 0.01], rel=1e-6)


# --------------------------------------------------------------------------------------------
# Memory across trials
# --------------------------------------------------------------------------------------------


def _live_keras_objects() -> tuple[int, int]:
    import keras

    gc.unfreeze()  # objects frozen by reset_keras are invisible to get_objects()
    gc.collect()
    objects = gc.get_objects()
    models = sum(1 for o in objects if isinstance(o, keras.Model))
    layers = sum(1 for o in objects if isinstance(o, keras.layers.Layer))
    return models, layers


def _rss_mib() -> float | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


@pytest.mark.slow
def test_trials_do_not_accumulate_models(small_digits: Dataset) -> None:
    # Counting live Keras models and layers after a full garbage collection is exact and does not
    # depend on the allocator: every trial builds a fresh model, so a trial that leaves its model
    # reachable (a global cache, a session that is not cleared) makes the count grow by one model
    # and its layers each time. Trial 1 may warm caches; trials 2..6 must leave the same count.
    # RSS is also checked, with a wide margin, to catch a gross leak outside Python objects.
    counts: list[tuple[int, int]] = []
    rss: list[float | None] = []
    for i in range(6):
        result = run_trial(small_digits, Constant(0.05), settings=_settings(seed=i))
        assert result.status is TrialStatus.COMPLETE
        del result
        counts.append(_live_keras_objects())
        rss.append(_rss_mib())
    assert counts[5] <= counts[1], counts
    assert counts[5][0] <= 1, counts
    if rss[1] is not None and rss[5] is not None:
        assert rss[5] - rss[1] < 200, rss


# --------------------------------------------------------------------------------------------
# Source checks: Keras 3 API only, lazy imports
# --------------------------------------------------------------------------------------------

TRAINING_PATH = (
    "training/train_trial.py",
    "training/models.py",
    "training/optimizers.py",
    "training/keras_schedules.py",
    "training/schedule_free.py",
    # the schedule families' Keras twins (their keras())
    *sorted(
        f"training/families/{p.name}" for p in (ROOT / "sweeper/training/families").glob("*.py")
    ),
)
TF_NAMES = {"tf", "tensorflow"}


def _tensorflow_references(source: str, *, skip_function: str | None = None) -> list[str]:
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == skip_function:
            skipped.update(id(n) for n in ast.walk(node))
    found: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in TF_NAMES
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in TF_NAMES:
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Name) and node.id in TF_NAMES:
            found.append(f"line {node.lineno}: {node.id}")
    return found


def test_tensorflow_reference_detector_can_fail() -> None:
    source = "import keras\n\ndef f():\n    import tensorflow as tf\n    return tf.constant(1)\n"
    assert len(_tensorflow_references(source)) == 2
    assert _tensorflow_references(source, skip_function="f") == []


@pytest.mark.parametrize("name", TRAINING_PATH)
def test_training_path_uses_keras_api_only(name: str) -> None:
    source = (ROOT / "sweeper" / name).read_text()
    assert _tensorflow_references(source) == []


def test_only_the_device_listing_names_tensorflow() -> None:
    source = (ROOT / "sweeper" / "training" / "backend.py").read_text()
    assert "def visible_devices(" in source
    assert _tensorflow_references(source, skip_function="visible_devices") == []


# --------------------------------------------------------------------------------------------
# Environment report
# --------------------------------------------------------------------------------------------


def test_environment_reports_versions_and_backend() -> None:
    import keras

    env = environment()
    assert env["python"] == platform.python_version()
    assert env["keras_backend"] == keras.config.backend()
    assert env["keras_backend"] in ("tensorflow", "jax", "torch")
    packages = env["packages"]
    assert packages["keras"] == keras.__version__
    assert packages["optuna"] == optuna.__version__
    assert packages["numpy"] == np.__version__
    assert all(isinstance(v, str) and v for v in packages.values())
    assert isinstance(env["platform"], str) and env["platform"]
    assert isinstance(env["devices"], list)
    assert all(isinstance(d, str) for d in env["devices"])
    json.dumps(env)
