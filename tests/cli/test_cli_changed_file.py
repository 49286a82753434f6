"""``sweeper tune`` refuses a stored study's changed study file in one line that names the
settings that differ, old -> new, before it writes anything (a real SQLite store)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper.cli.commands import main
from sweeper.store.store import Store
from sweeper.studyfile.config import load_study_file

pytestmark = pytest.mark.usefixtures("clean_process")

SMALL_STUDY = """\
[study]
name = "small"

[data]
dataset = "digits"
subset = 400

[train]
epochs = 1
batch_size = 32

[space]
schedules = ["constant", "cosine"]
initial_lr = { low = 0.01, high = 0.2, log = true }
"""


def test_tune_names_what_changed_in_the_study_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    file = tmp_path / "small.toml"
    file.write_text(SMALL_STUDY)
    db = tmp_path / "sweeper.db"
    spec = load_study_file(file)
    store = Store("sqlite:///sweeper.db")  # as a first `sweeper tune small.toml` leaves it
    store.save_study_file("small", str(file), spec.text, spec.overrides, spec.hash)
    store.close()
    digest = hashlib.sha256(db.read_bytes()).hexdigest()

    file.write_text(SMALL_STUDY.replace("epochs = 1", "epochs = 2").replace("0.2", "0.3"))
    result = CliRunner().invoke(main, ["tune", "small.toml", "--n-trials", "1"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: study 'small' in sqlite:///sweeper.db was created from a different study file "
        f"(stored from {file}); the study file changed: [train] epochs 1 -> 2, [space] "
        "initial_lr.high 0.2 -> 0.3; use the same file, another --study-name, or "
        "--allow-changed to continue it with the new file"
    ], result.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
