"""Tests for sweeper.training.fingerprint: a built network's identity and its changes in words."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from sweeper.training import fingerprint as fp_mod
from sweeper.training.fingerprint import ModelFingerprint, differences, fingerprint

keras = pytest.importorskip("keras")


def hidden(width: int, activation: str = "relu", dtype: str | None = None) -> Any:
    """A model function: Flatten -> Dense(width) -> Dense softmax."""

    def build(input_shape: tuple[int, ...], num_classes: int) -> Any:
        inputs = keras.Input(shape=input_shape)
        dense = keras.layers.Dense(width, activation=activation, dtype=dtype)
        x = dense(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))

    return build


def print_of(fn: Any, shape: tuple[int, ...] = (8, 8), classes: int = 10) -> ModelFingerprint:
    return fingerprint(fn(shape, classes), fn)


def stored(fp: ModelFingerprint) -> ModelFingerprint:
    """``fp`` as a study user attribute reads it back (through JSON)."""
    back = ModelFingerprint.from_attr(json.loads(json.dumps(fp.to_attr())))
    assert back is not None
    return back


def test_the_same_model_built_twice_is_the_same_fingerprint() -> None:
    build = hidden(16)
    first, second = print_of(build), print_of(build)  # other layer names (dense_2, ...)
    assert first == second and differences(first, second) is None
    assert stored(first) == first and differences(stored(first), second) is None
    assert [x.kind for x in first.layers] == ["InputLayer", "Flatten", "Dense", "Dense"]
    assert first.layers[2].weights == ((64, 16), (16,))
    assert first.source is not None


def test_a_changed_network_is_named_by_its_layer_and_setting() -> None:
    build = hidden(16)
    before = stored(print_of(build))
    wider = differences(before, print_of(hidden(32)))
    assert wider == (
        "layer 3 Dense units 16 -> 32, weight shapes (64, 16) (16,) -> (64, 32) (32,); "
        "layer 4 Dense weight shapes (16, 10) (10,) -> (32, 10) (10,)"
    )
    tanh = differences(before, print_of(hidden(16, "tanh")))
    assert tanh == "layer 3 Dense activation relu -> tanh"
    halves = differences(before, print_of(hidden(16, dtype="float16")))
    assert halves == "layer 3 Dense dtype_policy float32 -> float16"
    assert differences(before, print_of(build, classes=3)) == (
        "layer 4 Dense units 10 -> 3, weight shapes (16, 10) (10,) -> (16, 3) (3,)"
    )

    def wrapped(width: int) -> ModelFingerprint:  # a wrapped layer's config holds its name
        inputs = keras.Input(shape=(4, 8))
        x = keras.layers.TimeDistributed(keras.layers.Dense(width))(inputs)
        outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
        return fingerprint(keras.Model(inputs, outputs))

    assert differences(wrapped(4), wrapped(4)) is None
    assert differences(wrapped(4), wrapped(5)).startswith(  # type: ignore[union-attr]
        "layer 2 TimeDistributed layer.config.units 4 -> 5"
    )

    def deeper(input_shape: tuple[int, ...], num_classes: int) -> Any:
        model = hidden(16)(input_shape, num_classes)
        return keras.Sequential([model, keras.layers.Dense(num_classes, activation="softmax")])

    found = differences(before, fingerprint(deeper((8, 8), 10), build))
    assert found is not None and found.startswith("5 layers instead of 4")


BUILD = """\
import keras


def build(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
"""
COMMENTED = """\
import keras


def build(input_shape, num_classes):  # the same code, commented and laid out otherwise
    inputs = keras.Input(shape=input_shape)

    x = keras.layers.Flatten()(inputs)  # one vector per image
    return keras.Model(
        inputs, keras.layers.Dense(num_classes, activation="softmax")(x)
    )
"""
SEEDED = BUILD.replace(
    "    inputs =", "    keras.utils.set_random_seed(1)  # other weights\n    inputs ="
)


def module_function(tmp_path: Path, name: str, text: str) -> Any:
    """``build`` of a module file holding ``text``."""
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build


def test_the_source_counts_but_not_its_comments_or_layout(tmp_path: Path) -> None:
    base = print_of(module_function(tmp_path, "fp_base", BUILD))
    assert base.source is not None
    assert print_of(module_function(tmp_path, "fp_commented", COMMENTED)) == base
    seeded = print_of(module_function(tmp_path, "fp_seeded", SEEDED))
    assert seeded.network == base.network  # the same network, but other weights
    assert differences(base, seeded) == "its function's source changed"
    # no source on one side (a function made by exec): the network alone decides
    assert differences(ModelFingerprint(base.network, None, base.layers), seeded) is None


def test_a_lambda_layer_counts_by_its_function_not_by_where_its_code_was_compiled() -> None:
    def lambda_model(function: Any) -> Any:
        inputs = keras.Input(shape=(8, 8))
        x = keras.layers.Lambda(function)(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

    here = lambda_model(lambda t: t * 2)
    cell: dict[str, Any] = {}
    exec(compile("\n\ndouble = lambda t: t * 2", "<another cell>", "exec"), cell)
    assert fingerprint(here) == fingerprint(lambda_model(cell["double"]))


def test_a_setting_only_one_side_has_is_no_change_and_a_large_network_keeps_digests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = print_of(hidden(16))
    attr = now.to_attr()
    del attr["layers"][2]["config"]["use_bias"]  # as an older Keras would have stored it
    older = ModelFingerprint.from_attr(attr)
    assert older is not None and differences(older, now) is None

    monkeypatch.setattr(fp_mod, "MAX_STORED_CONFIG", 10)
    compact = stored(now)
    assert all(x.config is None for x in compact.layers)
    assert differences(compact, now) is None
    found = differences(compact, print_of(hidden(16, "tanh")))
    assert found == "layer 3 Dense its configuration"


def test_anything_but_a_stored_fingerprint_reads_as_none() -> None:
    for value in (None, "abc", {"version": 99}, {"version": 1, "layers": [{}]}):
        assert ModelFingerprint.from_attr(value) is None
