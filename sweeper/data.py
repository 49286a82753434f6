"""Datasets for training small image classifiers, as numpy arrays.

Every dataset has an offline path: ``digits`` ships with scikit-learn, ``mnist``,
``fashion-mnist`` and ``cifar10`` read their standard distribution files from a folder (or are
downloaded through Keras when no folder is given), and ``idx`` / ``npz`` read the user's own files.

Array conventions for a :class:`Dataset`:

* ``x`` is float32 in ``[0, 1]`` with shape ``(N, H, W, C)`` (``C == 1`` for grey images);
* ``y`` is int32 class indices ``0 .. K-1`` and ``num_classes == K``.

Splitting (see :class:`DataSpec`): a source with a test split keeps it whole and carves the
validation set from its training data. A source with a single split has its test set carved
first, with a permutation fixed by the seed, so the test set never depends on ``subset``; the
validation set is then carved from what remains. ``subset`` draws that many examples from the
train + validation pool before the validation set is carved. Carving is stratified by class where
possible and is deterministic for a given seed.

Loaded datasets are cached per process (:func:`load_dataset` returns the same object for the same
spec) and their arrays are read-only, so that every user of the cache sees the same data.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import pickle
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.errors import DataError

__all__ = [
    "DATASETS",
    "DataSpec",
    "Dataset",
    "clear_cache",
    "load_dataset",
    "read_idx",
]

logger = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "cifar10", "idx", "npz")

_BUILTIN_CLASSES = 10
_MIN_SUBSET = 10

_TRAIN_IMAGES = "train-images-idx3-ubyte"
_TRAIN_LABELS = "train-labels-idx1-ubyte"
_TEST_IMAGES = "t10k-images-idx3-ubyte"
_TEST_LABELS = "t10k-labels-idx1-ubyte"
_IDX_NAMES = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)
_IDX_EXPECTED = ", ".join(f"{name}.gz" for name in _IDX_NAMES) + " (gzip or raw)"

_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"
_CIFAR_EXPECTED = ", ".join((*_CIFAR_BATCHES, _CIFAR_TEST))
_CIFAR_SIDE = 32

_NPZ_KEYS = "x and y, or x_train, y_train, x_test and y_test"

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _error(message: str) -> DataError:
    """A DataError whose message is guaranteed to be a single line."""
    return DataError(" ".join(message.split()))


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """Which dataset to load and how to split it.

    ``path`` is the offline source: a folder for ``mnist``, ``fashion-mnist``, ``cifar10`` and
    ``idx``, an ``.npz`` file for ``npz`` (required for those two; ignored for ``digits``).
    ``validation_fraction`` and ``test_fraction`` are fractions of the whole source when it has a
    single split; ``test_fraction`` is unused when the source has its own test split. When
    ``subset`` is set, the validation set is ``validation_fraction`` of the subset.
    """

    name: str = "digits"
    path: str | None = None
    subset: int | None = None
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or self.name not in DATASETS:
            raise _error(f"data name {self.name!r} is not a known dataset; use one of {DATASETS}")
        if self.path is not None:
            if isinstance(self.path, os.PathLike):
                object.__setattr__(self, "path", os.fspath(self.path))
            if not isinstance(self.path, str) or not self.path.strip():
                raise _error(
                    f"data path {self.path!r} is invalid; give a non-empty folder or file path"
                )
        if self.path is None and self.name in ("idx", "npz"):
            what = "a folder of IDX files" if self.name == "idx" else "an .npz file"
            raise _error(f"dataset {self.name!r} needs a path; set path to {what}")
        for field in ("subset", "seed"):
            if isinstance(getattr(self, field), np.integer):
                object.__setattr__(self, field, int(getattr(self, field)))
        for field in ("validation_fraction", "test_fraction"):
            value = getattr(self, field)
            if isinstance(value, np.floating):
                value = float(value)
                object.__setattr__(self, field, value)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0.0 < value < 1.0
            ):
                raise _error(f"{field} = {value!r} is invalid; it must be a number with 0 < x < 1")
        total = self.validation_fraction + self.test_fraction
        if not total < 1.0:
            raise _error(
                f"validation_fraction + test_fraction = {self.validation_fraction!r} + "
                f"{self.test_fraction!r} = {total:g} is invalid; the sum must be below 1"
            )
        if self.subset is not None and (
            isinstance(self.subset, bool)
            or not isinstance(self.subset, int)
            or self.subset < _MIN_SUBSET
        ):
            raise _error(
                f"subset = {self.subset!r} is invalid; it must be an integer >= {_MIN_SUBSET} "
                "or None (all examples)"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise _error(f"seed = {self.seed!r} is invalid; it must be an integer >= 0")


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Train / validation / test arrays of one image-classification dataset."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image, ``(H, W, C)``."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def summary(self) -> str:
        """One line, e.g. ``mnist: 6,000 train / 2,000 validation / 2,000 test, 28x28x1, ...``."""
        shape = "x".join(str(d) for d in self.input_shape)
        return (
            f"{self.name}: {len(self.y_train):,} train / {len(self.y_val):,} validation / "
            f"{len(self.y_test):,} test, {shape}, {self.num_classes} classes"
        )

    def __repr__(self) -> str:
        return f"Dataset({self.summary()!r})"


# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------


def _parse_idx_header(data: bytes, where: Path) -> tuple[np.dtype[Any], tuple[int, ...], int]:
    """Return (dtype, shape, header length) of IDX bytes; DataError if the magic is wrong."""
    fix = "expected an IDX file (magic bytes 00 00 <type> <ndims>), gzip-compressed or raw"
    if len(data) < 4:
        raise _error(f"IDX file {where}: only {len(data)} bytes; {fix}")
    magic = data[:4]
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES or magic[3] == 0:
        raise _error(f"IDX file {where}: bad magic number {magic.hex(' ')}; {fix}")
    ndim = magic[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _error(
            f"IDX file {where}: truncated header ({len(data)} bytes, {ndim} dimensions need "
            f"{header}); {fix}"
        )
    shape = tuple(int(d) for d in struct.unpack(f">{ndim}I", data[4:header]))
    return _IDX_TYPES[magic[2]], shape, header


def _peek_idx(path: Path) -> tuple[np.dtype[Any], tuple[int, ...]] | None:
    """Dtype and shape from the header of an IDX file, or None if it is not one."""
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
        opener = gzip.open if compressed else open
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) == 4 and head[0] == 0 and head[1] == 0 and 0 < head[3] <= 16:
                head += f.read(4 * head[3])
        dtype, shape, _ = _parse_idx_header(head, path)
    except (OSError, EOFError, zlib.error, DataError):
        return None
    return dtype, shape


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST distribution format), gzip-compressed or raw.

    Compression is detected from the file's first bytes, not its name. The magic number, the
    dimensions and the data size are checked; a bad file raises :class:`DataError`. The array
    is returned in native byte order with the file's dtype (``uint8`` for MNIST).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise _error(f"IDX file {p}: no such file; give the path of an IDX file (gzip or raw)")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise _error(
            f"IDX file {p}: cannot read it ({_describe(exc)}); check its permissions"
        ) from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise _error(
                f"IDX file {p}: corrupt gzip data ({_describe(exc)}); download the file again"
            ) from exc
    else:
        data = raw
    dtype, shape, header = _parse_idx_header(data, p)
    count = math.prod(shape)
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise _error(
            f"IDX file {p}: {problem}: {len(data):,} bytes but dimensions {shape} of "
            f"{dtype.name} need {expected:,}; download the file again"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


# --------------------------------------------------------------------------------------------
# Sources: raw arrays as read from disk (x is uint8 or float32, (N, H, W, C); y is int32)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Source:
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int
    origin: str


def _images(x: np.ndarray, where: str) -> np.ndarray:
    """Check an image array and bring it to (N, H, W, C), uint8 or float32."""
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[0] == 0 or min(x.shape[1:]) == 0:
        raise _error(
            f"{where}: images have shape {x.shape}; expected a non-empty array of shape "
            "(N, H, W) or (N, H, W, C)"
        )
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer):
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise _error(
                f"{where}: integer pixel values span {low}..{high}; expected uint8-range values "
                "0..255 or floats in [0, 1]"
            )
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise _error(f"{where}: images contain NaN or infinite values; fix the data")
        low_f, high_f = float(x.min()), float(x.max())
        if low_f < 0.0 or high_f > 1.0:
            logger.warning(
                "%s: float pixel values span %g..%g, outside [0, 1]; they are used unscaled",
                where,
                low_f,
                high_f,
            )
        return x
    raise _error(f"{where}: images have dtype {x.dtype}; expected uint8, integers or floats")


def _labels(y: np.ndarray, count: int, where: str) -> np.ndarray:
    """Check a label array and bring it to int32 of shape (N,)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise _error(f"{where}: labels have shape {y.shape}; expected (N,) class indices")
    if len(y) != count:
        raise _error(
            f"{where}: {len(y):,} labels for {count:,} images; images and labels must pair up"
        )
    if np.issubdtype(y.dtype, np.floating):
        if not (np.isfinite(y).all() and np.array_equal(y, np.round(y))):
            raise _error(f"{where}: labels are not whole numbers; expected class indices 0..K-1")
    elif not np.issubdtype(y.dtype, np.integer):
        raise _error(f"{where}: labels have dtype {y.dtype}; expected integer class indices")
    if count and (y.min() < 0 or y.max() > np.iinfo(np.int32).max):
        raise _error(f"{where}: labels span {y.min()}..{y.max()}; expected class indices 0..K-1")
    return y.astype(np.int32)


def _make_source(
    name: str,
    origin: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None,
    num_classes: int | None = None,
) -> _Source:
    """Validate raw arrays and wrap them; ``num_classes`` None means max label + 1."""
    where = f"dataset {name!r} ({origin})"
    x = _images(np.asarray(train[0]), where)
    y = _labels(np.asarray(train[1]), len(x), where)
    x_test = y_test = None
    if test is not None:
        x_test = _images(np.asarray(test[0]), f"{where}, test split")
        y_test = _labels(np.asarray(test[1]), len(x_test), f"{where}, test split")
        if x_test.shape[1:] != x.shape[1:]:
            raise _error(
                f"{where}: test images are {x_test.shape[1:]} but training images are "
                f"{x.shape[1:]}; both splits must have the same image shape"
            )
        if x_test.dtype != x.dtype:
            x, x_test = _as_float(x), _as_float(x_test)
    top = int(max(y.max(), y_test.max() if y_test is not None else 0)) + 1
    if num_classes is None:
        num_classes = top
    elif top > num_classes:
        raise _error(
            f"{where}: a label is {top - 1}; {name} has {num_classes} classes (0..{num_classes - 1})"
        )
    for array in (x, y, x_test, y_test):
        if array is not None:
            array.flags.writeable = False
    return _Source(x, y, x_test, y_test, num_classes, origin)


def _one_of(folder: Path, base: str) -> Path | None:
    for candidate in (folder / base, folder / f"{base}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _contents(folder: Path) -> str:
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError:
        return "it cannot be listed"
    if not names:
        return "it is empty"
    shown = ", ".join(names[:6]) + (f", ... ({len(names)} entries)" if len(names) > 6 else "")
    return f"it holds {shown}"


def _folder(name: str, path: str, expected: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.exists():
        raise _error(f"dataset {name!r}: no such directory {folder}; expected {expected}")
    if not folder.is_dir():
        raise _error(f"dataset {name!r}: {folder} is not a directory; expected {expected}")
    return folder


def _read_pair(name: str, images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(images), read_idx(labels)
    if x.ndim not in (3, 4) or y.ndim != 1:
        raise _error(
            f"dataset {name!r}: {images.name} has {x.ndim} dimensions and {labels.name} has "
            f"{y.ndim}; expected images with 3 (N, H, W) and labels with 1 (N)"
        )
    return x, y


def _standard_idx(name: str, folder: Path, num_classes: int | None) -> _Source | None:
    """Read the standard train-/t10k- IDX files from ``folder``; None if none are there."""
    found = {base: _one_of(folder, base) for base in _IDX_NAMES}
    pairs: list[tuple[Path, Path]] = []
    for images_name, labels_name in ((_TRAIN_IMAGES, _TRAIN_LABELS), (_TEST_IMAGES, _TEST_LABELS)):
        images, labels = found[images_name], found[labels_name]
        if (images is None) != (labels is None):
            have, missing = (images_name, labels_name) if images else (labels_name, images_name)
            raise _error(
                f"dataset {name!r}: {folder} holds {have} but not {missing}[.gz]; add the "
                f"missing file (expected {_IDX_EXPECTED})"
            )
        if images is not None and labels is not None:
            pairs.append((images, labels))
    if not pairs:
        return None
    arrays = [_read_pair(name, images, labels) for images, labels in pairs]
    test = arrays[1] if len(arrays) == 2 else None
    return _make_source(name, str(folder), arrays[0], test, num_classes)


def _npz_source(name: str, file: Path, num_classes: int | None) -> _Source:
    try:
        with np.load(file, allow_pickle=False) as archive:
            keys = set(archive.files)
            if {"x_train", "y_train", "x_test", "y_test"} <= keys:
                train = (archive["x_train"], archive["y_train"])
                test: tuple[np.ndarray, np.ndarray] | None = (archive["x_test"], archive["y_test"])
            elif {"x", "y"} <= keys:
                train, test = (archive["x"], archive["y"]), None
            elif {"x_train", "y_train"} <= keys:
                train, test = (archive["x_train"], archive["y_train"]), None
            else:
                raise _error(
                    f"dataset {name!r}: {file} holds the arrays {sorted(keys)}; expected "
                    f"{_NPZ_KEYS}"
                )
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise _error(
            f"dataset {name!r}: cannot read {file} as an .npz archive ({_describe(exc)}); "
            f"expected a numpy .npz file holding {_NPZ_KEYS}"
        ) from exc
    return _make_source(name, str(file), train, test, num_classes)


def _download(name: str) -> _Source:
    """Load a built-in dataset through Keras, which downloads and caches it."""
    hint = {
        "mnist": f"a folder holding {_IDX_EXPECTED} or mnist.npz",
        "fashion-mnist": f"a folder holding {_IDX_EXPECTED}",
        "cifar10": f"a folder holding the CIFAR-10 python batches ({_CIFAR_EXPECTED})",
    }[name]
    try:
        from sweeper.backend import load_keras

        load_keras()
        import keras

        module = {
            "mnist": keras.datasets.mnist,
            "fashion-mnist": keras.datasets.fashion_mnist,
            "cifar10": keras.datasets.cifar10,
        }[name]
        logger.info("downloading dataset %r through Keras (cached under ~/.keras/datasets)", name)
        (x_train, y_train), (x_test, y_test) = module.load_data()
    except Exception as exc:
        raise _error(
            f"dataset {name!r}: download through Keras failed ({_describe(exc)}); on a machine "
            f"without internet set path to {hint}"
        ) from exc
    return _make_source(name, "keras.datasets", (x_train, y_train), (x_test, y_test), 10)


def _load_digits() -> _Source:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[..., np.newaxis]
    return _make_source("digits", "sklearn.datasets.load_digits", (x, bunch.target), None, 10)


def _load_mnist_like(name: str, path: str) -> _Source:
    is_mnist = name == "mnist"
    expected = f"a folder holding {_IDX_EXPECTED}" + (" or Keras's mnist.npz" if is_mnist else "")
    candidate = Path(path).expanduser()
    if is_mnist and candidate.is_file() and candidate.suffix == ".npz":
        return _npz_source(name, candidate, _BUILTIN_CLASSES)
    folder = _folder(name, path, expected)
    source = _standard_idx(name, folder, _BUILTIN_CLASSES)
    if source is not None:
        return source
    if is_mnist and (folder / "mnist.npz").is_file():
        return _npz_source(name, folder / "mnist.npz", _BUILTIN_CLASSES)
    raise _error(
        f"dataset {name!r}: {folder} has none of the expected files ({_contents(folder)}); expected {expected}"
    )


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 python batch and nothing else: the only globals it resolves are the
    ones NumPy arrays are rebuilt with, so a crafted file cannot run code while it loads."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how protocol-2 pickles (the CIFAR files') carry bytes
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: not CIFAR-10 data")
        return super().find_class(module, name)


def _read_cifar_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with file.open("rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
        data = batch[b"data"] if b"data" in batch else batch["data"]
        labels = batch[b"labels"] if b"labels" in batch else batch["labels"]
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as exc:
        raise _error(
            f"dataset 'cifar10': cannot read {file} ({_describe(exc)}); expected a CIFAR-10 "
            'python batch (a pickled dict with b"data" and b"labels")'
        ) from exc
    data = np.asarray(data)
    side = _CIFAR_SIDE
    if data.ndim != 2 or data.shape[1] != 3 * side * side or data.dtype != np.uint8:
        raise _error(
            f"dataset 'cifar10': {file} holds data of shape {data.shape} and dtype {data.dtype}; "
            f"expected (N, {3 * side * side}) uint8 rows (3x{side}x{side}, channel-major)"
        )
    images = data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels)


def _load_cifar10(path: str) -> _Source:
    expected = f"a folder holding {_CIFAR_EXPECTED} (or a {_CIFAR_DIR} folder inside it)"
    folder = _folder("cifar10", path, expected)
    if (folder / _CIFAR_DIR).is_dir() and not (folder / _CIFAR_TEST).is_file():
        folder = folder / _CIFAR_DIR
    names = (*_CIFAR_BATCHES, _CIFAR_TEST)
    missing = [n for n in names if not (folder / n).is_file()]
    if len(missing) == len(names):
        raise _error(
            f"dataset 'cifar10': {folder} has none of the expected files ({_contents(folder)}); "
            f"expected {expected}"
        )
    if missing:
        raise _error(f"dataset 'cifar10': {folder} lacks {', '.join(missing)}; expected {expected}")
    train = [_read_cifar_batch(folder / n) for n in _CIFAR_BATCHES]
    x_test, y_test = _read_cifar_batch(folder / _CIFAR_TEST)
    x = np.concatenate([b[0] for b in train])
    y = np.concatenate([b[1] for b in train])
    return _make_source("cifar10", str(folder), (x, y), (x_test, y_test), _BUILTIN_CLASSES)


def _load_idx(path: str) -> _Source:
    expected = (
        "a folder holding one IDX images file (3 dimensions) and one IDX labels file "
        f"(1 dimension), or the standard {_IDX_EXPECTED}"
    )
    folder = _folder("idx", path, expected)
    source = _standard_idx("idx", folder, None)
    if source is not None:
        return source
    images: list[Path] = []
    labels: list[Path] = []
    for file in sorted(folder.iterdir()):
        if file.name.startswith(".") or not file.is_file():
            continue
        header = _peek_idx(file)
        if header is None:
            continue
        ndim = len(header[1])
        if ndim in (3, 4):
            images.append(file)
        elif ndim == 1:
            labels.append(file)
    if len(images) != 1 or len(labels) != 1:
        found = (
            f"found {len(images)} images file(s) [{', '.join(p.name for p in images)}] and "
            f"{len(labels)} labels file(s) [{', '.join(p.name for p in labels)}]"
        )
        raise _error(f"dataset 'idx': {folder}: {found}; expected {expected}")
    x, y = _read_pair("idx", images[0], labels[0])
    return _make_source("idx", str(folder), (x, y), None, None)


def _load_npz(path: str) -> _Source:
    file = Path(path).expanduser()
    expected = f"an .npz file holding {_NPZ_KEYS}"
    if not file.exists():
        raise _error(f"dataset 'npz': no such file {file}; expected {expected}")
    if not file.is_file():
        raise _error(f"dataset 'npz': {file} is not a file; expected {expected}")
    return _npz_source("npz", file, None)


def _load_source(name: str, path: str | None) -> _Source:
    if name == "digits":
        if path is not None:
            logger.warning("dataset 'digits' ships with scikit-learn; path %s is ignored", path)
        return _load_digits()
    if name in ("mnist", "fashion-mnist"):
        return _download(name) if path is None else _load_mnist_like(name, path)
    if name == "cifar10":
        return _download(name) if path is None else _load_cifar10(path)
    if name in ("idx", "npz"):
        if path is None:
            raise _error(f"dataset {name!r} needs a path; set path to its folder or file")
        return _load_idx(path) if name == "idx" else _load_npz(path)
    raise _error(f"data name {name!r} is not a known dataset; use one of {DATASETS}")


# --------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------


def _substream(seed: int, step: int) -> int:
    """An independent 32-bit seed for one splitting step."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def _draw(y: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..len(y)-1`` into (rest, drawn) with ``count`` drawn, by class if possible."""
    n = len(y)
    if count >= n:
        return np.empty(0, dtype=np.intp), np.random.RandomState(seed).permutation(n)
    from sklearn.model_selection import train_test_split

    positions = np.arange(n)
    try:
        rest, drawn = train_test_split(positions, test_size=count, stratify=y, random_state=seed)
    except ValueError:
        # Too few examples of some class (or too few drawn) to stratify.
        order = np.random.RandomState(seed).permutation(n)
        rest, drawn = order[count:], order[:count]
    return np.asarray(rest, dtype=np.intp), np.asarray(drawn, dtype=np.intp)


def _count(fraction: float, n: int) -> int:
    return max(1, int(fraction * n + 0.5))


def _as_float(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        out = x.astype(np.float32)
        out /= 255.0
    else:
        out = np.array(x, dtype=np.float32)
    out.flags.writeable = False
    return out


def _frozen(y: np.ndarray) -> np.ndarray:
    out = np.array(y, dtype=np.int32)
    out.flags.writeable = False
    return out


def _build(spec: DataSpec, source: _Source) -> Dataset:
    name = spec.name
    if source.x_test is None or source.y_test is None:
        total = len(source.y)
        n_test = _count(spec.test_fraction, total)
        if n_test >= total:
            raise _error(
                f"dataset {name!r}: {total} examples are too few to carve a test set "
                f"(test_fraction = {spec.test_fraction}); use more data"
            )
        pool, test = _draw(source.y, n_test, _substream(spec.seed, 0))
        x_test, y_test = source.x[test], source.y[test]
        n_val = _count(spec.validation_fraction, total)
    else:
        pool = np.arange(len(source.y))
        x_test, y_test = source.x_test, source.y_test
        n_val = _count(spec.validation_fraction, len(pool))
    if spec.subset is not None:
        if spec.subset > len(pool):
            raise _error(
                f"subset = {spec.subset:,} is larger than the {len(pool):,} examples of dataset "
                f"{name!r} available for training and validation; use subset <= {len(pool)} or "
                "None"
            )
        _, drawn = _draw(source.y[pool], spec.subset, _substream(spec.seed, 1))
        pool = pool[drawn]
        n_val = _count(spec.validation_fraction, spec.subset)
    if n_val >= len(pool):
        raise _error(
            f"dataset {name!r}: validation_fraction = {spec.validation_fraction} leaves no "
            f"training examples out of {len(pool)}; lower validation_fraction or use more data"
        )
    rest, val = _draw(source.y[pool], n_val, _substream(spec.seed, 2))
    train, val = pool[rest], pool[val]
    dataset = Dataset(
        name=name,
        x_train=_as_float(source.x[train]),
        y_train=_frozen(source.y[train]),
        x_val=_as_float(source.x[val]),
        y_val=_frozen(source.y[val]),
        x_test=_as_float(x_test),
        y_test=_frozen(y_test),
        num_classes=source.num_classes,
    )
    logger.debug("dataset %s (seed %d, subset %s)", dataset.summary(), spec.seed, spec.subset)
    return dataset


# --------------------------------------------------------------------------------------------
# Cache and entry point
# --------------------------------------------------------------------------------------------

_lock = threading.RLock()
_sources: dict[tuple[str, str | None], _Source] = {}
_datasets: dict[DataSpec, Dataset] = {}


def _source_key(spec: DataSpec) -> tuple[str, str | None]:
    if spec.path is None or spec.name == "digits":
        return spec.name, None
    return spec.name, str(Path(spec.path).expanduser().resolve())


def load_dataset(spec: DataSpec) -> Dataset:
    """Load and split a dataset; the same spec returns the same (read-only) object.

    Files are read once per process and shared between specs that differ only in how they split
    (seed, subset, fractions). Call :func:`clear_cache` after the files on disk change.
    Raises :class:`DataError` when the data cannot be found or read.
    """
    with _lock:
        cached = _datasets.get(spec)
        if cached is not None:
            return cached
        key = _source_key(spec)
        source = _sources.get(key)
        if source is None:
            source = _load_source(spec.name, spec.path)
            _sources[key] = source
            sizes = f"{len(source.y):,}" + (
                f" + {len(source.y_test):,} test" if source.y_test is not None else ""
            )
            logger.info("read dataset %r from %s: %s examples", spec.name, source.origin, sizes)
        dataset = _build(spec, source)
        _datasets[spec] = dataset
        return dataset


def clear_cache() -> None:
    """Forget every loaded dataset, so that the next :func:`load_dataset` reads the files again."""
    with _lock:
        _datasets.clear()
        _sources.clear()
