"""Tests for the read-only commands, run through click on a real small study and a synthetic one."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import asha_trials, write_store

from sweeper.analysis import queries as analysis
from sweeper.cli.commands import main
from sweeper.cli.read import EVALUATORS
from sweeper.testing import build_synthetic_store

PNG = b"\x89PNG\r\n\x1a\n"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A study tuned for real: the embedded digits study, 6 trials of 2 epochs (the baselines),
    and a 7th baseline waiting."""
    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import tune
    from sweeper.studyfile.config import load_study_file

    folder = tmp_path_factory.mktemp("real")
    spec = load_study_file(
        None, overrides=["train.epochs=2", "data.subset=400", "study.n_trials=6"]
    )
    url = f"sqlite:///{folder}/s.db"
    tune(spec, RunOptions(storage=url))
    # the 7th baseline queued, not run (as a run for 7 trials stopped here would leave it)
    import optuna

    from sweeper.search.runner import _enqueue_baselines
    from sweeper.store.store import Store

    store = Store(url)
    _enqueue_baselines(
        optuna.load_study(study_name="digits", storage=store.optuna_storage()), spec, 7
    )
    store.close()
    return url


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A synthetic study of 100 trials of every family (sweeper.testing)."""
    url: str = build_synthetic_store(tmp_path_factory.mktemp("syn") / "s.db", 100, seed=5)
    return url


def test_evaluators_match_the_library() -> None:
    assert EVALUATORS == analysis.EVALUATORS


# -- a real study ---------------------------------------------------------------------------------
def test_status(real: str) -> None:
    result = run("status", "--storage", real)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "1 study" in lines[0]
    # configurations: 7, 6 complete, 0 paused, 0 stopped, 0 failed, 0 running, 1 waiting
    assert re.match(r"digits\s+7\s+6\s+0\s+0\s+0\s+0\s+1\s+\d\.\d{4} \(trial \d\)", lines[2])
    assert "7 trials (a configuration paused and continued is several)" in lines[3]
    assert "last activity" in lines[4]


def test_best_shows_baselines_beside(real: str) -> None:
    result = run("best", "digits", "--top", "3", "--storage", real)
    assert result.exit_code == 0, result.output
    out = result.output
    assert (
        "7 configurations (6 complete, 0 paused (resumable), 0 stopped, 0 failed, 1 waiting)" in out
    )
    assert out.count("[baseline: ") == 3
    assert "baselines:" in out and "(waiting)" in out
    assert "initial_lr=" in out


def test_importance_with_only_baselines_says_how_to_add_configurations(real: str) -> None:
    result = run("importance", "digits", "--storage", real)
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert (
        "importance needs at least 4 tuned configurations (baselines and the reference left "
        in result.stderr
    )
    # its target is taken (6 baselines run, a 7th queued): only a larger --n-trials runs more,
    # and the reference configuration goes first
    assert (
        "has at most 0 (epochs: none): add 4 or more configurations with `sweeper tune --n-trials 12`"
        in result.stderr
    )
    assert "Traceback" not in result.output


def test_plot_all(real: str, tmp_path: Path) -> None:
    result = run("plot", "digits", "all", "--out", str(tmp_path), "--storage", real)
    assert result.exit_code == 0, result.output
    for kind in ("history", "lr-curves", "learning-curves", "families"):
        data = (tmp_path / f"digits-{kind}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, kind
    assert "skipped importance: importance needs at least 4 tuned configurations" in result.stderr


def test_report(real: str, tmp_path: Path) -> None:
    result = run("report", "digits", "--out", str(tmp_path), "--storage", real)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "digits-report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 4
    assert all(base64.b64decode(i).startswith(PNG) for i in images)
    for heading in ("Summary", "Baseline comparison", "Best 6 trials", "Parameter importance"):
        assert heading in page
    assert page.count("<table") >= 3 and "epoch-wise lr/3 from 0.1" in page
    assert "http" not in page.replace("sqlite:", "")  # nothing to fetch: it opens offline


def test_export_csv_and_json(real: str, tmp_path: Path) -> None:
    result = run("export", "digits", "--format", "csv", "--storage", real)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 7
    assert {"number", "state", "value", "schedule", "baseline", "duration_s"} <= set(rows[0])
    assert "param_initial_lr" in rows[0] and rows[0]["baseline"] == "constant 0.001"
    assert [r["state"] for r in rows].count("complete") == 6

    out = tmp_path / "t.json"
    result = run(
        "export", "digits", "--format", "json", "--epochs", "--out", str(out), "--storage", real
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["study"] == "digits" and len(doc["trials"]) == 7
    done = [t for t in doc["trials"] if t["state"] == "complete"]
    assert all(len(t["epochs"]) == 2 for t in done)
    assert {"epoch", "lr", "val_accuracy"} <= set(done[0]["epochs"][0])

    result = run("export", "digits", "--format", "csv", "--epochs", "--storage", real)
    epochs = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(epochs) == 12 and epochs[0]["trial"] == "0" and "val_accuracy" in epochs[0]


# -- a larger synthetic study ---------------------------------------------------------------------
@pytest.mark.parametrize("evaluator", ["ped-anova", "mean-decrease-impurity"])
def test_importance_table_and_plot(synthetic: str, tmp_path: Path, evaluator: str) -> None:
    png = tmp_path / "imp.png"
    args = ["importance", "synthetic", "--evaluator", evaluator, "--plot", str(png)]
    result = run(*args, "--storage", synthetic)
    assert result.exit_code == 0, result.output
    assert re.match(r"importance at epoch 8, \d+ configurations \(study 'synthetic'", result.output)
    assert result.output.splitlines()[1].startswith("all families (")
    assert re.search(r"^  initial_lr\s+\d+\.\d%", result.output, re.MULTILINE)
    assert png.read_bytes().startswith(PNG)


def test_plot_svg_of_one_family(synthetic: str, tmp_path: Path) -> None:
    kinds = ("parallel", "slice", "contour", "importance")
    args = [
        "plot",
        "synthetic",
        *kinds,
        "--format",
        "svg",
        "--family",
        "step",
        "--out",
        str(tmp_path),
    ]
    result = run(*args, "--storage", synthetic)
    assert result.exit_code == 0, result.output
    for kind in kinds:
        assert "<svg" in (tmp_path / f"synthetic-{kind}.svg").read_text()[:500]


def test_report_with_importance(synthetic: str, tmp_path: Path) -> None:
    result = run("report", "synthetic", "--out", str(tmp_path), "--storage", synthetic)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "synthetic-report.html").read_text()
    assert page.count("data:image/png;base64,") == 9  # the anytime curve's and 8 plots
    assert "<th>parameter</th><th>all families (" in page
    assert re.search(r"<h2>Parameter importance at epoch 8, \d+ configurations \(ped-anova\)", page)


# -- a multi-fidelity study: configurations paused at rungs ----------------------------------------
@pytest.fixture(scope="module")
def asha(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two baselines, 16 tuned configurations paused at epoch 1, 4 of them continued to a pause at
    epoch 4, 1 of those continued to complete at epoch 8 (conftest.asha_trials): a single
    complete tuned trial, as ASHA leaves the default study."""
    return write_store(tmp_path_factory.mktemp("asha") / "s.db", asha_trials(), "asha")


def test_importance_ranks_the_configurations_at_the_deepest_epoch_with_enough(
    asha: str, tmp_path: Path
) -> None:
    png = tmp_path / "imp.png"
    args = ["importance", "asha", "--evaluator", "fanova", "--plot", str(png), "--storage", asha]
    result = run(*args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "importance at epoch 4, 4 configurations (study 'asha', fanova; "
        "2 baseline or reference configuration(s) left out)"
    )
    assert lines[1] == "all families (4 configurations)"
    assert "step: not ranked, 3 configurations, 4 needed" in lines
    assert lines[-2] == "other epochs (--at-epoch N), configurations: 1 (16), 2 (4), 3 (4)"
    assert png.read_bytes().startswith(PNG)
    result = run("importance", "asha", "--at-epoch", "1", "--storage", asha)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("importance at epoch 1, 16 configurations (study 'asha'")
    assert re.search(r"^step \(8 configurations\)$", result.output, re.MULTILINE)
    assert re.search(r"^  initial_lr\s+\d+\.\d%", result.output, re.MULTILINE)


def test_at_epoch_without_enough_configurations_is_one_line(asha: str) -> None:
    enough = "epochs with enough: 1 (16), 2 (4), 3 (4), 4 (4)"
    for epoch, what in (
        ("8", "at epoch 8 only 1 configuration"),
        ("9", "no tuned configuration trained 9 epochs"),
    ):
        result = run("importance", "asha", "--at-epoch", epoch, "--storage", asha)
        assert result.exit_code == 1, result.output
        assert result.stderr == f"error: {what}; {enough}\n"
    assert run("importance", "asha", "--at-epoch", "0", "--storage", asha).exit_code == 2


def test_plot_all_and_the_report_rank_the_configurations_and_write_nothing(
    asha: str, tmp_path: Path
) -> None:
    db = Path(asha.removeprefix("sqlite:///"))
    before = db.read_bytes()
    assert run("importance", "asha", "--storage", asha).exit_code == 0
    result = run("plot", "asha", "all", "--out", str(tmp_path), "--storage", asha)
    assert (tmp_path / "asha-importance.png").read_bytes().startswith(PNG)
    assert "skipped importance" not in result.stderr
    result = run("report", "asha", "--out", str(tmp_path), "--storage", asha)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "asha-report.html").read_text()
    assert "<h2>Parameter importance at epoch 4, 4 configurations (ped-anova)</h2>" in page
    assert "<th>parameter</th><th>all families (4)</th>" in page
    assert db.read_bytes() == before
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


# -- errors ---------------------------------------------------------------------------------------
def test_missing_store_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    for args in (["status"], ["best", "x"], ["export", "x", "--format", "json"]):
        result = run(*args, "--storage", f"sqlite:///{path}")
        assert result.exit_code == 1
        assert result.stderr.startswith("error: no store at") and result.stderr.count("\n") == 1
    assert not path.exists()


@pytest.mark.parametrize(
    "url",
    ["foo://bar", "not a url", "postgresql+pg8000://u:s3cret@127.0.0.1/db"],
    ids=["unknown-dialect", "unparsable", "missing-driver"],
)
def test_bad_storage_url_is_one_line_in_every_read_command(url: str, tmp_path: Path) -> None:
    for args in (
        ["status"],
        ["best", "x"],
        ["importance", "x"],
        ["plot", "x", "history", "--out", str(tmp_path / "plots")],
        ["report", "x", "--out", str(tmp_path / "report")],
        ["export", "x", "--format", "json"],
    ):
        result = run(*args, "--storage", url)
        assert result.exit_code != 0, (args, result.output)
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        ), (args, repr(result.exception))
        assert "Traceback" not in result.output
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, (
            args,
            result.stderr,
        )
        assert "storage" in result.stderr and "s3cret" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_study_and_kind(synthetic: str) -> None:
    result = run("best", "nope", "--storage", synthetic)
    assert result.exit_code == 2
    assert "no study 'nope'" in result.stderr and "its studies: synthetic" in result.stderr
    result = run("plot", "synthetic", "history", "pie", "--storage", synthetic)
    assert result.exit_code == 2 and "unknown plot kind 'pie'" in result.stderr


def test_plot_asked_for_a_kind_the_study_cannot_show(real: str, tmp_path: Path) -> None:
    result = run("plot", "digits", "contour", "--out", str(tmp_path), "--storage", real)
    assert result.exit_code == 1 and "skipped contour:" in result.stderr


# -- schedules without a study --------------------------------------------------------------------
def test_schedules(tmp_path: Path) -> None:
    png = tmp_path / "s.png"
    args = ["--family", "cosine", "--family", "step", "--set", "initial_lr=0.05", "--steps", "400"]
    result = run("schedules", *args, "--plot", str(png))
    assert result.exit_code == 0, result.output
    assert "cosine(initial_lr=0.05" in result.output and "step(initial_lr=0.05" in result.output
    assert png.read_bytes().startswith(PNG)
    result = run("schedules", "--set", "bogus")
    assert result.exit_code == 1 and "write it as name=value" in result.stderr
    assert run("schedules", "--plot", str(tmp_path / "x.jpg")).exit_code == 1


def test_schedules_shows_the_study_files_names() -> None:
    result = run(
        "schedules", "--family", "step", "--set", "decay_rate=0.5", "--set", "drop_every=2"
    )
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if "step(" in x]
    assert "decay_rate=0.5" in line and "drop_every=2" in line, line
    assert "drop=" not in result.output and "epochs_drop" not in result.output


# -- no Keras on the read-only side ---------------------------------------------------------------
def test_read_only_commands_never_import_keras(synthetic: str, tmp_path: Path) -> None:
    commands = [
        ["status"],
        ["importance", "synthetic"],
        ["plot", "synthetic", "families", "slice", "--out", str(tmp_path)],
        ["report", "synthetic", "--out", str(tmp_path)],
        ["export", "synthetic", "--format", "csv", "--epochs", "--out", str(tmp_path / "e.csv")],
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "sweeper", *args, "--storage", synthetic],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for args in commands
    ]
    code = "import sys, sweeper.cli.commands; print(sorted(m for m in sys.modules if 'keras' in m or 'tensorflow' in m))"
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert plain.stdout.strip() == "[]"
    for args, proc in zip(commands, procs, strict=True):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (args, err[-2000:])
        imported = [line for line in err.splitlines() if re.search("keras|tensorflow", line, re.I)]
        assert imported == [], (args, imported[:5])
