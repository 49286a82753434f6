"""initial_lr = "auto": the LR range test sets the study's initial-rate bounds, once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest

from sweeper.study.config import Auto, parse_study
from sweeper.study.runner import tune

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

    summary = tune(spec, storage=url, checkpoint_dir=str(tmp_path / "ck"))
    low, high = summary.lr_ranges["sgd"]
    assert 0 < low < high
    assert _rows(db) == 1
    study = optuna.load_study(study_name="auto", storage=url)
    rates = [t.params["initial_lr"] for t in study.trials]
    assert len(rates) == 3
    assert all(low <= r <= high for r in rates), (low, high, rates)

    # resuming with a larger budget reuses the stored range: no second range test
    summary = tune(spec, storage=url, n_trials=5, checkpoint_dir=str(tmp_path / "ck"))
    assert summary.lr_ranges["sgd"] == (low, high)
    assert _rows(db) == 1
    study = optuna.load_study(study_name="auto", storage=url)
    assert all(low <= t.params["initial_lr"] <= high for t in study.trials)


def test_only_initial_lr_can_be_auto() -> None:
    from sweeper.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[space\] decay_rate: only initial_lr"):
        parse_study('[space]\ndecay_rate = "auto"\n', "x.toml")
