"""The seed CNNs of the learning-rate tutorials, chosen by name, or a user model by import path.

``MODELS`` and :func:`check_model_name` need no Keras; :func:`build_model` imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sweeper.errors import ConfigError
from sweeper.training.fingerprint import ModelFingerprint, fingerprint

MODELS: dict[str, str] = {
    "mnist-cnn": "3 x (Conv 3x3 ReLU + MaxPool) with 16, 32, 64 filters -> Dense softmax",
    "fashion-cnn": "Conv 32 3x3 same ReLU -> Conv 16 3x3 same ReLU -> Flatten -> Dense softmax",
    "cifar-cnn": "2 x (Conv 32 + Conv 32 + MaxPool), filters 32 then 64 -> Dense 128 -> Dense softmax",
}

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

# A model function that lives only in this process (defined in a notebook or a script) is named
# "__in_process__:NAME" in a study; build_model calls it while in_process_model registers it.
IN_PROCESS_MODULE = "__in_process__"
ModelFunction = Callable[[tuple[int, ...], int], Any]
_in_process: dict[str, ModelFunction] = {}


def check_model_name(name: str) -> None:
    """Raise ConfigError unless ``name`` is a built-in model or a ``package.module:function`` path."""
    if name in MODELS or _IMPORT_PATH.match(name):
        return
    raise ConfigError(
        f"unknown model {name!r}; use one of {', '.join(MODELS)} "
        "or a user model as 'package.module:function'"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


@contextmanager
def _importable_from(folder: str | None) -> Iterator[None]:
    """``folder`` first on ``sys.path`` while the block runs (a user model beside its study)."""
    if not folder or folder in sys.path:
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with suppress(ValueError):
            sys.path.remove(folder)


@contextmanager
def in_process_model(name: str, fn: ModelFunction) -> Iterator[None]:
    """While the block runs, :func:`build_model` builds the user model ``name`` by calling ``fn``
    instead of importing it: a function defined in a notebook, or the very object a caller
    passed, in this process only (worker processes import ``name`` as usual)."""
    check_model_name(name)
    previous = _in_process.get(name)
    _in_process[name] = fn
    try:
        yield
    finally:
        if previous is None:
            _in_process.pop(name, None)
        else:
            _in_process[name] = previous


def _findable(module_name: str) -> bool:
    """Whether the import system finds ``module_name`` on ``sys.path`` as it is now, without
    running it or a package above it (a package's ``__init__`` may import Keras). True when
    that cannot be told: the import itself then says what is wrong."""
    parts = module_name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name runs nothing
        for i in range(1, len(parts)):
            name = ".".join(parts[: i + 1])
            if spec is None or name in sys.modules:
                return spec is not None
            if spec.submodule_search_locations is None:
                return True  # a module, not a package: only importing it tells (os.path)
            locations = list(spec.submodule_search_locations)
            finders = (getattr(f, "find_spec", None) for f in sys.meta_path)
            spec = next((s for f in finders if f and (s := f(name, locations))), None)
    except Exception:  # a finder that failed, a module imported without a spec
        return True
    return spec is not None


def _searched(search_dir: str | None) -> str:
    """The folders an import of a user model looks in, the installed packages as one."""
    installed = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    folders: list[str] = []
    for entry in (search_dir, *sys.path):
        if entry is None:
            continue
        folder = os.path.abspath(entry or os.curdir)  # "" is the working directory
        inside = any(folder == p or folder.startswith(p + os.sep) for p in installed)
        site = os.path.basename(folder) in ("site-packages", "dist-packages")
        if os.path.isdir(folder) and not (inside or site) and folder not in folders:
            folders.append(folder)
    return ", ".join(folders) + (" or " if folders else "") + "the installed packages"


def check_model_module(name: str, search_dir: str | None = None) -> None:
    """Raise ConfigError, one line naming the module and the folders looked in, when user model
    ``name``'s module cannot be found from ``search_dir`` (the study file's folder) or
    ``sys.path``: before the backend starts, so that a misspelt module fails in a moment. The
    module is not imported (nor Keras); built-in and registered models pass."""
    module_name = name.partition(":")[0]
    if name in MODELS or name in _in_process or module_name == IN_PROCESS_MODULE:
        return  # an in-process model not registered here: _resolve_user_model says why
    with _importable_from(search_dir):
        if _findable(module_name):
            return
        searched = _searched(search_dir)
    raise ConfigError(
        f"model {name!r}: no module {module_name!r} in {searched}; put "
        f"{module_name.replace('.', '/')}.py beside the study file or install it"
    )


def _resolve_user_model(path: str, search_dir: str | None = None) -> Callable[..., Any]:
    if path in _in_process:
        return _in_process[path]
    module_name, _, attr = path.partition(":")
    if module_name == IN_PROCESS_MODULE:
        raise ConfigError(
            f"model {path!r} was a function of a notebook or script, which only the process "
            "that tuned the study could call; put it in a module (e.g. mymodels.py) and name "
            "it as 'mymodels:function'"
        )
    try:
        with _importable_from(search_dir):
            module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or any error raised by the user's module
        where = f" (looked in {search_dir} and on sys.path)" if search_dir else ""
        raise ConfigError(
            f"model {path!r}: cannot import module {module_name!r}{where}: "
            f"{type(exc).__name__}: {exc}; put {module_name.replace('.', '/')}.py beside the "
            "study file or install it"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"model {path!r}: module {module_name!r} has no function {attr!r}")
    return fn


def build_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, search_dir: str | None = None
) -> Any:
    """A fresh, uncompiled ``keras.Model`` for ``input_shape`` and ``num_classes``.

    A user model ``package.module:function`` is imported from ``search_dir`` (the study file's
    folder) or ``sys.path``, called as ``function(input_shape, num_classes)``, and must return a
    Keras model whose output is a softmax over ``num_classes``.
    """
    check_model_name(name)
    from sweeper.training.backend import load_keras

    load_keras()  # when Keras is imported first here, its backend's start-up notices silenced
    import keras
    from keras import layers

    if name not in MODELS:
        fn = _resolve_user_model(name, search_dir)
        try:
            model = fn(tuple(input_shape), int(num_classes))
        except Exception as exc:
            raise ConfigError(
                f"model {name!r}: calling it as function(input_shape, num_classes) failed "
                f"({_first_line(exc)})"
            ) from None
        if not isinstance(model, keras.Model):
            raise ConfigError(f"model {name!r} returned {type(model).__name__}, not a keras.Model")
        return model

    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    if name == "mnist-cnn":
        for filters in (16, 32, 64):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D(2, padding="same")(x)
        x = layers.Flatten()(x)
    elif name == "fashion-cnn":
        x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
        x = layers.Flatten()(x)
    else:  # cifar-cnn
        for filters in (32, 64):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D(2, padding="same")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(int(num_classes), activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name.replace("-", "_"))


def check_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, search_dir: str | None = None
) -> ModelFingerprint | None:
    """Build a user model once and check its output, before a study writes anything; return
    its fingerprint (:mod:`sweeper.training.fingerprint`), the model's part of the study's
    identity.

    Raises ConfigError, one line, when it cannot be imported or called, returns no Keras model,
    or does not map a batch of ``input_shape`` to probabilities over ``num_classes``. Built-in
    models are not checked (their tests do that) and have no fingerprint (their name is theirs).
    """
    if name in MODELS:
        return None
    import numpy as np

    from sweeper.training.backend import load_keras

    load_keras()
    import keras

    model = build_model(name, input_shape, num_classes, search_dir)
    batch = np.random.default_rng(0).random((2, *input_shape), dtype=np.float32)
    try:
        try:
            out = np.asarray(keras.ops.convert_to_numpy(model(batch, training=False)))
        except Exception as exc:
            raise ConfigError(
                f"model {name!r} cannot take a batch of shape {batch.shape} "
                f"({_first_line(exc)}); it must accept inputs of shape {input_shape}"
            ) from None
        identity = fingerprint(model, _resolve_user_model(name, search_dir))
    finally:
        keras.backend.clear_session()
    if out.shape != (2, num_classes):
        raise ConfigError(
            f"model {name!r} outputs shape {tuple(out.shape[1:])} per example, but the data has "
            f"{num_classes} classes; end it with Dense({num_classes}, activation='softmax')"
        )
    sums = out.sum(axis=1)
    if not (np.all(out >= -1e-6) and all(math.isclose(s, 1.0, abs_tol=1e-3) for s in sums)):
        raise ConfigError(
            f"model {name!r} outputs no probabilities (a row sums to {float(sums[0]):.3g}); "
            "end it with a softmax activation: sweeper trains with "
            "sparse_categorical_crossentropy on probabilities"
        )
    return identity
