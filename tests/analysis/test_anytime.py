"""Tests for sweeper.analysis.anytime: the curve's data from hand-built ledgers, the ledger read
from real stores (read-only), and the figure of one study and of several."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import frozen_trial, ledger_store, ledger_study, paused_trial
from optuna.trial import TrialState

from sweeper.analysis import anytime, plots, study_data
from sweeper.analysis import queries as an
from sweeper.errors import PlotUnavailableError
from sweeper.testing import build_synthetic_store

optuna.logging.set_verbosity(optuna.logging.WARNING)

LedgerRows = list[tuple[int, int, float | None]]


def rows_of(ledger: LedgerRows) -> list[dict[str, object]]:
    return [{"trial_number": n, "epoch": e, "val_accuracy": v} for n, e, v in ledger]


def data_of(trials: list[optuna.trial.FrozenTrial], name: str = "s") -> study_data.StudyData:
    return study_data.StudyData(name, "memory", "maximize", {}, trials)


# -- the curve's data -----------------------------------------------------------------------------
def test_the_curve_counts_every_epoch_and_keeps_the_search_best() -> None:
    trials, ledger = ledger_study()
    curve = anytime.anytime_data(data_of(trials), rows_of(ledger))
    assert curve.epochs == len(ledger) == 9
    expected = [math.nan, 0.70, 0.70, 0.70, 0.70, 0.70, 0.75, 0.90, 0.93]
    np.testing.assert_allclose(curve.best, expected)
    shown = curve.best[~np.isnan(curve.best)]
    assert np.all(np.diff(shown) >= 0)  # monotone
    assert curve.best_after(1) is None and curve.best_after(2) == 0.70
    assert curve.best_after(100) == curve.best_after(9) == 0.93


def test_the_baselines_epochs_count_apart_from_the_search() -> None:
    trials, ledger = ledger_study()
    curve = anytime.anytime_data(data_of(trials), rows_of(ledger))
    assert curve.baseline.tolist() == [n == 0 for n, _, _ in ledger]
    assert curve.baseline_epochs == 3
    assert curve.baseline_spans() == [(1, 1), (3, 3), (5, 5)]
    assert curve.best_baseline == 0.88  # its best epoch; never in the search's best
    assert 0.85 not in curve.best and 0.88 not in curve.best


def test_the_reference_is_marked_where_its_configuration_completed() -> None:
    trials, ledger = ledger_study()
    curve = anytime.anytime_data(data_of(trials), rows_of(ledger))
    assert (curve.reference_epochs, curve.reference_value) == (9, 0.93)
    # not complete yet (its continuation still to come): no mark
    paused = anytime.anytime_data(data_of(trials[:5]), rows_of(ledger[:7]))
    assert paused.reference_epochs is None and paused.reference_value is None


def test_confirm_epochs_count_without_a_value_and_leave_the_reference_mark() -> None:
    trials, ledger = ledger_study()
    confirm: LedgerRows = [(5, e, None) for e in range(3)]  # `confirm` retraining trial 5
    curve = anytime.anytime_data(data_of(trials), rows_of(ledger + confirm))
    assert curve.epochs == 12 and curve.best[-4:].tolist() == [0.93] * 4
    assert (curve.reference_epochs, curve.reference_value) == (9, 0.93)


def test_baselines_trained_first_make_one_span_and_no_search_value() -> None:
    trials = [
        frozen_trial(0, {0: 0.5, 1: 0.6}, state=TrialState.COMPLETE, baseline="a"),
        frozen_trial(1, {0: 0.4, 1: 0.7}, state=TrialState.COMPLETE, baseline="b"),
    ]
    ledger: LedgerRows = [(0, 0, 0.5), (0, 1, 0.6), (1, 0, 0.4), (1, 1, 0.7)]
    curve = anytime.anytime_data(data_of(trials), rows_of(ledger))
    assert curve.baseline_spans() == [(1, 4)] and curve.best_baseline == 0.7
    assert np.isnan(curve.best).all() and curve.best_after(4) is None
    assert curve.reference_epochs is None


def test_a_trial_retrained_counts_its_epochs_twice() -> None:
    trials = [paused_trial(0, {0: 0.3, 1: 0.5}, 2)]
    ledger: LedgerRows = [(0, 0, 0.3), (0, 0, 0.35), (0, 1, 0.5)]  # epoch 0 again after a crash
    curve = anytime.anytime_data(data_of(trials), rows_of(ledger))
    assert curve.epochs == 3 and curve.best.tolist() == [0.3, 0.35, 0.5]


def test_no_ledger_row_is_one_clear_line() -> None:
    trials, _ = ledger_study()
    with pytest.raises(PlotUnavailableError, match=r"^study 's' has no trained epoch") as e:
        anytime.anytime_data(data_of(trials), [])
    assert "\n" not in str(e.value)


def test_labels_name_the_store_only_where_two_studies_share_a_name() -> None:
    sources = [("sqlite:///runs/a.db", "x"), ("sqlite:////tmp/b.db", "x"), (None, "y")]
    stores = ["sqlite:///runs/a.db", "sqlite:////tmp/b.db", "sqlite:///sweeper.db"]
    assert anytime.labels(sources, stores) == ["x (a.db)", "x (b.db)", "y"]
    # files of the same name in two folders: their URLs
    stores = ["sqlite:///one/s.db", "postgresql://u:***@host/s.db", "sqlite:///two/s.db"]
    sources = [(stores[0], "x"), (stores[1], "x"), (stores[2], "x")]
    assert anytime.labels(sources, stores) == [f"x ({s})" for s in stores]


# -- the ledger of a real store -------------------------------------------------------------------
def test_read_ledger_in_training_order_without_writing(tmp_path: Path) -> None:
    trials, ledger = ledger_study()
    url = ledger_store(tmp_path / "s.db", {"s": (trials, ledger), "t": (trials[:1], [])})
    before = (tmp_path / "s.db").read_bytes()
    rows = anytime.read_ledger(url, "s")
    assert [(r["trial_number"], r["epoch"], r["val_accuracy"]) for r in rows] == ledger
    assert anytime.read_ledger(url, "t") == []
    (curve,) = anytime.load_curves([(url, "s")])
    assert curve.label == "s" and curve.best_after(9) == 0.93
    assert (tmp_path / "s.db").read_bytes() == before


def test_a_store_without_the_ledger_table_reads_no_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna-only.db'}"
    optuna.create_study(storage=url, study_name="plain")  # Optuna's tables alone
    assert anytime.read_ledger(url, "plain") == []
    with pytest.raises(PlotUnavailableError, match="no trained epoch in its ledger"):
        anytime.load_curves([(url, "plain")])


def test_the_synthetic_store_has_its_ledger(tmp_path: Path) -> None:
    url = build_synthetic_store(tmp_path / "syn.db", 30, seed=2)
    data = an.load(url, "synthetic")
    rows = anytime.read_ledger(url, "synthetic")
    assert len(rows) == len(an.read_epochs(url, "synthetic")) > 0
    curve = anytime.anytime_data(data, rows)
    assert curve.baseline_epochs == sum(
        len(t.intermediate_values) for t in data.trials if an.baseline_of(t)
    )


# -- the figure -----------------------------------------------------------------------------------
def test_one_study_and_several_draw_a_png(tmp_path: Path) -> None:
    trials, ledger = ledger_study()
    url = ledger_store(tmp_path / "s.db", {"a": (trials, ledger), "b": (trials, ledger[:6])})
    fig = plots.draw(an.load(url, "a"), "anytime", ledger=anytime.read_ledger(url, "a"))
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == [
        "best of the search (0.9300 after 9 epochs)",
        "best baseline: 0.8800",
        "baseline epochs (3)",
        "reference completed: 0.9300 at epoch 9",
    ]
    assert fig.axes[0].get_title().endswith(", a")
    path = plots.save(fig, tmp_path / "one.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    other = ledger_store(tmp_path / "o.db", {"a": (trials, ledger[:4])})
    path = plots.write_anytime([(url, "a"), (url, "b"), (other, "a")], tmp_path / "out")
    assert path.name == "a-vs-b-vs-a-anytime.png" and path.stat().st_size > 10_000
    with pytest.raises(PlotUnavailableError):
        plots.draw(an.load(url, "a"), "anytime")  # no ledger rows handed
