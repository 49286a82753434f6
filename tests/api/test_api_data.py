"""Arrays given to the Python API: one-hot labels turned into class indices with one notice, and
every message about the arrays naming them (``data``), never the ``.npz`` file they are written
to. scikit-learn's digits in memory; a real (tiny) run where the notice is what a person sees.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sweeper
from sweeper.api.data import class_indices
from sweeper.environment import DATA_DIR_ENV
from sweeper.errors import DataError

NOTICE = "labels {keys} look one-hot ({shapes}): converted to class indices"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_process: None) -> None:
    """Work in tmp_path (store, checkpoints, arrays), in a clean process (conftest)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "arrays"))


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target


def one_hot(y: np.ndarray, classes: int = 10, dtype: Any = np.float32) -> np.ndarray:
    """``keras.utils.to_categorical(y, classes)``, without Keras."""
    return np.eye(classes, dtype=dtype)[y]


def dense(input_shape: tuple[int, ...], num_classes: int) -> Any:
    import keras

    inputs = keras.Input(shape=input_shape)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8, bool])
def test_one_hot_rows_become_class_indices(dtype: Any, caplog: pytest.LogCaptureFixture) -> None:
    y = np.arange(30) % 3
    with caplog.at_level(logging.INFO, logger="sweeper.console"):
        out = class_indices({"x": np.zeros((30, 4, 4)), "y": one_hot(y, 3, dtype)})
    assert out["y"].ndim == 1 and np.array_equal(out["y"], y)
    assert caplog.messages == [NOTICE.format(keys="y", shapes="30 x 3")]


def test_both_splits_are_converted_in_one_notice(caplog: pytest.LogCaptureFixture) -> None:
    y, y_test = np.arange(1500) % 10, np.arange(297) % 10
    arrays = {
        "x_train": np.zeros((1500, 8, 8)),
        "y_train": one_hot(y),
        "x_test": np.zeros((297, 8, 8)),
    }
    with caplog.at_level(logging.INFO, logger="sweeper.console"):
        out = class_indices({**arrays, "y_test": one_hot(y_test)})
    assert np.array_equal(out["y_train"], y) and np.array_equal(out["y_test"], y_test)
    assert caplog.messages == [NOTICE.format(keys="y_train, y_test", shapes="1,500 x 10, 297 x 10")]


@pytest.mark.parametrize(
    "y",
    [
        np.arange(30) % 3,  # class indices
        (np.arange(30) % 3)[:, None],  # one column of indices: the loader takes it
        one_hot(np.arange(30) % 3) * 0.9 + 0.01,  # smoothed: not 0/1
        np.ones((30, 3)),  # rows of three 1s
        np.zeros((30, 3)),  # no 1 at all
        np.ones((30, 1)),  # one column
    ],
    ids=["indices", "column", "smoothed", "all-ones", "all-zeros", "one-column"],
)
def test_labels_that_are_not_one_hot_are_left_as_they_are(
    y: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    arrays = {"x": np.zeros((30, 4, 4)), "y": y}
    with caplog.at_level(logging.INFO, logger="sweeper.console"):
        assert class_indices(arrays)["y"] is y
    assert caplog.messages == []


def test_one_hot_labels_make_the_same_study_as_class_indices(digits: Any) -> None:
    x, y = digits
    split = ((x[:1500], one_hot(y[:1500])), (x[1500:], one_hot(y[1500:])))
    a = sweeper.Study("mnist-cnn", split, epochs=1)
    b = sweeper.Study("mnist-cnn", ((x[:1500], y[:1500]), (x[1500:], y[1500:])), epochs=1)
    assert a.hash == b.hash and a.spec.data.path == b.spec.data.path


@pytest.mark.parametrize(
    ("x_shape", "y", "expected"),
    [
        ((60, 8, 8), np.ones((60, 3)), r"^data: labels have shape \(60, 3\); expected \(N,\) "),
        ((60, 8, 8), np.zeros((60, 2, 5)), r"^data: labels have shape \(60, 2, 5\)"),
        ((60, 8, 8), np.arange(60) / 7, r"^data: labels are not whole numbers"),
        ((60, 8), np.arange(60) % 3, r"^data: images have shape \(60, 8\)"),
    ],
    ids=["2-d", "3-d", "fractions", "images-2-d"],
)
def test_a_message_about_the_arrays_names_them_not_the_file_they_are_written_to(
    tmp_path: Path, x_shape: tuple[int, ...], y: np.ndarray, expected: str
) -> None:
    x = np.random.default_rng(0).random(x_shape, dtype=np.float32)
    with pytest.raises(DataError, match=expected) as info:
        sweeper.Study("mnist-cnn", (x, y))
    assert ".npz" not in str(info.value) and str(tmp_path) not in str(info.value)


def test_test_split_mistakes_and_warnings_name_the_arrays_too(
    tmp_path: Path, digits: Any, caplog: pytest.LogCaptureFixture
) -> None:
    x, y = digits
    with pytest.raises(DataError, match=r"^data, test split: 3 labels for 297 images") as info:
        sweeper.Study("mnist-cnn", ((x[:1500], y[:1500]), (x[1500:], y[1500:1503])))
    assert ".npz" not in str(info.value)
    with caplog.at_level(logging.WARNING, logger="sweeper.training.data"):
        sweeper.Study("mnist-cnn", (x * 16, y))  # pixels 0..16: used unscaled, with a warning
    (warning,) = [r.getMessage() for r in caplog.records if "pixel values" in r.getMessage()]
    assert warning.startswith("data: float pixel values span 0..16") and ".npz" not in warning


@pytest.mark.slow
def test_a_run_on_one_hot_labels_says_so_once_and_trains(
    digits: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = digits
    result = sweeper.tune(
        dense,
        (x, one_hot(y)),
        storage=f"sqlite:///{tmp_path / 'h.db'}",
        n_trials=1,
        epochs=1,
        subset=600,
        baselines=[{"name": "constant 0.1", "schedule": "constant", "initial_lr": 0.1}],
    )
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if "one-hot" in line]
    assert notices == [NOTICE.format(keys="y", shapes="1,797 x 10")], err
    assert err.index(notices[0]) < err.index("tuning ")  # before the run's header
    assert result.best.value is not None and result.best.value > 0.1
