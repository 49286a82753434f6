"""Tests for sweeper.training.models: the built-in CNNs and user models by import path."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sweeper.errors import ConfigError, SweeperError
from sweeper.training.models import MODELS, build_model, check_model_module, check_model_name

keras = pytest.importorskip("keras")
layers = keras.layers

SHAPES = [(28, 28, 1), (8, 8, 1), (32, 32, 3)]


@pytest.fixture(autouse=True)
def _seeded() -> None:
    keras.utils.set_random_seed(0)


def _body(model: Any) -> list[Any]:
    """The model's layers after its input."""
    return [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]


def _activation(layer: Any) -> str:
    return layer.activation.__name__


def test_built_in_names() -> None:
    assert set(MODELS) == {"mnist-cnn", "fashion-cnn", "cifar-cnn"}
    for name in MODELS:
        check_model_name(name)


@pytest.mark.parametrize("num_classes", [10, 3])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_built_in_models_build(name: str, shape: tuple[int, ...], num_classes: int) -> None:
    model = build_model(name, shape, num_classes)
    assert isinstance(model, keras.Model)
    assert tuple(model.input_shape) == (None, *shape)
    assert tuple(model.output_shape) == (None, num_classes)
    last = model.layers[-1]
    assert isinstance(last, layers.Dense)
    assert last.units == num_classes
    assert _activation(last) == "softmax"
    # A forward pass gives one probability distribution per image.
    x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (2, num_classes)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()


def test_each_build_is_a_fresh_model() -> None:
    a = build_model("mnist-cnn", (8, 8, 1), 10)
    b = build_model("mnist-cnn", (8, 8, 1), 10)
    assert a is not b
    assert not set(map(id, a.weights)) & set(map(id, b.weights))


def test_mnist_cnn_architecture() -> None:
    body = _body(build_model("mnist-cnn", (28, 28, 1), 10))
    kinds = [type(layer) for layer in body]
    assert kinds == [
        layers.Conv2D,
        layers.MaxPooling2D,
        layers.Conv2D,
        layers.MaxPooling2D,
        layers.Conv2D,
        layers.MaxPooling2D,
        layers.Flatten,
        layers.Dense,
    ]
    convs = [layer for layer in body if isinstance(layer, layers.Conv2D)]
    assert [c.filters for c in convs] == [16, 32, 64]
    for conv in convs:
        assert tuple(conv.kernel_size) == (3, 3)
        assert _activation(conv) == "relu"
        following = body[body.index(conv) + 1]
        assert isinstance(following, layers.MaxPooling2D)
        assert tuple(following.pool_size) == (2, 2)
    assert sum(isinstance(layer, layers.Conv2D) for layer in body) == 3


def test_fashion_cnn_architecture() -> None:
    body = _body(build_model("fashion-cnn", (28, 28, 1), 10))
    assert [type(layer) for layer in body] == [
        layers.Conv2D,
        layers.Conv2D,
        layers.Flatten,
        layers.Dense,
    ]
    first, second, _, dense = body
    for conv, filters in ((first, 32), (second, 16)):
        assert conv.filters == filters
        assert tuple(conv.kernel_size) == (3, 3)
        assert conv.padding == "same"
        assert _activation(conv) == "relu"
    # "same" padding keeps 28x28, so the Dense layer sees 28 * 28 * 16 features.
    assert tuple(second.output.shape) == (None, 28, 28, 16)
    assert dense.units == 10
    assert _activation(dense) == "softmax"
    assert dense.kernel.shape == (28 * 28 * 16, 10)


def test_cifar_cnn_architecture() -> None:
    body = _body(build_model("cifar-cnn", (32, 32, 3), 10))
    convs = [layer for layer in body if isinstance(layer, layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 32, 64, 64]
    assert sum(isinstance(layer, layers.MaxPooling2D) for layer in body) == 2
    denses = [layer for layer in body if isinstance(layer, layers.Dense)]
    assert [d.units for d in denses] == [128, 10]
    assert [_activation(d) for d in denses] == ["relu", "softmax"]


# --------------------------------------------------------------------------------------------
# User models by import path
# --------------------------------------------------------------------------------------------

USER_MODULE = textwrap.dedent(
    """
    import keras


    def build(input_shape, num_classes):
        inputs = keras.Input(shape=input_shape)
        x = keras.layers.Flatten()(inputs)
        outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs, name="user_model")


    def not_a_model(input_shape, num_classes):
        return [input_shape, num_classes]


    NOT_CALLABLE = 3
    """
)


@pytest.fixture
def mymod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "mymod.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mymod", raising=False)
    yield "mymod"
    sys.modules.pop("mymod", None)


def test_user_model_by_dotted_path(mymod: str) -> None:
    model = build_model(f"{mymod}:build", [8, 8, 1], np.int64(4))
    assert isinstance(model, keras.Model)
    assert model.name == "user_model"
    assert tuple(model.input_shape) == (None, 8, 8, 1)
    assert tuple(model.output_shape) == (None, 4)


def test_user_model_in_a_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "userpkg_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        model = build_model("userpkg_models.nets:build", (28, 28, 1), 10)
        assert tuple(model.output_shape) == (None, 10)
    finally:
        for name in ("userpkg_models", "userpkg_models.nets"):
            sys.modules.pop(name, None)


def _one_line_config_error(name: str) -> str:
    with pytest.raises(ConfigError) as info:
        build_model(name, (8, 8, 1), 10)
    message = str(info.value)
    assert message
    assert "\n" not in message
    assert isinstance(info.value, SweeperError)
    return message


@pytest.mark.parametrize("name", ["resnet50", "", "mnist_cnn", "mymod:", "mymod:build:x", "a b:c"])
def test_unknown_name_is_a_config_error(name: str) -> None:
    message = _one_line_config_error(name)
    assert "unknown model" in message
    for built_in in MODELS:
        assert built_in in message
    with pytest.raises(ConfigError):
        check_model_name(name)


def test_missing_module_is_a_config_error() -> None:
    message = _one_line_config_error("sweeper_no_such_module_xyz:build")
    assert "sweeper_no_such_module_xyz" in message
    assert "cannot import" in message


def test_missing_function_is_a_config_error(mymod: str) -> None:
    message = _one_line_config_error(f"{mymod}:no_such_function")
    assert "no_such_function" in message
    assert "mymod" in message


def test_non_callable_attribute_is_a_config_error(mymod: str) -> None:
    message = _one_line_config_error(f"{mymod}:NOT_CALLABLE")
    assert "NOT_CALLABLE" in message


def test_function_returning_non_model_is_a_config_error(mymod: str) -> None:
    message = _one_line_config_error(f"{mymod}:not_a_model")
    assert "not_a_model" in message
    assert "list" in message
    assert "keras.Model" in message


def test_check_model_name_needs_no_keras_for_import_paths() -> None:
    # Syntax only: the module is not imported until the model is built.
    check_model_name("some.package.module:make_model")


def test_a_missing_module_is_found_missing_before_keras_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        check_model_module("sweeper_no_such_module_xyz:build", str(tmp_path))
    message = str(info.value)
    assert message.startswith(
        f"model 'sweeper_no_such_module_xyz:build': no module 'sweeper_no_such_module_xyz' in "
        f"{tmp_path}, "
    ), message
    assert message.endswith(
        "or the installed packages; put sweeper_no_such_module_xyz.py beside the study file or "
        "install it"
    )
    assert "\n" not in message and str(tmp_path) not in sys.path  # the folder was taken off


def test_a_module_beside_the_study_file_or_built_in_passes(tmp_path: Path) -> None:
    (tmp_path / "beside_study_xyz.py").write_text("raise RuntimeError('not run')\n")
    check_model_module("beside_study_xyz:build", str(tmp_path))  # found, not imported
    assert "beside_study_xyz" not in sys.modules
    check_model_module("mnist-cnn")
    with pytest.raises(ConfigError, match="beside_study_xyz"):
        check_model_module("beside_study_xyz:build")  # not on sys.path without the folder


def test_a_package_is_looked_into_without_running_it(tmp_path: Path) -> None:
    package = tmp_path / "pkg_unrun_xyz"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('a package __init__ is not run')\n")
    (package / "nets.py").write_text(USER_MODULE)
    check_model_module("pkg_unrun_xyz.nets:build", str(tmp_path))
    with pytest.raises(
        ConfigError, match=r"no module 'pkg_unrun_xyz\.nope' in .*pkg_unrun_xyz/nope\.py"
    ):
        check_model_module("pkg_unrun_xyz.nope:build", str(tmp_path))
    assert not any(name.startswith("pkg_unrun_xyz") for name in sys.modules)
