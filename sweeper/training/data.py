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

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweeper.training.data_sources import DATASETS, Source, as_float, load_source
from sweeper.training.idx_files import data_error

__all__ = ["MAX_SEED", "DataSpec", "Dataset", "clear_cache", "load_dataset"]

logger = logging.getLogger(__name__)


_MIN_SUBSET = 10
# the largest seed (study or data): NumPy's RandomState and keras.utils.set_random_seed take
# 32-bit seeds
MAX_SEED = 2**32 - 1


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
            raise data_error(
                f"data name {self.name!r} is not a known dataset; use one of {DATASETS}"
            )
        if self.path is not None:
            if isinstance(self.path, os.PathLike):
                object.__setattr__(self, "path", os.fspath(self.path))
            if not isinstance(self.path, str) or not self.path.strip():
                raise data_error(
                    f"data path {self.path!r} is invalid; give a non-empty folder or file path"
                )
        if self.path is None and self.name in ("idx", "npz"):
            what = "a folder of IDX files" if self.name == "idx" else "an .npz file"
            raise data_error(f"dataset {self.name!r} needs a path; set path to {what}")
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
                raise data_error(
                    f"{field} = {value!r} is invalid; it must be a number with 0 < x < 1"
                )
        total = self.validation_fraction + self.test_fraction
        if not total < 1.0:
            raise data_error(
                f"validation_fraction + test_fraction = {self.validation_fraction!r} + "
                f"{self.test_fraction!r} = {total:g} is invalid; the sum must be below 1"
            )
        if self.subset is not None and (
            isinstance(self.subset, bool)
            or not isinstance(self.subset, int)
            or self.subset < _MIN_SUBSET
        ):
            raise data_error(
                f"subset = {self.subset!r} is invalid; it must be an integer >= {_MIN_SUBSET} "
                "or None (all examples)"
            )
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or not 0 <= self.seed <= MAX_SEED
        ):
            raise data_error(
                f"seed = {self.seed!r} is invalid; it must be an integer in [0, {MAX_SEED}]"
            )


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


def _frozen(y: np.ndarray) -> np.ndarray:
    out = np.array(y, dtype=np.int32)
    out.flags.writeable = False
    return out


def _build(spec: DataSpec, source: Source) -> Dataset:
    name = spec.name
    if source.x_test is None or source.y_test is None:
        total = len(source.y)
        n_test = _count(spec.test_fraction, total)
        if n_test >= total:
            raise data_error(
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
            raise data_error(
                f"subset = {spec.subset:,} is larger than the {len(pool):,} examples of dataset "
                f"{name!r} available for training and validation; use subset <= {len(pool)} or "
                "None"
            )
        _, drawn = _draw(source.y[pool], spec.subset, _substream(spec.seed, 1))
        pool = pool[drawn]
        n_val = _count(spec.validation_fraction, spec.subset)
    if n_val >= len(pool):
        raise data_error(
            f"dataset {name!r}: validation_fraction = {spec.validation_fraction} leaves no "
            f"training examples out of {len(pool)}; lower validation_fraction or use more data"
        )
    rest, val = _draw(source.y[pool], n_val, _substream(spec.seed, 2))
    train, val = pool[rest], pool[val]
    dataset = Dataset(
        name=name,
        x_train=as_float(source.x[train]),
        y_train=_frozen(source.y[train]),
        x_val=as_float(source.x[val]),
        y_val=_frozen(source.y[val]),
        x_test=as_float(x_test),
        y_test=_frozen(y_test),
        num_classes=source.num_classes,
    )
    logger.debug("dataset %s (seed %d, subset %s)", dataset.summary(), spec.seed, spec.subset)
    return dataset


# --------------------------------------------------------------------------------------------
# Cache and entry point
# --------------------------------------------------------------------------------------------

_lock = threading.RLock()
_sources: dict[tuple[str, str | None], Source] = {}
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
            source = load_source(spec.name, spec.path)
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
