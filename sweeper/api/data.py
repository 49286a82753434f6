"""In-memory data given to the Python API (:mod:`sweeper.api.facade`), as the study file's ``[data]``.

NumPy arrays, pairs of them, mappings of ``.npz`` keys and ``keras.utils.PyDataset`` objects are
read into arrays and written once to an ``.npz`` file named by their content (under
``data_dir``, by default ``~/.cache/sweeper/data``); a dataset name or an ``.npz`` path is
named as it is. One-hot labels become class indices (:func:`class_indices`), and a message
about the arrays names them as ``data``, never that file. Keras is never imported here.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.environment import DATA_DIR_ENV, data_dir_from_env
from sweeper.errors import ConfigError, DataError
from sweeper.training.backend import CONSOLE
from sweeper.training.data_sources import DATASETS, check_class_count, name_arrays_file


def default_data_dir() -> Path:
    """Where in-memory arrays are written: ``$SWEEPER_DATA_DIR``, else
    ``$XDG_CACHE_HOME/sweeper/data`` (``~/.cache/sweeper/data``)."""
    folder = data_dir_from_env()
    if folder is not None:
        return folder
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "sweeper" / "data"


def _as_array(value: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise DataError(f"data: {what} is not an array ({type(exc).__name__}: {exc})") from None
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"data: {what} has dtype {array.dtype}; give numeric NumPy arrays (images uint8 or "
            "floats in [0, 1], labels integer class indices)"
        )
    return array


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2


def _is_pydataset(value: Any) -> bool:
    """Whether ``value`` is a ``keras.utils.PyDataset`` (told without importing Keras)."""
    return any(
        c.__name__ == "PyDataset" and c.__module__.split(".")[0] == "keras"
        for c in type(value).__mro__
    )


def _read_pydataset(dataset: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """All the batches of a finite PyDataset, joined into one (images, labels) pair."""
    try:
        n = dataset.num_batches
    except NotImplementedError:
        n = None
    if n is None:
        raise DataError(
            f"data: the {what} PyDataset is infinite (num_batches is None); give one with a "
            "number of batches, or the arrays"
        )
    xs, ys = [], []
    for i in range(int(n)):
        batch = dataset[i]
        if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
            raise DataError(
                f"data: batch {i} of the {what} PyDataset is a {type(batch).__name__}; "
                "sweeper needs (images, labels) batches"
            )
        xs.append(_as_array(batch[0], f"the images of batch {i} of the {what} PyDataset"))
        ys.append(_as_array(batch[1], f"the labels of batch {i} of the {what} PyDataset"))
    if not xs:
        raise DataError(f"data: the {what} PyDataset has no batches")
    try:
        return np.concatenate(xs), np.concatenate(ys)
    except ValueError as exc:
        raise DataError(
            f"data: the batches of the {what} PyDataset differ in shape ({exc})"
        ) from None


def _xy(value: Any, what: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x, y)`` of a pair of arrays or of a PyDataset; None for anything else."""
    if _is_pydataset(value):
        return _read_pydataset(value, what)
    if _is_pair(value):
        return value[0], value[1]
    return None


def arrays_of(data: Any) -> dict[str, np.ndarray] | None:
    """The arrays of in-memory ``data`` by their ``.npz`` keys; None when it names a dataset.

    A ``keras.utils.PyDataset`` (of ``(images, labels)`` batches) is read once into arrays, so
    that resumed runs and other workers train on exactly the same examples.
    """
    if isinstance(data, str | os.PathLike):
        return None
    if _is_pydataset(data):
        x, y = _read_pydataset(data, "training")
        return {"x": _as_array(x, "x"), "y": _as_array(y, "y")}
    if isinstance(data, Mapping):
        keys = set(data)
        if keys not in ({"x", "y"}, {"x_train", "y_train", "x_test", "y_test"}):
            raise DataError(
                f"data: a mapping needs the keys x and y, or x_train, y_train, x_test and "
                f"y_test; got {sorted(map(str, keys))}"
            )
        return {k: _as_array(data[k], k) for k in sorted(keys)}
    if _is_pair(data):
        first, second = data
        if (_is_pair(first) or _is_pydataset(first)) and (
            _is_pair(second) or _is_pydataset(second)
        ):
            train, test = _xy(first, "training"), _xy(second, "test")
            assert train is not None and test is not None
            names = ("x_train", "y_train", "x_test", "y_test")
            return {n: _as_array(v, n) for n, v in zip(names, (*train, *test), strict=True)}
        return {"x": _as_array(first, "x"), "y": _as_array(second, "y")}
    raise not_data(data)


def not_data(data: Any) -> DataError:
    """The error for ``data`` that is none of the kinds of data the API takes (None included)."""
    return DataError(
        f"data must be a dataset name ({', '.join(DATASETS)}), an .npz path, (x, y), "
        f"((x, y), (x_test, y_test)), a keras.utils.PyDataset, a pair of them, or a mapping "
        f"of arrays; got {type(data).__name__}"
    )


def _is_one_hot(y: np.ndarray) -> bool:
    """Whether labels ``y`` are one-hot rows: 2-D with 2 or more columns, each row of 0s and
    one 1 (ints, floats or booleans, as ``keras.utils.to_categorical`` makes them)."""
    if y.ndim != 2 or y.shape[0] == 0 or y.shape[1] < 2:
        return False
    return bool(np.isin(y, (0, 1)).all() and (np.count_nonzero(y, axis=1) == 1).all())


def class_indices(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` with one-hot labels (:func:`_is_one_hot`) turned into class indices
    (``argmax``), said in one console notice; labels of any other form are left as they are."""
    hot = [k for k in ("y", "y_train", "y_test") if k in arrays and _is_one_hot(arrays[k])]
    if not hot:
        return arrays
    shapes = ", ".join(f"{arrays[k].shape[0]:,} x {arrays[k].shape[1]:,}" for k in hot)
    CONSOLE.info("labels %s look one-hot (%s): converted to class indices", ", ".join(hot), shapes)
    return {k: v.argmax(axis=1) if k in hot else v for k, v in arrays.items()}


def _check_labels(arrays: Mapping[str, np.ndarray]) -> None:
    """Refuse class labels no classifier can learn from before the arrays are written (one
    class, too few examples, labels that are no class indices); labels of another shape or type
    are left to the loader, which names them."""
    y, y_test = arrays.get("y", arrays.get("y_train")), arrays.get("y_test")
    labels = [
        a.reshape(-1) if a.ndim == 2 and a.shape[1] == 1 else a
        for a in (y, y_test)
        if a is not None
    ]
    if not labels or any(a.ndim != 1 or a.dtype.kind not in "iu" or a.size == 0 for a in labels):
        return
    if min(int(a.min()) for a in labels) < 0:
        return
    check_class_count("data", labels[0], max(int(a.max()) for a in labels) + 1)


def has_arrays(data: Any) -> bool:
    return data is not None and not isinstance(data, str | os.PathLike)


def write_npz(arrays: Mapping[str, np.ndarray], folder: Path) -> Path:
    """Write ``arrays`` once to ``folder/arrays-<content hash>.npz``; its path."""
    digest = hashlib.sha256()
    contiguous = {k: np.ascontiguousarray(v) for k, v in sorted(arrays.items())}
    for key, array in contiguous.items():
        digest.update(f"{key}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.data.cast("B"))
    path = folder.expanduser().resolve() / f"arrays-{digest.hexdigest()[:24]}.npz"
    if path.is_file():
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            np.savez(f, **contiguous)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"cannot write the arrays to {path.parent} ({exc.strerror or exc}); give data_dir= "
            f"(or ${DATA_DIR_ENV}) a folder you may write"
        ) from None
    return path


def data_settings(data: Any, data_path: Any, data_dir: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    path = None if data_path is None else str(Path(os.fspath(data_path)).expanduser().resolve())
    if data is None:
        return [("data.path", path)] if path else []
    arrays = arrays_of(data)
    if arrays is not None:
        if path is not None:
            raise ConfigError("data_path names a dataset's files; it cannot go with arrays")
        arrays = class_indices(arrays)
        _check_labels(arrays)
        folder = Path(os.fspath(data_dir)) if data_dir is not None else default_data_dir()
        written = write_npz(arrays, folder)
        name_arrays_file(written, "data")  # its messages name the arrays given, not the file
        return [("data.dataset", "npz"), ("data.path", str(written))]
    name = os.fspath(data)
    if name in DATASETS:
        out.append(("data.dataset", name))
    elif Path(name).suffix == ".npz":
        if path is not None:
            raise ConfigError(f"data = {name!r} is a file already; leave data_path out")
        out.append(("data.dataset", "npz"))
        path = str(Path(name).expanduser().resolve())
    else:
        raise DataError(
            f"data = {name!r}: not a dataset ({', '.join(DATASETS)}) nor an .npz file; give "
            "arrays as (x, y), or a dataset name with data_path= for its files"
        )
    if path is not None:
        out.append(("data.path", path))
    return out
