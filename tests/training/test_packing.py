"""Packed trials (sweeper.training.packing): a trial trained in a pack is the same trial trained alone.

Real (small) Keras training on scikit-learn's digits, no mocks. The reference trains the copy's
network alone exactly as ``run_trial`` compiles it, on the same data order (``epoch_order``), one
``fit`` per epoch. Observed on TensorFlow 2.21 / Keras 3.15 on CPU: every loss, accuracy,
validation loss and accuracy, and every final weight, equal bit for bit; the tests allow float32
rounding (``TOLERANCE``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sweeper.errors import ConfigError
from sweeper.training.data import Dataset, DataSpec, load_dataset
from sweeper.training.families.constant import Constant
from sweeper.training.families.exponential import Exponential
from sweeper.training.families.step import StepDecay
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.pack_copies import build_copy, build_packed_model, epoch_order
from sweeper.training.pack_train import CopyStatus, train_packed
from sweeper.training.packing import Pack
from sweeper.training.schedule_base import Schedule
from sweeper.training.train_trial import (
    EpochRecord,
    TrainSettings,
    TrialStatus,
    reset_keras,
    steps_per_epoch,
)

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 2
BATCH = 64  # 1,079 training digits: 16 full batches and a short one of 55
TOLERANCE = {"rel": 1e-5, "abs": 1e-6}  # float32 rounding over two epochs; observed: 0
FIELDS = ("loss", "accuracy", "val_loss", "val_accuracy")

SGD = OptimizerSpec("sgd", momentum=0.9)
ADAM = OptimizerSpec("adam")
SPE = 17  # steps per epoch of the full digits' training split at batch 64
SCHEDULES: list[Schedule] = [
    Constant(0.05),
    Exponential(0.1, decay_steps=SPE, decay_rate=0.5),
    StepDecay(0.2, decay_rate=0.5, drop_every=1.0, steps_per_epoch=SPE),
    Exponential(0.02, decay_steps=5, decay_rate=0.8, staircase=True),
]
ADAM_SCHEDULES: list[Schedule] = [
    Constant(0.001),
    Exponential(0.005, decay_steps=SPE, decay_rate=0.5),
    Constant(0.01),
    StepDecay(0.003, decay_rate=0.5, drop_every=1.0, steps_per_epoch=SPE),
]
SEEDS = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset(DataSpec("digits", seed=0))


def _settings(seed: int = 0) -> TrainSettings:
    return TrainSettings(model="mnist-cnn", batch_size=BATCH, epochs=EPOCHS, seed=seed)


_alone_cache: dict[tuple[Any, ...], tuple[list[dict[str, float]], list[np.ndarray]]] = {}


def train_alone(
    dataset: Dataset,
    schedule: Schedule,
    spec: OptimizerSpec,
    seed: int,
    model: Any = "mnist-cnn",
    order_seed: int = 0,
    first_epoch: int = 0,
) -> tuple[list[dict[str, float]], list[np.ndarray]]:
    """The trial alone, as run_trial trains it, on the pack's data order: per-epoch logs (loss,
    accuracy, val_loss, val_accuracy, lr, step) and the final weights. ``model`` is a model name
    or a function ``(input_shape, num_classes) -> keras.Model``; ``first_epoch`` is the pack's
    epoch the trial joined in (its batches are those of the pack's epochs from there on)."""
    key = (dataset.name, len(dataset.y_train), schedule, spec, seed, model, order_seed, first_epoch)
    if key in _alone_cache:
        return _alone_cache[key]
    import keras

    from sweeper.training.models import build_model

    settings = _settings(seed)
    reset_keras(settings.seed)
    build = model if callable(model) else lambda shape, n: build_model(model, shape, n)
    net = build(dataset.input_shape, dataset.num_classes)
    learning_rate = schedule.keras()
    total = settings.epochs * steps_per_epoch(len(dataset.x_train), settings.batch_size)
    net.compile(
        optimizer=spec.build(learning_rate, total_steps=total),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=settings.jit_compile,
    )
    logs = []
    for epoch in range(settings.epochs):
        order = epoch_order(len(dataset.y_train), order_seed, first_epoch + epoch)
        history = net.fit(
            dataset.x_train[order],
            dataset.y_train[order],
            batch_size=settings.batch_size,
            epochs=1,
            validation_data=(dataset.x_val, dataset.y_val),
            callbacks=spec.callbacks(),
            shuffle=False,
            verbose=0,
        )
        entry = {k: float(v[-1]) for k, v in history.history.items()}
        step = int(keras.ops.convert_to_numpy(net.optimizer.iterations))
        entry["step"] = step
        rate = learning_rate(step - 1) if callable(learning_rate) else net.optimizer.learning_rate
        entry["lr"] = float(keras.ops.convert_to_numpy(rate))
        logs.append(entry)
    result = (logs, [np.array(w) for w in net.get_weights()])
    _alone_cache[key] = result
    return result


def _worst(records: list[EpochRecord], logs: list[dict[str, float]]) -> float:
    """The largest absolute difference between a copy's records and the trial alone."""
    return max(
        abs(getattr(r, f) - e[f]) for r, e in zip(records, logs, strict=True) for f in FIELDS
    )


def _assert_same(
    records: list[EpochRecord], logs: list[dict[str, float]], lr_rel: float = 1e-7
) -> None:
    assert len(records) == len(logs)
    for r, e in zip(records, logs, strict=True):
        for f in FIELDS:
            assert getattr(r, f) == pytest.approx(e[f], **TOLERANCE), (f, r, e)
        assert r.step == e["step"]
        assert r.lr == pytest.approx(e["lr"], rel=lr_rel)
        assert r.seconds > 0


def _assert_same_weights(copy_weights: list[Any], alone: list[np.ndarray]) -> None:
    assert len(copy_weights) == len(alone)
    for w, a in zip(copy_weights, alone, strict=True):
        np.testing.assert_allclose(np.asarray(w), a, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# A pack of 4 against 4 trials alone
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_pack_of_four_sgd_trials_trains_each_as_alone(digits: Dataset) -> None:
    seen: list[int] = []
    reset_keras(0)
    pack = Pack(digits, _settings())
    copies = [
        pack.add(schedule, SGD, seed=seed, index=k)
        for k, (schedule, seed) in enumerate(zip(SCHEDULES, SEEDS, strict=True))
    ]
    for _ in range(EPOCHS):
        seen += [copy.index for copy, _ in pack.train_epoch()]
    assert pack.compiles == 1
    assert seen == [0, 1, 2, 3] * EPOCHS

    worst = 0.0
    for k, copy in enumerate(copies):
        logs, weights = train_alone(digits, SCHEDULES[k], SGD, SEEDS[k])
        assert [r.epoch for r in copy.records] == list(range(EPOCHS))
        _assert_same(copy.records, logs)
        _assert_same_weights(copy.model.get_weights(), weights)
        worst = max(worst, _worst(copy.records, logs))
    assert worst <= 1e-5
    # the copies differ (different seeds and schedules): a mix-up would show
    assert len({copy.records[-1].loss for copy in copies}) == 4


@pytest.mark.slow
def test_a_pack_of_four_adam_trials_trains_each_as_alone_while_copies_stop(
    digits: Dataset,
) -> None:
    """Copy 1 is pruned after its first epoch (the pack is rebuilt of the three others, their
    weights and Adam moments as they are), copy 3 pauses after its last: all as alone."""
    asked: list[tuple[int, int]] = []

    def decide(k: int, record: EpochRecord) -> Any:
        asked.append((k, record.epoch))
        if k == 1 and record.epoch == 0:
            return (CopyStatus.PRUNED, "pruned at epoch 1")
        if k == 3 and record.epoch == EPOCHS - 1:
            return (TrialStatus.PAUSED, "paused at rung 2")
        return None

    results = train_packed(digits, ADAM_SCHEDULES, ADAM, _settings(), seeds=SEEDS, decide=decide)

    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.status for r in results] == [
        CopyStatus.COMPLETE,
        CopyStatus.PRUNED,
        CopyStatus.COMPLETE,
        CopyStatus.PAUSED,
    ]
    assert results[1].reason == "pruned at epoch 1" and len(results[1].records) == 1
    assert results[3].reason == "paused at rung 2" and len(results[3].records) == EPOCHS
    assert results[0].value == results[0].records[-1].val_accuracy
    assert results[1].value is None and results[3].value is None
    assert results[0].seconds == pytest.approx(sum(r.seconds for r in results[0].records))
    # decide is asked after every epoch of every copy still training, the final one included
    assert asked == [(0, 0), (1, 0), (2, 0), (3, 0), (0, 1), (2, 1), (3, 1)]
    worst = 0.0
    for k, result in enumerate(results):
        logs, _ = train_alone(digits, ADAM_SCHEDULES[k], ADAM, SEEDS[k])
        _assert_same(result.records, logs[: len(result.records)])
        worst = max(worst, _worst(result.records, logs[: len(result.records)]))
    assert worst <= 1e-5


@pytest.mark.slow
def test_a_pack_mixing_optimizers_with_a_frozen_copy_trains_each_as_alone(
    digits: Dataset,
) -> None:
    """SGD and Adam copies side by side; copy 2 is frozen in the model after its first epoch
    (loss weight 0, not trainable): it stays where it was, the others train as alone."""
    specs = [SGD, ADAM, SGD, ADAM]
    schedules = [SCHEDULES[0], ADAM_SCHEDULES[1], SCHEDULES[2], ADAM_SCHEDULES[3]]
    reset_keras(0)
    pack = Pack(digits, _settings(), stop="freeze")
    copies = [
        pack.add(schedule, spec, seed=seed)
        for schedule, spec, seed in zip(schedules, specs, SEEDS, strict=True)
    ]
    assert [c.index for c in copies] == [0, 1, 2, 3]
    pack.train_epoch()
    pack.stop(copies[2])
    frozen = [np.array(w) for w in copies[2].model.get_weights()]
    trained = pack.train_epoch()
    assert [c.index for c, _ in trained] == [0, 1, 3]
    assert pack.compiles == 2
    for w, f in zip(copies[2].model.get_weights(), frozen, strict=True):
        np.testing.assert_array_equal(np.asarray(w), f)
    for k, copy in enumerate(copies):
        logs, _ = train_alone(digits, schedules[k], specs[k], SEEDS[k])
        _assert_same(copy.records, logs[: len(copy.records)])
    assert [len(c.records) for c in copies] == [2, 2, 1, 2]


@pytest.mark.slow
def test_a_reused_slot_trains_its_new_trial_as_alone_without_a_new_trace(
    digits: Dataset, tmp_path: Path
) -> None:
    """stop="reuse": copy 1 (constant rate) stops after one epoch and copy 2 takes its slot in
    the same compiled model; copy 0 goes on. Every copy trains as alone, its rate read from a
    table (one float32 rounding of the Keras schedule: ``lr_rel``). Checkpoints of table copies
    are those of the trials alone, a constant rate's learning-rate variable included."""
    from sweeper.training.train_trial import run_trial

    first, second, third = (SCHEDULES[1], 0), (SCHEDULES[0], 1), (SCHEDULES[2], 2)
    reset_keras(0)
    pack = Pack(digits, _settings(), stop="reuse")
    a = pack.add(first[0], SGD, seed=first[1])
    b = pack.add(second[0], SGD, seed=second[1])
    pack.train_epoch()
    pack.save(b, tmp_path / "b")
    pack.stop(b)
    c = pack.add(third[0], SGD, seed=third[1])
    assert (c.index, pack.reused, pack.compiles) == (b.index, 1, 1)
    assert c.step() == 0 and c.model is b.model  # the slot's variables, reset
    assert [x.index for x, _ in pack.train_epoch()] == [a.index, c.index]
    assert pack.compiles == 1  # the traced model went on
    pack.save(c, tmp_path / "c")
    pack.stop(a)
    assert [x.index for x, _ in pack.train_epoch()] == [c.index]
    assert pack.compiles == 2 and pack.copies == [c]  # the free slot left the model

    lr_rel = 2.5e-7  # one float32 rounding of the rate
    logs, _ = train_alone(digits, first[0], SGD, first[1])
    _assert_same(a.records, logs, lr_rel)
    logs, _ = train_alone(digits, second[0], SGD, second[1])
    _assert_same(b.records, logs[:1], lr_rel)
    logs, weights = train_alone(digits, third[0], SGD, third[1], first_epoch=1)
    _assert_same(c.records, logs, lr_rel)
    _assert_same_weights(c.model.get_weights(), weights)

    # the constant-rate copy's checkpoint resumes in a pack that reads rates from the schedule
    other = Pack(digits, _settings())
    resumed = other.add(second[0], SGD, seed=5)
    assert other.restore(resumed, tmp_path / "b") == 1 and resumed.step() == SPE
    # and the reused slot's checkpoint resumes alone, after the epoch it saved
    alone = run_trial(digits, third[0], SGD, _settings(), backup_dir=str(tmp_path / "c"))
    assert [r.epoch for r in alone.records] == [1] and alone.records[0].step == 2 * SPE


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def test_each_copy_starts_from_the_weights_it_would_have_alone(digits: Dataset) -> None:
    from sweeper.training.models import build_model

    packed, copies = build_packed_model("mnist-cnn", digits.input_shape, 10, seeds=[7, 3, 7])
    assert len(packed.outputs) == 3
    assert [c.name for c in copies] == ["copy_0", "copy_1", "copy_2"]
    assert {id(v) for v in copies[0].weights}.isdisjoint({id(v) for v in copies[2].weights})
    for k, seed in enumerate([7, 3, 7]):
        reset_keras(seed)
        alone = build_model("mnist-cnn", digits.input_shape, 10)
        for w, a in zip(copies[k].get_weights(), alone.get_weights(), strict=True):
            np.testing.assert_array_equal(w, a)
    assert not np.array_equal(copies[0].get_weights()[0], copies[1].get_weights()[0])


def test_a_copy_of_a_model_with_regularization_is_refused(digits: Dataset) -> None:
    def regularized(input_shape: tuple[int, ...], num_classes: int) -> Any:
        import keras

        inputs = keras.Input(shape=input_shape)
        x = keras.layers.Flatten()(inputs)
        dense = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer="l2")
        return keras.Model(inputs, dense(x))

    with pytest.raises(ConfigError, match="regularization"):
        build_copy(regularized, digits.input_shape, 10, seed=0, index=0)


def test_the_epoch_order_is_a_permutation_fixed_by_seed_and_epoch() -> None:
    a = epoch_order(100, 0, 0)
    assert sorted(a.tolist()) == list(range(100))
    np.testing.assert_array_equal(a, epoch_order(100, 0, 0))
    assert not np.array_equal(a, epoch_order(100, 0, 1))
    assert not np.array_equal(a, epoch_order(100, 1, 0))


def _dense(input_shape: tuple[int, ...], num_classes: int) -> Any:
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


@pytest.mark.slow
def test_schedule_free_copies_are_validated_at_their_average_as_alone() -> None:
    small = load_dataset(DataSpec("digits", subset=600, seed=0))
    specs = [OptimizerSpec("sgd_schedule_free", warmup=0.1), OptimizerSpec("adamw_schedule_free")]
    schedules: list[Schedule] = [Constant(0.05), Constant(0.002)]
    settings = TrainSettings(batch_size=BATCH, epochs=EPOCHS, seed=0)
    results = train_packed(small, schedules, specs, settings, seeds=[0, 1], model=_dense)
    for k, result in enumerate(results):
        logs, _ = train_alone(small, schedules[k], specs[k], k, model=_dense)
        _assert_same(result.records, logs)


@pytest.mark.slow
def test_a_diverging_copy_ends_alone_and_the_others_complete() -> None:
    small = load_dataset(DataSpec("digits", subset=400, seed=0))
    settings = TrainSettings(batch_size=BATCH, epochs=2, seed=0)
    # a rate near float32's largest number: the logits overflow and the loss is NaN
    results = train_packed(small, [Constant(1e38), Constant(0.05)], SGD, settings, model=_dense)
    assert results[0].status is CopyStatus.DIVERGED
    assert results[0].reason is not None and results[0].reason.startswith("diverged at epoch 1")
    assert len(results[0].records) == 1
    assert results[1].status is CopyStatus.COMPLETE
    assert all(math.isfinite(r.loss) for r in results[1].records)
    assert len(results[1].records) == 2


# --------------------------------------------------------------------------------------------
# Other backends (each in its own process), where installed
# --------------------------------------------------------------------------------------------

BACKEND_CHECK = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    import test_packing as t
    from sweeper.training.data import DataSpec, load_dataset
    from sweeper.training.pack_train import train_packed
    from sweeper.training.packing import Pack

    data = load_dataset(DataSpec("digits", subset=300, seed=0))
    specs = [t.SGD, t.ADAM, t.SGD, t.ADAM]
    schedules = [t.SCHEDULES[0], t.ADAM_SCHEDULES[0], t.SCHEDULES[1], t.ADAM_SCHEDULES[1]]
    results = train_packed(data, schedules, specs, t._settings(), seeds=t.SEEDS)
    worst = 0.0
    for k, result in enumerate(results):
        logs, _ = t.train_alone(data, schedules[k], specs[k], t.SEEDS[k])
        t._assert_same(result.records, logs)
        worst = max(worst, t._worst(result.records, logs))

    # a reused slot: its rates (a table variable) and state are new values under the same trace
    pack = Pack(data, t._settings(), stop="reuse")
    first = pack.add(t.SCHEDULES[1], t.SGD, seed=0)
    pack.train_epoch()
    pack.stop(first)
    second = pack.add(t.SCHEDULES[2], t.SGD, seed=2)
    pack.train_epoch()
    assert (pack.reused, pack.compiles) == (1, 1)
    logs, _ = t.train_alone(data, t.SCHEDULES[2], t.SGD, 2, first_epoch=1)
    t._assert_same(second.records, logs[:1], lr_rel=2.5e-7)
    worst = max(worst, t._worst(second.records, logs[:1]))
    print("RESULT " + json.dumps({{"worst": worst}}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_pack_trains_each_trial_as_alone_on_other_backends(backend: str) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    script = BACKEND_CHECK.format(tests=str(Path(__file__).resolve().parent))
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    assert json.loads(line[len("RESULT ") :])["worst"] <= 1e-5
