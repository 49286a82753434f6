"""Tests for the anytime curve in the Python API: ``result.anytime()`` and
``result.plot("anytime", others=[...])``, on real stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ledger_store, ledger_study

import sweeper
from sweeper.errors import PlotUnavailableError, SweeperError


def test_anytime_and_its_plot_of_one_study_and_of_several(tmp_path: Path) -> None:
    trials, ledger = ledger_study()
    url = ledger_store(tmp_path / "s.db", {"a": (trials, ledger), "empty": (trials[:1], [])})
    other = ledger_store(tmp_path / "t.db", {"a": (trials, ledger[:5])})
    result = sweeper.load("a", url)

    curve = result.anytime()
    assert curve.epochs == 9 and curve.best_after(9) == 0.93 and curve.reference_epochs == 9

    fig = result.plot("anytime")
    assert fig.axes[0].get_xlabel().startswith("epochs trained")

    fig = result.plot("anytime", others=[sweeper.load("a", other)])
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels[0] == "a (s.db): 0.9300 after 9 epochs"
    assert "a (t.db): 0.7000 after 5 epochs" in labels

    with pytest.raises(SweeperError, match="only the anytime plot draws several studies"):
        result.plot("history", others=[sweeper.load("a", other)])
    with pytest.raises(PlotUnavailableError, match="no trained epoch"):
        sweeper.load("empty", url).plot("anytime")
