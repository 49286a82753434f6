"""Tests for sweeper.training.data: real files on disk, no network."""

from __future__ import annotations

import gzip
import logging
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sweeper.errors import DataError, SweeperError
from sweeper.training.data import Dataset, DataSpec, clear_cache, load_dataset
from sweeper.training.data_sources import DATASETS
from sweeper.training.idx_files import read_idx

MNIST_T10K = Path(__file__).resolve().parents[2] / "studies" / "data" / "mnist-t10k"
MNIST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(scope="module")
def mnist_dir() -> Path:
    return MNIST_T10K


def test_shipped_mnist_test_set_is_the_original_with_its_licence() -> None:
    import hashlib

    digests = {
        "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
    }
    for name, md5 in digests.items():
        raw = gzip.decompress((MNIST_T10K / name).read_bytes())
        assert hashlib.md5(raw).hexdigest() == md5, name
    assert "CC BY-SA 3.0" in (MNIST_T10K / "LICENSE.md").read_text()
    assert "LeCun" in (MNIST_T10K / "README.md").read_text()


@pytest.fixture(scope="module")
def mnist_arrays(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")
    y = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    return x, y


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}
    code = codes[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def small_images(n: int, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 6, 5), dtype=np.uint8)
    y = (np.arange(n) % classes).astype(np.uint8)
    return x, y


def assert_one_line_error(excinfo: pytest.ExceptionInfo[DataError], *parts: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def assert_well_formed(ds: Dataset, shape: tuple[int, ...], classes: int) -> None:
    assert ds.input_shape == shape
    assert ds.num_classes == classes
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32
        assert y.dtype == np.int32
        assert x.shape == (len(y), *shape)
        assert y.ndim == 1
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert int(y.min()) >= 0 and int(y.max()) < classes


# --- DataSpec validation ----------------------------------------------------------------------


def test_datasets_tuple() -> None:
    assert DATASETS == ("digits", "mnist", "fashion-mnist", "cifar10", "idx", "npz")


def test_dataspec_defaults() -> None:
    spec = DataSpec()
    assert (spec.name, spec.path, spec.subset, spec.seed) == ("digits", None, None, 0)
    assert spec.validation_fraction == 0.2 and spec.test_fraction == 0.2
    assert DataSpec() == DataSpec() and hash(DataSpec()) == hash(DataSpec())


@pytest.mark.parametrize(
    ("kwargs", "parts"),
    [
        ({"name": "imagenet"}, ("imagenet", "digits", "cifar10")),
        ({"validation_fraction": 0.0}, ("validation_fraction", "0.0", "0 < x < 1")),
        ({"validation_fraction": 1.5}, ("validation_fraction", "1.5", "0 < x < 1")),
        ({"test_fraction": -0.1}, ("test_fraction", "-0.1", "0 < x < 1")),
        ({"test_fraction": float("nan")}, ("test_fraction", "nan")),
        ({"validation_fraction": 0.6, "test_fraction": 0.5}, ("0.6", "0.5", "below 1")),
        ({"subset": 5}, ("subset", "5", ">= 10")),
        ({"subset": True}, ("subset", "True")),
        ({"seed": -1}, ("seed", "-1")),
        ({"name": "npz"}, ("'npz'", "needs a path")),
        ({"name": "idx"}, ("'idx'", "needs a path")),
        ({"name": "mnist", "path": ""}, ("path", "non-empty")),
    ],
)
def test_dataspec_rejects_bad_values(kwargs: dict[str, object], parts: tuple[str, ...]) -> None:
    with pytest.raises(DataError) as excinfo:
        DataSpec(**kwargs)  # type: ignore[arg-type]
    assert_one_line_error(excinfo, *parts)
    assert isinstance(excinfo.value, SweeperError)


def test_dataspec_normalises_numpy_scalars() -> None:
    spec = DataSpec(subset=np.int64(50), seed=np.int32(3), validation_fraction=np.float64(0.1))  # type: ignore[arg-type]
    assert type(spec.subset) is int and type(spec.seed) is int
    assert type(spec.validation_fraction) is float
    assert spec == DataSpec(subset=50, seed=3, validation_fraction=0.1)


def test_dataspec_accepts_pathlike(tmp_path: Path) -> None:
    spec = DataSpec("npz", path=tmp_path / "d.npz")  # type: ignore[arg-type]
    assert spec.path == str(tmp_path / "d.npz")


def test_import_is_light() -> None:
    code = (
        "import sys, sweeper.training.data; "
        "bad = [m for m in ('keras', 'tensorflow', 'sklearn') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- digits -------------------------------------------------------------------------------------


def test_digits_shapes_and_split() -> None:
    ds = load_dataset(DataSpec())
    assert_well_formed(ds, (8, 8, 1), 10)
    total = 1797
    assert len(ds.y_test) == round(0.2 * total)
    assert len(ds.y_val) == round(0.2 * total)
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == total
    assert float(ds.x_train.max()) == 1.0  # 16 / 16
    assert ds.summary() == "digits: 1,079 train / 359 validation / 359 test, 8x8x1, 10 classes"
    # Stratified: every class appears in every split.
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert set(np.unique(y)) == set(range(10))


def test_digits_matches_sklearn() -> None:
    from sklearn.datasets import load_digits

    ds = load_dataset(DataSpec(seed=3))
    images = load_digits().images.astype(np.float32) / 16
    everything = np.concatenate([ds.x_train, ds.x_val, ds.x_test])[..., 0]
    # Same multiset of images: compare after sorting rows.
    key = np.lexsort(everything.reshape(len(everything), -1).T)
    ref = np.lexsort(images.reshape(len(images), -1).T)
    np.testing.assert_array_equal(everything[key], images[ref])


def test_arrays_are_read_only() -> None:
    ds = load_dataset(DataSpec())
    with pytest.raises(ValueError):
        ds.x_train[0, 0, 0, 0] = 0.5
    with pytest.raises(ValueError):
        ds.y_test[0] = 1


def test_cache_returns_same_object() -> None:
    spec = DataSpec(seed=11)
    first = load_dataset(spec)
    assert load_dataset(DataSpec(seed=11)) is first
    assert load_dataset(DataSpec(seed=12)) is not first
    clear_cache()
    again = load_dataset(spec)
    assert again is not first
    np.testing.assert_array_equal(again.x_train, first.x_train)
    np.testing.assert_array_equal(again.y_val, first.y_val)


# --- MNIST test set (real files) ------------------------------------------------------------------


def test_mnist_t10k_single_split(mnist_dir: Path) -> None:
    ds = load_dataset(DataSpec("mnist", path=str(mnist_dir)))
    assert_well_formed(ds, (28, 28, 1), 10)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (6000, 2000, 2000)
    assert ds.summary() == "mnist: 6,000 train / 2,000 validation / 2,000 test, 28x28x1, 10 classes"
    counts = np.bincount(np.concatenate([ds.y_train, ds.y_val, ds.y_test]), minlength=10)
    assert counts.tolist() == MNIST_COUNTS
    # Stratified carving keeps the class balance in the test set.
    test_counts = np.bincount(ds.y_test, minlength=10)
    assert np.all(np.abs(test_counts - np.array(MNIST_COUNTS) * 0.2) <= 1)


def test_mnist_pixels_scaled(mnist_dir: Path, mnist_arrays: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = mnist_arrays
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and np.bincount(y).tolist() == MNIST_COUNTS
    ds = load_dataset(DataSpec("mnist", path=str(mnist_dir)))
    assert float(ds.x_train.max()) == 1.0
    # Every training image is one of the file's images divided by 255, paired with its label.
    first = ds.x_train[0, ..., 0]
    matches = np.flatnonzero((x == np.round(first * 255).astype(np.uint8)).all(axis=(1, 2)))
    assert len(matches) >= 1
    assert int(y[matches[0]]) == int(ds.y_train[0])
    np.testing.assert_allclose(first, x[matches[0]] / 255.0, rtol=0, atol=1e-7)


def test_mnist_subset_sizes(mnist_dir: Path) -> None:
    ds = load_dataset(DataSpec("mnist", path=str(mnist_dir), subset=2000))
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (1600, 400, 2000)
    ds = load_dataset(DataSpec("mnist", path=str(mnist_dir), subset=8000))
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (6400, 1600, 2000)


def test_mnist_determinism(mnist_dir: Path) -> None:
    path = str(mnist_dir)
    a = load_dataset(DataSpec("mnist", path=path, subset=500, seed=7))
    clear_cache()
    b = load_dataset(DataSpec("mnist", path=path, subset=500, seed=7))
    assert a is not b
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    # The test set does not depend on the subset, nor on the validation fraction.
    c = load_dataset(DataSpec("mnist", path=path, subset=3000, seed=7))
    d = load_dataset(DataSpec("mnist", path=path, seed=7, validation_fraction=0.3))
    np.testing.assert_array_equal(a.x_test, c.x_test)
    np.testing.assert_array_equal(a.y_test, d.y_test)
    # A different seed gives a different split.
    e = load_dataset(DataSpec("mnist", path=path, subset=500, seed=8))
    assert not np.array_equal(a.y_train, e.y_train)


def test_splits_are_disjoint(mnist_dir: Path, mnist_arrays: tuple[np.ndarray, np.ndarray]) -> None:
    ds = load_dataset(DataSpec("mnist", path=str(mnist_dir), seed=1))
    x, _ = mnist_arrays
    # Hash every image to its row in the file; the three splits partition the 10,000 rows
    # (MNIST t10k has a few duplicate images, so compare multisets of hashes).
    flat = x.reshape(len(x), -1)
    file_hashes = sorted(hash(row.tobytes()) for row in flat)
    split_hashes = sorted(
        hash(np.round(img * 255).astype(np.uint8).reshape(-1).tobytes())
        for split in (ds.x_train, ds.x_val, ds.x_test)
        for img in split
    )
    assert split_hashes == file_hashes


def test_files_read_once_per_process(mnist_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    clear_cache()
    with caplog.at_level(logging.INFO, logger="sweeper.training.data"):
        load_dataset(DataSpec("mnist", path=str(mnist_dir), subset=100))
        load_dataset(DataSpec("mnist", path=str(mnist_dir), subset=200, seed=2))
        load_dataset(DataSpec("mnist", path=str(mnist_dir) + "/"))
    reads = [r for r in caplog.records if r.getMessage().startswith("read dataset")]
    assert len(reads) == 1


def test_subset_larger_than_pool(mnist_dir: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("mnist", path=str(mnist_dir), subset=9000))
    assert_one_line_error(excinfo, "9,000", "8,000", "subset")
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec(subset=5000))
    assert_one_line_error(excinfo, "5,000", "1,438")


def test_idx_dataset_with_standard_names(mnist_dir: Path) -> None:
    ds = load_dataset(DataSpec("idx", path=str(mnist_dir)))
    assert ds.name == "idx"
    assert_well_formed(ds, (28, 28, 1), 10)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (6000, 2000, 2000)


def test_raw_idx_reads_the_same(
    tmp_path: Path, mnist_dir: Path, mnist_arrays: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = mnist_arrays
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = gzip.decompress((mnist_dir / f"{name}.gz").read_bytes())
        (tmp_path / name).write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-images-idx3-ubyte"), x)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "t10k-labels-idx1-ubyte")), y)
    raw_ds = load_dataset(DataSpec("mnist", path=str(tmp_path), seed=4))
    gz_ds = load_dataset(DataSpec("mnist", path=str(mnist_dir), seed=4))
    np.testing.assert_array_equal(raw_ds.x_train, gz_ds.x_train)
    np.testing.assert_array_equal(raw_ds.y_test, gz_ds.y_test)


def test_gzip_detected_by_magic_not_extension(
    tmp_path: Path, mnist_dir: Path, mnist_arrays: tuple[np.ndarray, np.ndarray]
) -> None:
    # A gzip file without .gz, and a raw file named .gz.
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", tmp_path / "labels")
    raw = gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "labels-raw.gz").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), mnist_arrays[1])
    np.testing.assert_array_equal(read_idx(tmp_path / "labels-raw.gz"), mnist_arrays[1])


def test_mnist_from_keras_npz(tmp_path: Path, mnist_arrays: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = mnist_arrays
    np.savez(
        tmp_path / "mnist.npz",
        x_train=x[:800],
        y_train=y[:800],
        x_test=x[800:1000],
        y_test=y[800:1000],
    )
    for path in (tmp_path, tmp_path / "mnist.npz"):
        ds = load_dataset(DataSpec("mnist", path=str(path)))
        assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (640, 160, 200)
        np.testing.assert_array_equal(ds.y_test, y[800:1000])
        np.testing.assert_allclose(ds.x_test[..., 0], x[800:1000] / 255.0, atol=1e-7)


def test_fashion_mnist_with_train_and_test_files(tmp_path: Path) -> None:
    x, y = small_images(120, classes=10)
    xt, yt = small_images(30, classes=10, seed=1)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x, compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y, compress=True)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", xt)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", yt)
    ds = load_dataset(DataSpec("fashion-mnist", path=str(tmp_path), validation_fraction=0.25))
    assert_well_formed(ds, (6, 5, 1), 10)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (90, 30, 30)
    # The test split is the t10k files, whole and in order.
    np.testing.assert_array_equal(ds.y_test, yt)
    np.testing.assert_allclose(ds.x_test[..., 0], xt / 255.0, atol=1e-7)


def test_train_pair_only_is_single_split(tmp_path: Path) -> None:
    x, y = small_images(100, classes=10)
    write_idx(tmp_path / "train-images-idx3-ubyte", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte", y)
    ds = load_dataset(DataSpec("mnist", path=str(tmp_path)))
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (60, 20, 20)


# --- idx with arbitrary names -------------------------------------------------------------------


def test_idx_dataset_arbitrary_names(tmp_path: Path) -> None:
    x, y = small_images(50, classes=5)
    write_idx(tmp_path / "pictures.bin", x, compress=True)
    write_idx(tmp_path / "tags.dat", y)
    (tmp_path / "README.txt").write_text("not an IDX file\n")
    ds = load_dataset(DataSpec("idx", path=str(tmp_path)))
    assert_well_formed(ds, (6, 5, 1), 5)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (30, 10, 10)
    counts = np.bincount(np.concatenate([ds.y_train, ds.y_val, ds.y_test]))
    assert counts.tolist() == [10] * 5


def test_idx_dataset_ambiguous_files(tmp_path: Path) -> None:
    x, y = small_images(20)
    write_idx(tmp_path / "a.idx", x)
    write_idx(tmp_path / "b.idx", x)
    write_idx(tmp_path / "c.idx", y)
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("idx", path=str(tmp_path)))
    assert_one_line_error(excinfo, str(tmp_path), "a.idx", "b.idx", "one IDX images file")


def test_idx_dataset_mismatched_counts(tmp_path: Path) -> None:
    x, y = small_images(20)
    write_idx(tmp_path / "images", x)
    write_idx(tmp_path / "labels", y[:15])
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("idx", path=str(tmp_path)))
    assert_one_line_error(excinfo, "15 labels for 20 images")


# --- npz ----------------------------------------------------------------------------------------


def test_npz_single_split(tmp_path: Path) -> None:
    x, y = small_images(100, classes=4)
    np.savez(tmp_path / "data.npz", x=x, y=y.astype(np.int64))
    ds = load_dataset(DataSpec("npz", path=str(tmp_path / "data.npz")))
    assert_well_formed(ds, (6, 5, 1), 4)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (60, 20, 20)


def test_npz_train_test_float_rgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((40, 4, 4, 3), dtype=np.float32)
    xt = rng.random((10, 4, 4, 3)).astype(np.float64)
    y, yt = np.arange(40) % 7, np.arange(10) % 7
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt.reshape(-1, 1))
    ds = load_dataset(DataSpec("npz", path=str(tmp_path / "d.npz"), validation_fraction=0.25))
    assert_well_formed(ds, (4, 4, 3), 7)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (30, 10, 10)
    # Float data is kept (as float32), not rescaled.
    np.testing.assert_allclose(ds.x_test, xt.astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, yt)
    assert ds.summary() == "npz: 30 train / 10 validation / 10 test, 4x4x3, 7 classes"


def test_npz_wrong_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", images=np.zeros((10, 2, 2)), targets=np.zeros(10))
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("npz", path=str(tmp_path / "d.npz")))
    assert_one_line_error(excinfo, "images", "targets", "x_train", "y_test")


def test_npz_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("npz", path=str(tmp_path / "nope.npz")))
    assert_one_line_error(excinfo, "no such file", "nope.npz", "x_train")
    (tmp_path / "bad.npz").write_bytes(b"this is not a zip archive")
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("npz", path=str(tmp_path / "bad.npz")))
    assert_one_line_error(excinfo, "bad.npz", ".npz")


@pytest.mark.parametrize(
    "content",
    [b"hello, this is a text file\n", b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'}", b""],
    ids=["text", "npy", "empty"],
)
def test_a_file_that_is_no_npz_archive_is_one_line(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "t.npz").write_bytes(content)
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("npz", path=str(tmp_path / "t.npz")))
    message = assert_one_line_error(excinfo, "not a .npz archive: ", "t.npz", "numpy.savez")
    assert "pickle" not in message


LABEL_CASES = {
    # labels a classifier cannot learn from, refused when the data is read (F7)
    "one-class": (np.zeros(100, np.int64), ["every training label is 0", "one class", "2 classes"]),
    "too-few": (np.arange(3) % 2, ["3 training examples", "at least 10"]),
    "labels-far-beyond": (
        np.r_[np.arange(99) % 4, 2_000_000_000],
        ["labels up to 2,000,000,000", "class indices 0..K-1", "K <= 10,000"],
    ),
    "more-classes-than-examples": (
        np.arange(40),
        ["labels up to 39", "40 classes for 40 training examples", "2 examples per class"],
    ),
}


@pytest.mark.parametrize("case", sorted(LABEL_CASES))
def test_labels_no_classifier_can_learn_from_are_one_line(tmp_path: Path, case: str) -> None:
    y, parts = LABEL_CASES[case]
    x, _ = small_images(len(y))
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("npz", path=str(tmp_path / "d.npz")))
    assert_one_line_error(excinfo, "d.npz", *parts)


def test_labels_with_a_test_split_count_both_for_the_classes(tmp_path: Path) -> None:
    x, y = small_images(30, classes=3)
    xt, _ = small_images(10)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=np.full(10, 9000))
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("npz", path=str(tmp_path / "d.npz")))
    assert_one_line_error(excinfo, "labels up to 9,000", "30 training examples")


# --- CIFAR-10 -----------------------------------------------------------------------------------


def cifar_pattern(index: int) -> np.ndarray:
    """A 32x32x3 uint8 image: red varies by row, green by column, blue encodes ``index``."""
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    image = np.empty((32, 32, 3), dtype=np.uint8)
    image[..., 0] = rows * 8
    image[..., 1] = cols * 4 + 1
    image[..., 2] = index % 256
    return image


def write_cifar(folder: Path, per_batch: int = 20) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        indices = range(b * per_batch, (b + 1) * per_batch)
        images = np.stack([cifar_pattern(i) for i in indices])
        data = images.transpose(0, 3, 1, 2).reshape(per_batch, 3072)  # channel-major rows
        batch = {b"batch_label": name.encode(), b"data": data, b"labels": [i % 10 for i in indices]}
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f)


def test_cifar10_batches(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    ds = load_dataset(DataSpec("cifar10", path=str(tmp_path)))
    assert_well_formed(ds, (32, 32, 3), 10)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (80, 20, 20)
    assert ds.summary() == "cifar10: 80 train / 20 validation / 20 test, 32x32x3, 10 classes"
    # The test batch is kept whole and in order; channel order is R, G, B.
    for k in range(20):
        np.testing.assert_allclose(ds.x_test[k], cifar_pattern(100 + k) / 255.0, atol=1e-7)
    assert ds.y_test.tolist() == [(100 + k) % 10 for k in range(20)]
    assert float(ds.x_test[0, 31, 0, 0]) == pytest.approx(248 / 255)  # red: row 31
    assert float(ds.x_test[0, 0, 31, 1]) == pytest.approx(125 / 255)  # green: column 31
    # Training images keep their labels: blue encodes the index, the label is index % 10.
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val)):
        index = np.round(x[:, 0, 0, 2] * 255).astype(int)
        assert np.array_equal(index % 10, y)
    everything = np.concatenate([ds.x_train, ds.x_val])[:, 0, 0, 2]
    assert sorted(np.round(everything * 255).astype(int).tolist()) == list(range(100))


def test_cifar10_nested_folder(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py", per_batch=10)
    ds = load_dataset(DataSpec("cifar10", path=str(tmp_path), validation_fraction=0.1))
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (45, 5, 10)


def test_cifar10_missing_batch(tmp_path: Path) -> None:
    write_cifar(tmp_path, per_batch=10)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("cifar10", path=str(tmp_path)))
    assert_one_line_error(excinfo, "data_batch_3", str(tmp_path))


def test_cifar10_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("cifar10", path=str(tmp_path)))
    assert_one_line_error(excinfo, str(tmp_path), "data_batch_1", "test_batch", "empty")


def test_cifar10_corrupt_batch(tmp_path: Path) -> None:
    write_cifar(tmp_path, per_batch=10)
    (tmp_path / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("cifar10", path=str(tmp_path)))
    assert_one_line_error(excinfo, "test_batch", "CIFAR-10")


# --- error cases --------------------------------------------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "x" / "y"
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("mnist", path=str(missing)))
    assert_one_line_error(excinfo, "'mnist'", "no such directory", str(missing), *IDX_NAMES)


def test_directory_without_expected_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("fashion-mnist", path=str(tmp_path)))
    message = assert_one_line_error(excinfo, str(tmp_path), "notes.txt", "gzip or raw", *IDX_NAMES)
    assert "mnist.npz" not in message
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("mnist", path=str(tmp_path)))
    assert_one_line_error(excinfo, "mnist.npz", *IDX_NAMES)
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("idx", path=str(tmp_path)))
    assert_one_line_error(excinfo, "found 0 images file(s)", "t10k-images-idx3-ubyte")


def test_half_a_pair(tmp_path: Path) -> None:
    x, _ = small_images(20)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x, compress=True)
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("mnist", path=str(tmp_path)))
    assert_one_line_error(excinfo, "t10k-images-idx3-ubyte", "not t10k-labels-idx1-ubyte")


def test_path_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("mnist", path=str(file)))
    assert_one_line_error(excinfo, "not a directory", str(file))


def test_corrupt_idx_magic(tmp_path: Path) -> None:
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    with pytest.raises(DataError) as excinfo:
        read_idx(bad)
    assert_one_line_error(excinfo, str(bad), "bad magic number", "12 34 56 78", "00 00")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("mnist", path=str(tmp_path)))
    assert_one_line_error(excinfo, "bad magic number")


def test_idx_size_checks(tmp_path: Path) -> None:
    x, _ = small_images(10)
    good = write_idx(tmp_path / "good", x).read_bytes()
    (tmp_path / "short").write_bytes(good[:-7])
    (tmp_path / "long").write_bytes(good + b"\x00")
    (tmp_path / "header").write_bytes(good[:9])
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DataError) as excinfo:
        read_idx(tmp_path / "short")
    assert_one_line_error(excinfo, "truncated", "(10, 6, 5)")
    with pytest.raises(DataError) as excinfo:
        read_idx(tmp_path / "long")
    assert_one_line_error(excinfo, "trailing bytes")
    with pytest.raises(DataError) as excinfo:
        read_idx(tmp_path / "header")
    assert_one_line_error(excinfo, "truncated header")
    with pytest.raises(DataError) as excinfo:
        read_idx(tmp_path / "empty")
    assert_one_line_error(excinfo, "0 bytes")


def test_idx_corrupt_gzip_and_missing(tmp_path: Path) -> None:
    x, _ = small_images(10)
    data = gzip.compress(write_idx(tmp_path / "raw", x).read_bytes())
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as excinfo:
        read_idx(tmp_path / "cut.gz")
    assert_one_line_error(excinfo, "corrupt gzip", "cut.gz")
    with pytest.raises(DataError) as excinfo:
        read_idx(tmp_path / "absent")
    assert_one_line_error(excinfo, "no such file", "absent")


def test_read_idx_other_dtypes(tmp_path: Path) -> None:
    values = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "i", values)), values)
    floats = np.linspace(0, 1, 12, dtype=np.float32)
    result = read_idx(write_idx(tmp_path / "f", floats, compress=True))
    assert result.dtype == np.float32 and result.dtype.isnative
    np.testing.assert_array_equal(result, floats)


def test_label_out_of_range_for_builtin(tmp_path: Path) -> None:
    x, _ = small_images(20)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", x)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(20, 12, dtype=np.uint8))
    with pytest.raises(DataError) as excinfo:
        load_dataset(DataSpec("mnist", path=str(tmp_path)))
    assert_one_line_error(excinfo, "12", "10 classes")


def test_validation_fraction_leaves_no_training_data(tmp_path: Path) -> None:
    x, y = small_images(40)
    np.savez(tmp_path / "d.npz", x_train=x[:10], y_train=y[:10], x_test=x[10:], y_test=y[10:])
    with pytest.raises(DataError) as excinfo:
        load_dataset(
            DataSpec(
                "npz", path=str(tmp_path / "d.npz"), validation_fraction=0.96, test_fraction=0.01
            )
        )
    assert_one_line_error(excinfo, "validation_fraction", "no training examples")
