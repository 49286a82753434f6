"""Ctrl-C at many moments of a real ``sweeper tune``: always one clean stop.

Each case starts a real run in its own process (digits, 2 trials of 3 epochs, a SQLite store),
sends SIGINT (or SIGTERM) at one moment — during start-up and imports, as the first trial is
created, mid-epoch, right after an epoch was stored, right after a trial finished — and checks
what a user sees and what the store holds: exit status 130, the resume hint, no traceback, no
swallowed interrupt, no FAILED or RUNNING trial. A rerun of the same command then finishes the
study.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from sweeper.cli.commands import main

pytestmark = pytest.mark.slow

N_TRIALS = 2
ARGS = ["--n-trials", str(N_TRIALS), "--set", "train.epochs=3", "--set", "data.subset=300"]


def _count(db: Path, sql: str) -> int | None:
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
        try:
            return int(con.execute(sql).fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:  # not created yet, or locked for a moment
        return None


def _running(db: Path) -> int | None:
    return _count(db, "SELECT COUNT(*) FROM trials WHERE state = 'RUNNING'")


def _epoch_rows(db: Path) -> int | None:
    return _count(db, "SELECT COUNT(*) FROM sweeper_epochs")


def _finished(db: Path) -> int | None:
    return _count(db, "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')")


def _wait(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before the moment came")
        if ready():
            return
        time.sleep(0.005)
    pytest.fail("the moment to interrupt never came")


def _after(seconds: float) -> Callable[[subprocess.Popen[bytes], Path], None]:
    def wait(_proc: subprocess.Popen[bytes], _db: Path) -> None:
        time.sleep(seconds)

    return wait


def _first_trial_created(proc: subprocess.Popen[bytes], db: Path) -> None:
    _wait(proc, lambda: (_running(db) or 0) >= 1)


def _mid_epoch(proc: subprocess.Popen[bytes], db: Path) -> None:
    _wait(proc, lambda: (_epoch_rows(db) or 0) >= 1)
    time.sleep(0.15)


def _epoch_just_stored(proc: subprocess.Popen[bytes], db: Path) -> None:
    _wait(proc, lambda: (_epoch_rows(db) or 0) >= 2)


def _trial_just_finished(proc: subprocess.Popen[bytes], db: Path) -> None:
    _wait(proc, lambda: (_finished(db) or 0) >= 1)


MOMENTS: dict[str, tuple[Callable[[subprocess.Popen[bytes], Path], None], signal.Signals]] = {
    "start-up, importing": (_after(0.3), signal.SIGINT),
    "start-up, loading Keras and the data": (_after(1.5), signal.SIGINT),
    "first trial created": (_first_trial_created, signal.SIGINT),
    "mid-epoch": (_mid_epoch, signal.SIGINT),
    "an epoch ends, SIGTERM": (_epoch_just_stored, signal.SIGTERM),
    "a trial just finished": (_trial_just_finished, signal.SIGINT),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_an_interrupt_at_any_moment_is_one_clean_stop(
    moment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wait, signum = MOMENTS[moment]
    db = tmp_path / "sig.db"
    url = f"sqlite:///{db}"
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPER_STORAGE", "SWEEPER_VERBOSE")}
    env["PYTHONUNBUFFERED"] = "1"
    log = tmp_path / "run.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sweeper", "tune", "--storage", url, *ARGS],
            cwd=tmp_path,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        wait(proc, db)
        proc.send_signal(signum)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text(errors="replace")
    assert rc == 130, output
    for noise in ("Traceback", "Exception ignored", "Aborted!", "KeyboardInterrupt"):
        assert noise not in output, output
    assert "interrupted" in output and "rerun the same command to resume" in output, output

    if db.exists():
        trials = optuna.load_study(study_name="digits", storage=url).get_trials()
        states = {t.number: t.state for t in trials}
        assert TrialState.FAIL not in states.values(), states
        assert TrialState.RUNNING not in states.values(), states
        assert len(trials) <= N_TRIALS  # the stop queued nothing twice

    # the same command resumes and finishes the study
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWEEPER_STORAGE", raising=False)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = CliRunner().invoke(main, ["tune", "--storage", url, *ARGS])
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="digits", storage=url).get_trials()
    assert len(trials) == N_TRIALS
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), trials
