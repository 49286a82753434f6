"""initial_lr = "auto": the LR range test sets the study's initial-rate bounds, once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest

from sweeper.search.run_options import RunOptions
from sweeper.search.runner import tune
from sweeper.studyfile.config import parse_study
from sweeper.studyfile.dimensions import Auto, Range

STUDY = """
[study]
n_trials = {n}
[data]
dataset = "digits"
subset = 400
[train]
model = "mnist-cnn"
batch_size = 32
epochs = 1
[sampler]
type = "random"
[pruner]
type = "none"
[space]
schedules = ["constant", "exponential"]
initial_lr = "auto"
optimizer = "sgd"
"""


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM sweeper_lr_finds").fetchone()[0])


@pytest.mark.slow
def test_auto_initial_lr_bounds_come_from_one_stored_range_test(tmp_path: Path) -> None:
    db = tmp_path / "auto.db"
    url = f"sqlite:///{db}"
    spec = parse_study(STUDY.format(n=3), str(tmp_path / "auto.toml"), default_name="auto")
    assert isinstance(spec.space.dims["initial_lr"], Auto)

    summary = tune(spec, RunOptions(storage=url, checkpoint_dir=str(tmp_path / "ck")))
    low, high = summary.lr_ranges["sgd"]
    assert 0 < low < high
    assert _rows(db) == 1
    study = optuna.load_study(study_name="auto", storage=url)
    rates = [t.params["initial_lr"] for t in study.trials]
    assert len(rates) == 3
    assert all(low <= r <= high for r in rates), (low, high, rates)

    # resuming with a larger budget reuses the stored range: no second range test
    summary = tune(spec, RunOptions(storage=url, n_trials=5, checkpoint_dir=str(tmp_path / "ck")))
    assert summary.lr_ranges["sgd"] == (low, high)
    assert _rows(db) == 1
    study = optuna.load_study(study_name="auto", storage=url)
    assert all(low <= t.params["initial_lr"] <= high for t in study.trials)


def test_only_initial_lr_can_be_auto() -> None:
    from sweeper.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[space\] decay_rate: only initial_lr"):
        parse_study('[space]\ndecay_rate = "auto"\n', "x.toml")


# -- range_test = true: a declared range narrowed by the range test --------------------------

NARROWED = STUDY.replace(
    'initial_lr = "auto"',
    "initial_lr = {{ low = {low}, high = {high}, log = true, range_test = true }}",
)


@pytest.mark.slow
def test_a_declared_range_is_narrowed_to_what_the_range_test_suggests(tmp_path: Path) -> None:
    from sweeper.store.lrfind_store import latest_lr_find
    from sweeper.store.store import Store
    from sweeper.training.optimizers import OptimizerSpec

    url = f"sqlite:///{tmp_path / 'narrow.db'}"
    text = NARROWED.format(n=3, low=1e-4, high=0.3)
    spec = parse_study(text, str(tmp_path / "narrow.toml"), default_name="narrow")
    assert spec.space.dims["initial_lr"] == Auto(within=Range(1e-4, 0.3, log=True))

    summary = tune(spec, RunOptions(storage=url, checkpoint_dir=str(tmp_path / "ck")))
    store = Store(url)
    stored = latest_lr_find(store, "narrow", spec.hash, OptimizerSpec("sgd"))
    store.close()
    assert stored is not None
    low, high = summary.lr_ranges["sgd"]
    # the part of the declared range inside the suggested one
    assert (low, high) == (max(stored.low, 1e-4), min(stored.high, 0.3))
    assert 1e-4 <= low < high <= 0.3
    study = optuna.load_study(study_name="narrow", storage=url)
    rates = [t.params["initial_lr"] for t in study.trials]
    assert len(rates) == 3 and all(low <= r <= high for r in rates), (low, high, rates)
    # Optuna's record of the dimension is the narrowed range, so resumed runs sample it alike
    dist = study.trials[0].distributions["initial_lr"]
    assert (dist.low, dist.high) == pytest.approx((low, high))


def test_a_declared_range_the_range_test_misses_is_searched_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sweeper.search.lrfind import narrow
    from sweeper.training.optimizers import OptimizerSpec

    declared = Range(1e-6, 1e-5, log=True)
    with caplog.at_level("WARNING"):
        assert narrow((0.05, 1.3), declared, OptimizerSpec("sgd")) == (1e-6, 1e-5)
    assert "outside the declared" in caplog.text
    assert narrow((0.05, 1.3), Range(1e-4, 0.3, log=True), OptimizerSpec("sgd")) == (0.05, 0.3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{ low = 1e-4, high = 0.3, range_test = true }", "range_test narrows a log range"),
        ("{ low = 0.1, high = 0.1, log = true, range_test = true }", "low < high"),
        ("{ low = 1e-4, high = 0.3, log = true, range_test = 1 }", "must be true or false"),
    ],
)
def test_bad_range_tests_are_one_line(value: str, message: str) -> None:
    from sweeper.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_study(f"[space]\ninitial_lr = {value}\n", "x.toml")
    with pytest.raises(ConfigError, match="only initial_lr can be narrowed"):
        parse_study(
            "[space]\ndecay_rate = { low = 0.1, high = 0.9, range_test = true }\n", "x.toml"
        )
