"""Tests for ``sweeper plot ... anytime`` and the report's anytime section: one study, several
from one store or several (``URL::STUDY``), the invocations of one study kept, the store's
bytes unchanged, one line for what cannot be drawn."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ledger_store, ledger_study

from sweeper.cli.commands import main

PNG = b"\x89PNG\r\n\x1a\n"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def folder_state(folder: Path) -> dict[str, str]:
    """The hash of each store file in the folder, and of its write-ahead log's content when a
    reader left one (SQLite makes an empty one for a reader of a WAL database: nothing in it)."""
    state = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.db")}
    for wal in folder.glob("*.db-wal"):
        assert wal.read_bytes() == b"", wal
    return state


@pytest.fixture
def stores(tmp_path: Path) -> tuple[str, str]:
    """Two stores: ``a`` (the whole study), ``b`` (its first six epochs) and ``empty`` (no
    ledger row) in the first; ``a`` (its first four epochs) in the second, in its own folder."""
    trials, ledger = ledger_study()
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = ledger_store(
        tmp_path / "one" / "s.db",
        {"a": (trials, ledger), "b": (trials, ledger[:6]), "empty": (trials[:1], [])},
    )
    second = ledger_store(tmp_path / "two" / "t.db", {"a": (trials, ledger[:4])})
    return first, second


def test_plot_anytime_of_one_study_leaves_the_store_unchanged(
    stores: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = stores
    before = folder_state(tmp_path / "one")
    out = tmp_path / "plots"
    result = run("plot", "a", "anytime", "--out", str(out), "--storage", url)
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {out / 'a-anytime.png'}\n"
    data = (out / "a-anytime.png").read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000
    assert folder_state(tmp_path / "one") == before


def test_plot_anytime_of_two_studies_of_one_store(stores: tuple[str, str], tmp_path: Path) -> None:
    url, _ = stores
    before = folder_state(tmp_path / "one")
    result = run("plot", "a", "b", "anytime", "--out", str(tmp_path), "--storage", url)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a-vs-b-anytime.png").read_bytes().startswith(PNG)
    assert folder_state(tmp_path / "one") == before


def test_plot_anytime_of_studies_of_two_stores(stores: tuple[str, str], tmp_path: Path) -> None:
    first, second = stores
    before = folder_state(tmp_path / "one"), folder_state(tmp_path / "two")
    result = run("plot", f"{first}::b", f"{second}::a", "anytime", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b-vs-a-anytime.png").read_bytes().startswith(PNG)
    # the same name in both stores; --storage is the store of a study given without one
    result = run("plot", "a", f"{second}::a", "anytime", "--storage", first, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a-vs-a-anytime.png").read_bytes().startswith(PNG)
    assert (folder_state(tmp_path / "one"), folder_state(tmp_path / "two")) == before


def test_the_invocations_of_one_study_still_work(stores: tuple[str, str], tmp_path: Path) -> None:
    url, second = stores
    result = run("plot", "a", "history", "--out", str(tmp_path), "--storage", url)
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {tmp_path / 'a-history.png'}\n"
    result = run("plot", "a", "all", "--out", str(tmp_path / "all"), "--storage", url)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "all" / "a-anytime.png").read_bytes().startswith(PNG)
    result = run("plot", f"{second}::a", "history", "anytime", "--out", str(tmp_path / "t"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["a-anytime.png", "a-history.png"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a", "b", "history"], "several studies are drawn on one figure by the anytime kind"),
        (["a", "b", "anytime", "slice"], "plot slice of one study at a time"),
        (["a", "b", "all"], "plot history, importance, lr-curves"),
        (["a"], "name a plot kind after the study, e.g. 'sweeper plot a history'"),
        (["::a", "anytime"], "'::a': write a study of another store as URL::STUDY"),
        (["a", "b", "pie"], "unknown plot kind 'pie'"),
    ],
)
def test_what_cannot_be_asked_is_one_line(
    stores: tuple[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    url, _ = stores
    result = run("plot", *args, "--out", str(tmp_path / "out"), "--storage", url)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_a_study_without_ledger_rows_is_skipped_in_one_line(
    stores: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = stores
    expected = "skipped anytime: study 'empty' has no trained epoch in its ledger yet"
    for studies in (["empty"], ["a", "empty"]):
        result = run("plot", *studies, "anytime", "--out", str(tmp_path), "--storage", url)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1
    assert list(tmp_path.glob("*.png")) == []
    result = run("plot", "nope", "a", "anytime", "--storage", url)
    assert result.exit_code == 2 and "no study 'nope'" in result.stderr


def test_the_report_has_an_anytime_section(stores: tuple[str, str], tmp_path: Path) -> None:
    url, _ = stores
    before = folder_state(tmp_path / "one")
    result = run("report", "a", "--out", str(tmp_path), "--storage", url)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "a-report.html").read_text()
    assert page.count("<h2>Anytime curve</h2>") == 1 and page.count('id="plot-anytime"') == 1
    assert re.search(r"9 epochs trained, 3 of them by the baselines", page)
    assert "0.9300 after 9 epochs" in page and "Best baseline: 0.8800" in page
    assert "reference configuration completed at epoch 9 with 0.9300" in page
    result = run("report", "empty", "--out", str(tmp_path), "--storage", url)
    assert result.exit_code == 0, result.output
    assert "has no trained epoch in its ledger" in (tmp_path / "empty-report.html").read_text()
    assert folder_state(tmp_path / "one") == before
