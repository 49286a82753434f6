"""Tests for sweeper.search.lrfind: the curve analysis as tables, real range tests on real MNIST images."""

from __future__ import annotations

import gc
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from sweeper.analysis.lrfind_plot import draw, plot_data
from sweeper.cli.commands import main
from sweeper.errors import LrFindError
from sweeper.search.lrfind import lr_find, study_optimizers, suggest_range
from sweeper.store.lrfind_store import latest_lr_find, save_lr_find
from sweeper.store.store import Store
from sweeper.store.tables import LrFindRow
from sweeper.studyfile.config import parse_study
from sweeper.studyfile.dimensions import Choices, Fixed, Range
from sweeper.studyfile.study_spec import SpaceSpec, StudySpec
from sweeper.training.data import load_dataset
from sweeper.training.families.constant import Constant
from sweeper.training.lr_curve import LrFindResult, analyse, growth_factor, smooth
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.train_trial import TrainSettings, run_trial

MNIST_T10K = Path(__file__).resolve().parents[2] / "studies" / "data" / "mnist-t10k"
SGD = OptimizerSpec("sgd")
ADAM = OptimizerSpec("adam")
NAME = "lr-mnist"


def _study_text(extra: str = "") -> str:
    return f"""
[study]
name = "{NAME}"
seed = 0

[data]
dataset = "mnist"
path = "{MNIST_T10K}"
subset = 2000

[train]
model = "fashion-cnn"
batch_size = 64
epochs = 1

[space]
schedules = "constant"
optimizer = ["sgd", "adam"]
{extra}
"""


def _live_models() -> int:
    import keras

    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, keras.Model))


@pytest.fixture(scope="module")
def spec() -> StudySpec:
    return parse_study(_study_text(), f"{NAME}.toml")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(f"sqlite:///{tmp_path_factory.mktemp('lrfind')}/lr.db")


@pytest.fixture(scope="module")
def sgd(spec: StudySpec, store: Store) -> LrFindResult:
    result = lr_find(spec, SGD, start=1e-5, end=10.0, steps=150)
    return save_lr_find(store, result, NAME, spec.hash)


# --------------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------------


def test_smooth_is_bias_corrected() -> None:
    assert smooth([2.0] * 5) == pytest.approx([2.0] * 5)
    out = smooth([1.0, 3.0], beta=0.5)
    assert out[0] == pytest.approx(1.0)
    assert out[1] == pytest.approx((0.5 * 0.5 * 1.0 + 0.5 * 3.0) / (1 - 0.25))


def test_growth_reaches_end() -> None:
    g = growth_factor(1e-5, 10.0, 150)
    assert g > 1
    assert 1e-5 * g**149 == pytest.approx(10.0)


def _valley(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    lrs = np.geomspace(1e-5, 10, n)
    x = np.log10(lrs)
    # flat at 2.3, falls fastest near 1e-2, lowest near 1e-1, then climbs
    loss = 2.3 - 1.5 / (1 + np.exp(-4 * (x + 2))) + np.where(x > -1, 3 * (x + 1) ** 2, 0)
    return lrs, loss


@pytest.mark.parametrize(
    ("diverged", "expect_steep", "expect_min"),
    [(None, 1e-2, 1e-1), (1.0, 1e-2, 1e-1)],
)
def test_analyse_finds_steepest_and_minimum(
    diverged: float | None, expect_steep: float, expect_min: float
) -> None:
    lrs, loss = _valley()
    a = analyse(lrs, loss, diverged)
    assert a.steepest_lr == pytest.approx(expect_steep, rel=0.25)
    assert a.min_loss_lr == pytest.approx(expect_min, rel=0.6)
    assert a.low == pytest.approx(a.steepest_lr / 10)
    assert a.high == a.min_loss_lr
    assert a.low < a.high
    if diverged is not None:
        assert a.high < diverged


def test_analyse_ignores_noise_at_the_start() -> None:
    lrs, loss = _valley()
    loss = loss.copy()
    loss[1] = 1.0  # a lucky first batches' average: a steep drop at the very start
    assert analyse(lrs, loss).steepest_lr > 1e-3


def test_analyse_guards_a_minimum_at_the_start() -> None:
    lrs = np.geomspace(1e-3, 10, 50)
    a = analyse(lrs, np.linspace(1.0, 5.0, 50), diverged_lr=float(lrs[-1]))
    assert a.min_loss_lr == lrs[0] and a.low < a.high < float(lrs[-1])


def test_study_optimizers() -> None:
    dims: dict[str, Fixed | Range | Choices] = {
        "optimizer": Choices(("sgd", "adam")),
        "momentum": Range(0.5, 0.99),
        "nesterov": Choices((False, True)),
    }
    assert study_optimizers(SpaceSpec(Fixed("constant"), dims)) == [
        OptimizerSpec("sgd", 0.5),
        OptimizerSpec("adam"),
    ]
    pinned = {"optimizer": Fixed("sgd"), "momentum": Fixed(0.9), "nesterov": Fixed(True)}
    assert study_optimizers(SpaceSpec(Fixed("constant"), pinned)) == [
        OptimizerSpec("sgd", 0.9, nesterov=True)
    ]


def test_bad_bounds_are_one_line(spec: StudySpec) -> None:
    with pytest.raises(LrFindError, match=r"0 < start < end"):
        lr_find(spec, SGD, start=1.0, end=0.1)


# --------------------------------------------------------------------------------------------
# Real range tests
# --------------------------------------------------------------------------------------------


def test_sgd_range_on_mnist(sgd: LrFindResult) -> None:
    n = len(sgd.lrs)
    assert 10 < n <= 150 and len(sgd.losses) == len(sgd.smoothed) == n
    assert all(math.isfinite(v) for v in sgd.losses)
    lrs = np.asarray(sgd.lrs)
    assert lrs[0] == pytest.approx(1e-5)
    assert np.diff(np.log(lrs)) == pytest.approx(math.log(growth_factor(1e-5, 10, 150)))
    assert sgd.smoothed == pytest.approx(tuple(smooth(sgd.losses)))
    assert sgd.diverged_lr is not None, "plain SGD should blow up before a rate of 10"
    assert sgd.low > 1e-4
    assert sgd.low < sgd.high < sgd.diverged_lr
    assert sgd.steepest_lr <= sgd.min_loss_lr == sgd.high
    assert min(sgd.smoothed) < sgd.smoothed[0]  # it did learn before it diverged


def test_range_test_leaves_no_model_behind(sgd: LrFindResult) -> None:
    assert _live_models() == 0


def test_stored_curve_is_found_again(spec: StudySpec, store: Store, sgd: LrFindResult) -> None:
    found = latest_lr_find(store, NAME, spec.hash, SGD)
    assert found is not None and found.id == sgd.id
    assert found.lrs == pytest.approx(sgd.lrs)
    assert found.losses == pytest.approx(sgd.losses)
    assert found.smoothed == pytest.approx(sgd.smoothed)
    assert found.suggested == (sgd.low, sgd.high)
    assert found.diverged_lr == sgd.diverged_lr
    assert found.dataset == repr(spec.data) and found.model == "fashion-cnn"
    assert (found.batch_size, found.steps, found.start, found.end) == (64, 150, 1e-5, 10.0)
    assert latest_lr_find(store, NAME, "another-hash", SGD) is None
    assert latest_lr_find(store, "another-study", spec.hash, SGD) is None
    assert latest_lr_find(store, NAME, spec.hash, OptimizerSpec("sgd", 0.9)) is None


def _rows(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(LrFindRow)) or 0)


def test_suggest_range_runs_once_then_reuses(
    spec: StudySpec, store: Store, sgd: LrFindResult
) -> None:
    before = _rows(store)
    first = suggest_range(spec, ADAM, store, NAME)
    assert _rows(store) == before + 1
    t0 = time.perf_counter()
    again = suggest_range(spec, ADAM, store, NAME)
    assert time.perf_counter() - t0 < 1.0  # read from the store, no training
    assert again == first and _rows(store) == before + 1
    assert suggest_range(spec, SGD, store, NAME) == (sgd.low, sgd.high)
    assert _rows(store) == before + 1

    adam = latest_lr_find(store, NAME, spec.hash, ADAM)
    assert adam is not None and adam.suggested == first
    assert adam.low < adam.high
    if adam.diverged_lr is not None:
        assert adam.high < adam.diverged_lr
    # Adam normalises its steps: it learns fastest at far smaller rates than plain SGD
    assert adam.suggested != sgd.suggested
    assert adam.steepest_lr < sgd.steepest_lr / 5


def test_a_trial_after_the_range_test_is_unaffected(spec: StudySpec) -> None:
    dataset = load_dataset(replace(spec.data, subset=500))
    settings = TrainSettings(model="fashion-cnn", batch_size=64, epochs=1, seed=0)
    before = run_trial(dataset, Constant(0.05), SGD, settings)
    lr_find(spec, SGD, start=1e-3, end=10.0, steps=40)
    assert _live_models() == 0
    after = run_trial(dataset, Constant(0.05), SGD, settings)
    assert after.records[-1].loss == pytest.approx(before.records[-1].loss, rel=1e-4)
    assert after.records[-1].val_accuracy == pytest.approx(before.records[-1].val_accuracy)
    assert after.records[-1].step == before.records[-1].step


def test_plot(sgd: LrFindResult, tmp_path: Path) -> None:
    data = plot_data(sgd)
    assert len(data.lrs) == len(data.losses) == len(data.smoothed) == len(sgd.lrs)
    low, high = data.y_limits
    assert low <= min(sgd.smoothed) and high >= sgd.smoothed[0]
    assert data.low == sgd.low and data.high == sgd.high
    out = draw([data, data], tmp_path / "lr.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli(spec: StudySpec, tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(_study_text(), encoding="utf-8")
    url = f"sqlite:///{tmp_path}/cli.db"
    png = tmp_path / "lr.png"
    args = ["lr-find", str(study), "--storage", url, "--optimizer", "sgd", "--steps", "60"]
    result = CliRunner().invoke(main, [*args, "--start", "1e-3", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("steepest descent at", "lowest loss at", "suggested range", "[space] initial_lr"):
        assert text in out
    assert png.is_file()
    stored = latest_lr_find(Store(url), NAME, spec.hash, SGD)
    assert stored is not None and f"{stored.low:.3g} .. {stored.high:.3g}" in out

    bad = CliRunner().invoke(main, [*args, "--optimizer", "rmsprop"])
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == [
        "error: optimizer 'rmsprop' is not in the study's space; it has sgd, adam"
    ]

    nowhere = CliRunner().invoke(main, [*args, "--plot", str(tmp_path / "no" / "lr.png")])
    assert nowhere.exit_code == 2
    assert len(nowhere.stderr.strip().splitlines()) == 1 and "does not exist" in nowhere.stderr
