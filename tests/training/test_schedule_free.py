"""Tests for sweeper.training.schedule_free: the equations against NumPy, evaluation at x, real training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sweeper.training.data import Dataset, DataSpec, load_dataset
from sweeper.training.families.constant import Constant
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.train_trial import TrainSettings, TrialStatus, run_trial, steps_per_epoch

# A quadratic f(w) = 1/2 sum a_i (w_i - b_i)^2, gradient a (w - b), taken at the model's point.
A = np.array([0.5, 1.0, 2.0, 4.0, 0.1, 3.0], dtype=np.float32)
B = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.0], dtype=np.float32)
W0 = np.array([0.0, 0.3, -0.7, 1.0, 2.0, -1.5], dtype=np.float32)
STEPS = 50


def reference(
    kind: str,
    lr: float,
    steps: int,
    *,
    warmup: int = 0,
    beta: float = 0.9,
    beta_2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> dict[str, np.ndarray]:
    """Algorithm 1 (SGD) / 2 (AdamW) of arXiv 2405.15682 in float64, term by term: the rate
    gamma_t = lr min(1, t / warmup), c_{t+1} = gamma_t^2 / sum_{i <= t} gamma_i^2."""
    a, b = A.astype(np.float64), B.astype(np.float64)
    z = W0.astype(np.float64)
    x = z.copy()
    v = np.zeros_like(z)
    squares = 0.0
    ys = []
    for t in range(1, steps + 1):
        y = (1 - beta) * z + beta * x
        ys.append(y)
        g = a * (y - b)
        gamma = lr * (min(1.0, t / warmup) if warmup else 1.0)
        if kind == "sgd":
            direction = g
        else:
            v = beta_2 * v + (1 - beta_2) * g * g
            direction = g / (np.sqrt(v / (1 - beta_2**t)) + eps)
        z = z - gamma * (direction + weight_decay * y)
        squares += gamma * gamma
        c = gamma * gamma / squares
        x = (1 - c) * x + c * z
    return {"z": z, "x": x, "y": (1 - beta) * z + beta * x, "y_path": np.array(ys)}


def run_keras(optimizer, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps of ``optimizer`` on the quadratic: the y path and the variable at the end."""
    import keras

    var = keras.Variable(W0.copy(), name="w")
    path = []
    for _ in range(steps):
        y = keras.ops.convert_to_numpy(var)
        path.append(y.astype(np.float64))
        optimizer.apply([keras.ops.convert_to_tensor(A * (y - B))], [var])
    return np.array(path), keras.ops.convert_to_numpy(var).astype(np.float64)


def slots(optimizer) -> dict[str, np.ndarray]:
    import keras

    return {
        "z": keras.ops.convert_to_numpy(optimizer._z[0]).astype(np.float64),
        "x": keras.ops.convert_to_numpy(optimizer._x[0]).astype(np.float64),
    }


@pytest.mark.parametrize(
    ("kind", "lr", "warmup", "weight_decay"),
    [
        ("sgd", 0.1, 0, 0.0),
        ("sgd", 0.2, 10, 0.0),
        ("sgd", 0.1, 7, 0.01),
        ("adamw", 0.05, 0, 0.0),
        ("adamw", 0.05, 10, 0.01),
    ],
)
def test_steps_match_the_numpy_reference(
    kind: str, lr: float, warmup: int, weight_decay: float
) -> None:
    from sweeper.training.schedule_free import AdamWScheduleFree, SGDScheduleFree

    cls = SGDScheduleFree if kind == "sgd" else AdamWScheduleFree
    opt = cls(learning_rate=lr, warmup_steps=warmup, weight_decay=weight_decay)
    path, end = run_keras(opt, STEPS)
    ref = reference(kind, lr, STEPS, warmup=warmup, weight_decay=weight_decay)
    # float32 against float64 over 50 steps: a few float32 roundings
    np.testing.assert_allclose(path, ref["y_path"], rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(end, ref["y"], rtol=2e-5, atol=2e-6)
    for name, value in slots(opt).items():
        np.testing.assert_allclose(value, ref[name], rtol=2e-5, atol=2e-6)
    assert not np.allclose(ref["x"], ref["z"])  # the average really lags behind z
    # the averaging weight's closed form is the paper's running ratio at every step
    opt.iterations.assign(0)
    squares = 0.0
    for t in range(1, STEPS + 1):
        gamma = min(1.0, t / warmup) if warmup else 1.0
        squares += gamma * gamma
        assert float(opt.average_weight()) == pytest.approx(gamma * gamma / squares, rel=1e-6)
        opt.iterations.assign_add(1)


def test_the_warm_up_is_the_rate_the_optimizer_reports() -> None:
    from sweeper.training.schedule_free import SGDScheduleFree

    opt = SGDScheduleFree(learning_rate=0.1, warmup_steps=4)
    seen = []
    for _ in range(6):
        seen.append(float(opt.learning_rate))
        opt.iterations.assign_add(1)
    assert seen == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rel=1e-6)


def test_swaps_between_the_training_point_and_the_average() -> None:
    import keras

    from sweeper.training.schedule_free import SGDScheduleFree

    opt = SGDScheduleFree(learning_rate=0.1)
    var = keras.Variable(W0.copy())
    opt.swap_to_x()  # not built yet: nothing to swap
    assert not opt.at_average
    for _ in range(5):
        y = keras.ops.convert_to_numpy(var)
        opt.apply([keras.ops.convert_to_tensor(A * (y - B))], [var])
    y = keras.ops.convert_to_numpy(var).copy()
    x = keras.ops.convert_to_numpy(opt._x[0]).copy()
    opt.swap_to_x()
    opt.swap_to_x()  # idempotent
    assert opt.at_average
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(var), x)
    opt.swap_to_y()
    assert not opt.at_average
    np.testing.assert_allclose(keras.ops.convert_to_numpy(var), y, rtol=1e-6, atol=1e-7)
    assert not np.allclose(x, y)


def test_config_round_trip() -> None:
    import keras

    from sweeper.training.schedule_free import AdamWScheduleFree, SGDScheduleFree

    for opt in (
        SGDScheduleFree(learning_rate=0.3, beta=0.8, warmup_steps=12, weight_decay=1e-4),
        AdamWScheduleFree(learning_rate=0.002, beta_1=0.95, beta_2=0.99, warmup_steps=3),
    ):
        config = opt.get_config()
        again = type(opt).from_config(config)
        assert again.get_config() == config
        restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
        assert type(restored) is type(opt)
        assert restored.get_config() == config


def test_optimizer_spec_builds_them_with_a_warm_up_share_of_the_run() -> None:
    from sweeper.training.schedule_free import AdamWScheduleFree, EvaluateAtAverage, SGDScheduleFree

    opt = OptimizerSpec("sgd_schedule_free", warmup=0.05).build(0.1, total_steps=1000)
    assert isinstance(opt, SGDScheduleFree) and opt.warmup_steps == 50
    opt = OptimizerSpec("adamw_schedule_free", warmup=0.05).build(0.001)  # no run length: none
    assert isinstance(opt, AdamWScheduleFree) and opt.warmup_steps == 0
    assert [type(c) for c in OptimizerSpec("sgd_schedule_free").callbacks()] == [EvaluateAtAverage]
    assert OptimizerSpec("sgd").callbacks() == []


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset(DataSpec("digits", seed=0))


def _dense_model(dataset: Dataset):
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input(dataset.input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(dataset.num_classes, activation="softmax"),
        ]
    )


def test_fit_validates_at_the_average_and_ends_there(digits: Dataset) -> None:
    from sweeper.training.schedule_free import EvaluateAtAverage, SGDScheduleFree

    model = _dense_model(digits)
    opt = SGDScheduleFree(learning_rate=0.05, warmup_steps=10)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        digits.x_train,
        digits.y_train,
        batch_size=64,
        epochs=2,
        validation_data=(digits.x_val, digits.y_val),
        callbacks=[EvaluateAtAverage()],
        verbose=0,
    )
    # fit ended with the model at x: evaluating now is the last validation, bit for bit
    assert opt.at_average
    at_x = model.evaluate(digits.x_val, digits.y_val, verbose=0, return_dict=True)
    assert at_x["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-6)
    opt.swap_to_y()
    at_y = model.evaluate(digits.x_val, digits.y_val, verbose=0, return_dict=True)
    assert at_y["loss"] != pytest.approx(at_x["loss"], rel=1e-3)  # a different point


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "lr"), [("sgd_schedule_free", 0.5), ("adamw_schedule_free", 2e-3)]
)
def test_schedule_free_trains_digits_above_chance(digits: Dataset, name: str, lr: float) -> None:
    # two epochs of mnist-cnn reach 0.84 to 0.89 over seeds 0-2 for both; chance is 0.1
    optimizer = OptimizerSpec(name, warmup=0.05)
    settings = TrainSettings(model="mnist-cnn", batch_size=32, epochs=2, seed=0)
    result = run_trial(digits, Constant(lr), optimizer=optimizer, settings=settings)
    assert result.status is TrialStatus.COMPLETE, result.reason
    assert [r.epoch for r in result.records] == [0, 1]
    assert result.records[-1].val_accuracy is not None
    assert result.records[-1].val_accuracy > 0.6, result.records
    # the recorded rate is the warmed-up one: the warm-up (5% of 68 steps) is over by then
    spe = steps_per_epoch(len(digits.x_train), 32)
    assert result.records[0].lr == pytest.approx(lr, rel=1e-6)
    assert math.ceil(0.05 * 2 * spe) < spe


def test_an_epoch_end_checkpoint_holds_the_training_point(tmp_path: Path) -> None:
    # BackupAndRestore saves at each epoch's end, after the validation swapped y back: training
    # resumes from y, with z and x in the optimizer's variables
    import keras

    from sweeper.training.schedule_free import EvaluateAtAverage, SGDScheduleFree

    rng = np.random.default_rng(0)
    x = rng.random((256, 4), dtype=np.float32)
    y = (x.sum(axis=1) > 2).astype("int32")

    def model_and_optimizer():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(2, "softmax")]
        )
        opt = SGDScheduleFree(learning_rate=0.1, warmup_steps=3)
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        return model, opt

    model, _ = model_and_optimizer()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=2,
        validation_data=(x, y),
        callbacks=[EvaluateAtAverage(), backup],
        verbose=0,
    )
    again, opt2 = model_and_optimizer()
    opt2.build(again.trainable_variables)
    again.load_weights(str(tmp_path / "latest.weights.h5"))
    assert int(keras.ops.convert_to_numpy(opt2.iterations)) == 16
    for var, z, x_avg in zip(again.trainable_variables, opt2._z, opt2._x, strict=True):
        expected = 0.1 * keras.ops.convert_to_numpy(z) + 0.9 * keras.ops.convert_to_numpy(x_avg)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(var), expected, atol=1e-6)
    assert not opt2.at_average
