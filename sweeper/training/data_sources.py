"""Sources of the datasets (:mod:`sweeper.training.data`): raw arrays as read from disk, before splitting.

Each of :data:`DATASETS` has an offline path: ``digits`` ships with scikit-learn, ``mnist``,
``fashion-mnist`` and ``cifar10`` read their standard distribution files from a folder (or are
downloaded through Keras when no folder is given), and ``idx`` / ``npz`` read the user's own
files. A :class:`Source` holds ``x`` as uint8 or float32 ``(N, H, W, C)`` and ``y`` as int32.
"""

from __future__ import annotations

import logging
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.errors import DataError
from sweeper.training.idx_files import data_error, describe_error, peek_idx, read_idx

logger = logging.getLogger(
    "sweeper.training.data"
)  # one logger for the datasets: sweeper.training.data's

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "cifar10", "idx", "npz")


_BUILTIN_CLASSES = 10


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


# the first bytes of a zip archive (an .npz file is one), of one that holds no file
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


# examples the training split of a source must hold, and the most classes labels may name when
# their count is read from the labels (max label + 1): beyond, a label is no class index
MIN_EXAMPLES = 10
MAX_CLASSES = 10_000

# .npz files the Python API wrote from a person's arrays (this process): path -> what a message
# calls them, so that no message names a file the person never made (name_arrays_file)
_ARRAYS_FILES: dict[str, str] = {}


@dataclass(frozen=True, eq=False)
class Source:
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
        raise data_error(
            f"{where}: images have shape {x.shape}; expected a non-empty array of shape "
            "(N, H, W) or (N, H, W, C)"
        )
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer):
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise data_error(
                f"{where}: integer pixel values span {low}..{high}; expected uint8-range values "
                "0..255 or floats in [0, 1]"
            )
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise data_error(f"{where}: images contain NaN or infinite values; fix the data")
        low_f, high_f = float(x.min()), float(x.max())
        if low_f < 0.0 or high_f > 1.0:
            logger.warning(
                "%s: float pixel values span %g..%g, outside [0, 1]; they are used unscaled",
                where,
                low_f,
                high_f,
            )
        return x
    raise data_error(f"{where}: images have dtype {x.dtype}; expected uint8, integers or floats")


def _labels(y: np.ndarray, count: int, where: str) -> np.ndarray:
    """Check a label array and bring it to int32 of shape (N,)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise data_error(f"{where}: labels have shape {y.shape}; expected (N,) class indices")
    if len(y) != count:
        raise data_error(
            f"{where}: {len(y):,} labels for {count:,} images; images and labels must pair up"
        )
    if np.issubdtype(y.dtype, np.floating):
        if not (np.isfinite(y).all() and np.array_equal(y, np.round(y))):
            raise data_error(
                f"{where}: labels are not whole numbers; expected class indices 0..K-1"
            )
    elif not np.issubdtype(y.dtype, np.integer):
        raise data_error(f"{where}: labels have dtype {y.dtype}; expected integer class indices")
    if count and (y.min() < 0 or y.max() > np.iinfo(np.int32).max):
        raise data_error(
            f"{where}: labels span {y.min()}..{y.max()}; expected class indices 0..K-1"
        )
    return y.astype(np.int32)


def _make_source(
    name: str,
    origin: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None,
    num_classes: int | None = None,
) -> Source:
    """Validate raw arrays and wrap them; ``num_classes`` None means max label + 1."""
    where = _ARRAYS_FILES.get(origin) or f"dataset {name!r} ({origin})"
    x = _images(np.asarray(train[0]), where)
    y = _labels(np.asarray(train[1]), len(x), where)
    x_test = y_test = None
    if test is not None:
        x_test = _images(np.asarray(test[0]), f"{where}, test split")
        y_test = _labels(np.asarray(test[1]), len(x_test), f"{where}, test split")
        if x_test.shape[1:] != x.shape[1:]:
            raise data_error(
                f"{where}: test images are {x_test.shape[1:]} but training images are "
                f"{x.shape[1:]}; both splits must have the same image shape"
            )
        if x_test.dtype != x.dtype:
            x, x_test = as_float(x), as_float(x_test)
    top = int(max(y.max(), y_test.max() if y_test is not None else 0)) + 1
    inferred = num_classes is None
    if num_classes is None:
        num_classes = top
    elif top > num_classes:
        raise data_error(
            f"{where}: a label is {top - 1}; {name} has {num_classes} classes (0..{num_classes - 1})"
        )
    check_class_count(where, y, num_classes if inferred else None)
    for array in (x, y, x_test, y_test):
        if array is not None:
            array.flags.writeable = False
    return Source(x, y, x_test, y_test, num_classes, origin)


def name_arrays_file(path: Path, where: str) -> None:
    """Let messages about the arrays of ``path``, an .npz file the Python API wrote from a
    person's arrays, call them ``where`` (``"data"``) instead of naming the file (this process)."""
    _ARRAYS_FILES[str(path)] = where


def check_class_count(where: str, y: np.ndarray, inferred: int | None) -> None:
    """Refuse training labels no classifier can learn from: too few examples, one class, or
    labels that are no class indices (``inferred``: the class count read from the labels, max
    label + 1, over both splits; None for a dataset of known classes)."""
    n = len(y)
    if n < MIN_EXAMPLES:
        raise data_error(
            f"{where}: {n} training examples are too few to tune on; give at least {MIN_EXAMPLES}"
        )
    present = np.unique(y)
    if len(present) < 2:
        raise data_error(
            f"{where}: every training label is {int(present[0])}, one class; a classifier "
            "needs examples of at least 2 classes"
        )
    if inferred is not None and (inferred > MAX_CLASSES or 2 * inferred > n):
        raise data_error(
            f"{where}: labels up to {inferred - 1:,} make {inferred:,} classes for {n:,} training "
            f"examples; labels must be class indices 0..K-1 with at least 2 examples per "
            f"class and K <= {MAX_CLASSES:,}"
        )


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
        raise data_error(f"dataset {name!r}: no such directory {folder}; expected {expected}")
    if not folder.is_dir():
        raise data_error(f"dataset {name!r}: {folder} is not a directory; expected {expected}")
    return folder


def _read_pair(name: str, images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(images), read_idx(labels)
    if x.ndim not in (3, 4) or y.ndim != 1:
        raise data_error(
            f"dataset {name!r}: {images.name} has {x.ndim} dimensions and {labels.name} has "
            f"{y.ndim}; expected images with 3 (N, H, W) and labels with 1 (N)"
        )
    return x, y


def _standard_idx(name: str, folder: Path, num_classes: int | None) -> Source | None:
    """Read the standard train-/t10k- IDX files from ``folder``; None if none are there."""
    found = {base: _one_of(folder, base) for base in _IDX_NAMES}
    pairs: list[tuple[Path, Path]] = []
    for images_name, labels_name in ((_TRAIN_IMAGES, _TRAIN_LABELS), (_TEST_IMAGES, _TEST_LABELS)):
        images, labels = found[images_name], found[labels_name]
        if (images is None) != (labels is None):
            have, missing = (images_name, labels_name) if images else (labels_name, images_name)
            raise data_error(
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


def _npz_source(name: str, file: Path, num_classes: int | None) -> Source:
    try:
        with file.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise data_error(f"dataset {name!r}: cannot read {file} ({describe_error(exc)})") from None
    if head not in _ZIP_MAGIC:
        raise data_error(
            f"dataset {name!r}: not a .npz archive: {file} (an .npz file is a zip archive, as "
            f"numpy.savez writes); give a numpy .npz file holding {_NPZ_KEYS}"
        )
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
                raise data_error(
                    f"dataset {name!r}: {file} holds the arrays {sorted(keys)}; expected "
                    f"{_NPZ_KEYS}"
                )
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise data_error(
            f"dataset {name!r}: cannot read {file} as an .npz archive ({describe_error(exc)}); "
            f"expected a numpy .npz file holding {_NPZ_KEYS}"
        ) from exc
    return _make_source(name, str(file), train, test, num_classes)


def _download(name: str) -> Source:
    """Load a built-in dataset through Keras, which downloads and caches it."""
    hint = {
        "mnist": f"a folder holding {_IDX_EXPECTED} or mnist.npz",
        "fashion-mnist": f"a folder holding {_IDX_EXPECTED}",
        "cifar10": f"a folder holding the CIFAR-10 python batches ({_CIFAR_EXPECTED})",
    }[name]
    try:
        from sweeper.training.backend import load_keras

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
        raise data_error(
            f"dataset {name!r}: download through Keras failed ({describe_error(exc)}); on a machine "
            f"without internet set path to {hint}"
        ) from exc
    return _make_source(name, "keras.datasets", (x_train, y_train), (x_test, y_test), 10)


def _load_digits() -> Source:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[..., np.newaxis]
    return _make_source("digits", "sklearn.datasets.load_digits", (x, bunch.target), None, 10)


def _load_mnist_like(name: str, path: str) -> Source:
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
    raise data_error(
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
        raise data_error(
            f"dataset 'cifar10': cannot read {file} ({describe_error(exc)}); expected a CIFAR-10 "
            'python batch (a pickled dict with b"data" and b"labels")'
        ) from exc
    data = np.asarray(data)
    side = _CIFAR_SIDE
    if data.ndim != 2 or data.shape[1] != 3 * side * side or data.dtype != np.uint8:
        raise data_error(
            f"dataset 'cifar10': {file} holds data of shape {data.shape} and dtype {data.dtype}; "
            f"expected (N, {3 * side * side}) uint8 rows (3x{side}x{side}, channel-major)"
        )
    images = data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels)


def _load_cifar10(path: str) -> Source:
    expected = f"a folder holding {_CIFAR_EXPECTED} (or a {_CIFAR_DIR} folder inside it)"
    folder = _folder("cifar10", path, expected)
    if (folder / _CIFAR_DIR).is_dir() and not (folder / _CIFAR_TEST).is_file():
        folder = folder / _CIFAR_DIR
    names = (*_CIFAR_BATCHES, _CIFAR_TEST)
    missing = [n for n in names if not (folder / n).is_file()]
    if len(missing) == len(names):
        raise data_error(
            f"dataset 'cifar10': {folder} has none of the expected files ({_contents(folder)}); "
            f"expected {expected}"
        )
    if missing:
        raise data_error(
            f"dataset 'cifar10': {folder} lacks {', '.join(missing)}; expected {expected}"
        )
    train = [_read_cifar_batch(folder / n) for n in _CIFAR_BATCHES]
    x_test, y_test = _read_cifar_batch(folder / _CIFAR_TEST)
    x = np.concatenate([b[0] for b in train])
    y = np.concatenate([b[1] for b in train])
    return _make_source("cifar10", str(folder), (x, y), (x_test, y_test), _BUILTIN_CLASSES)


def _load_idx(path: str) -> Source:
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
        header = peek_idx(file)
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
        raise data_error(f"dataset 'idx': {folder}: {found}; expected {expected}")
    x, y = _read_pair("idx", images[0], labels[0])
    return _make_source("idx", str(folder), (x, y), None, None)


def _load_npz(path: str) -> Source:
    file = Path(path).expanduser()
    expected = f"an .npz file holding {_NPZ_KEYS}"
    if not file.exists():
        raise data_error(f"dataset 'npz': no such file {file}; expected {expected}")
    if not file.is_file():
        raise data_error(f"dataset 'npz': {file} is not a file; expected {expected}")
    return _npz_source("npz", file, None)


def load_source(name: str, path: str | None) -> Source:
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
            raise data_error(f"dataset {name!r} needs a path; set path to its folder or file")
        return _load_idx(path) if name == "idx" else _load_npz(path)
    raise data_error(f"data name {name!r} is not a known dataset; use one of {DATASETS}")


def as_float(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        out = x.astype(np.float32)
        out /= 255.0
    else:
        out = np.array(x, dtype=np.float32)
    out.flags.writeable = False
    return out
