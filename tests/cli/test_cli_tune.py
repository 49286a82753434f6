"""End-to-end tests of ``sweeper tune``: real training, real SQLite stores, real processes.

Every study is shrunk (400 digits, 1 to 6 epochs, a handful of trials) so that a trial takes a
second or two. Stores are SQLite files under ``tmp_path``; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import optuna
import pytest
from click.testing import CliRunner, Result
from optuna.trial import FrozenTrial, TrialState

from sweeper.cli.commands import main
from sweeper.search.recovery import mark_worker
from sweeper.studyfile.config import DEFAULT_STUDY, load_study_file
from sweeper.training.schedules import from_dict

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_process")]

SMALL = ("--set", "train.epochs=2", "--set", "data.subset=400")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
SUMMARY_COUNTS = re.compile(
    r"(\d+)/(\d+) configurations finished \((\d+) complete, (\d+) paused \(resumable\), "
    r"(\d+) stopped(?: \([^)]*\))?, (\d+) failed[^)]*\); (\d+) trials? run now"
)
RESUME_HINT = "rerun the same command to resume"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def tune(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["tune", *args], env=env)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def load_trials(url: str, name: str = "digits") -> list[FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=True)


def finished(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state in FINISHED]


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def epoch_rows(db: Path) -> list[dict[str, Any]]:
    return query(db, "SELECT * FROM sweeper_epochs ORDER BY trial_id, epoch")


def rows_by_trial(db: Path) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for row in epoch_rows(db):
        out.setdefault(row["trial_id"], []).append(row)
    return out


def summary_counts(output: str) -> dict[str, int]:
    m = SUMMARY_COUNTS.search(output)
    assert m, f"no summary line in:\n{output}"
    finished, target, complete, paused, stopped, failed, ran = map(int, m.groups())
    # "pruned": Optuna's PRUNED, paused or stopped for good
    return {
        "finished": finished,
        "target": target,
        "complete": complete,
        "pruned": paused + stopped,
        "failed": failed,
        "ran": ran,
    }


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_epoch_rows_match(db: Path, trials: list[FrozenTrial], epochs: int) -> None:
    """Every epoch of every finished trial has exactly one row, consistent with Optuna's data."""
    by_trial = rows_by_trial(db)
    for t in trials:
        rows = by_trial.get(t._trial_id, [])
        if t.state not in FINISHED:
            assert rows == [], f"trial {t.number} ({t.state.name}) has epoch rows"
            continue
        assert [r["epoch"] for r in rows] == list(range(len(rows))), t.number
        n_reported = len(t.intermediate_values)
        if t.state == TrialState.COMPLETE:
            assert len(rows) == epochs, t.number
            assert n_reported == epochs, t.number
        elif t.state == TrialState.PRUNED:
            # a diverged trial records the epoch that diverged, which no pruner is shown
            extra = 1 if t.user_attrs.get("outcome") == "diverged" else 0
            assert len(rows) == n_reported + extra, t.number
            assert 1 <= len(rows) <= epochs, t.number
        spe = t.user_attrs["steps_per_epoch"]
        schedule = from_dict(t.user_attrs["schedule"])
        for row in rows:
            assert row["trial_number"] == t.number
            assert row["step"] == (row["epoch"] + 1) * spe
            assert row["lr"] == pytest.approx(schedule.lr_at(row["step"] - 1), rel=1e-6)
            if row["epoch"] in t.intermediate_values:
                assert row["val_accuracy"] == pytest.approx(t.intermediate_values[row["epoch"]])
    trial_ids = {t._trial_id for t in trials}
    assert set(by_trial) <= trial_ids, "epoch rows of unknown trials"


def assert_one_error_line(result: Result) -> str:
    """The command failed with one ``error:`` line and no traceback; returns that line."""
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("tuning ")]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SWEEPER_STORAGE"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_tune(tmp_path: Path, args: list[str], log_name: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / log_name
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sweeper", "tune", *args],
            cwd=tmp_path,
            env=subprocess_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def wait_for_running_trial(
    proc: subprocess.Popen,
    db: Path,
    *,
    min_complete: int,
    max_rows: int,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Poll the store until a trial is RUNNING with 1..max_rows epoch rows; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended (rc {proc.returncode}) before a trial could be caught")
        try:
            complete = query(db, "SELECT COUNT(*) AS n FROM trials WHERE state = 'COMPLETE'")
            running = query(
                db,
                "SELECT t.trial_id, t.number, COUNT(e.id) AS n_rows FROM trials t "
                "LEFT JOIN sweeper_epochs e ON e.trial_id = t.trial_id "
                "WHERE t.state = 'RUNNING' GROUP BY t.trial_id",
            )
        except sqlite3.OperationalError:  # not created yet, or locked for a moment
            time.sleep(0.02)
            continue
        if complete[0]["n"] >= min_complete:
            for r in running:
                if 1 <= r["n_rows"] <= max_rows:
                    return r
        time.sleep(0.02)
    pytest.fail("no running trial with epoch rows appeared in time")


# --------------------------------------------------------------------------------------------
# 1. the embedded default study, end to end
# --------------------------------------------------------------------------------------------


def test_default_study_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = tune("--n-trials", "4", *SMALL)
    assert result.exit_code == 0, result.output
    out = result.stdout

    db = tmp_path / "sweeper.db"
    assert db.is_file()
    url = sqlite_url(db)
    study = optuna.load_study(study_name="digits", storage=url)
    trials = study.get_trials(deepcopy=True)
    done = finished(trials)
    assert len(done) == 4
    assert not [t for t in trials if t.state == TrialState.RUNNING]

    # the summary
    counts = summary_counts(out)
    by_state = {s: sum(t.state == s for t in trials) for s in FINISHED}
    assert counts == {
        "finished": 4,
        "target": 4,
        "complete": by_state[TrialState.COMPLETE],
        "pruned": by_state[TrialState.PRUNED],
        "failed": by_state[TrialState.FAIL],
        "ran": 4,
    }
    best = re.search(r"^best: trial (\d+), val_accuracy (\d\.\d{4})$", out, re.M)
    assert best, out
    assert best.group(2) == f"{study.best_value:.4f}"
    best_trial = next(t for t in trials if t.number == int(best.group(1)))
    assert best_trial.value == study.best_value
    params = re.search(r"^  params: +(.+)$", out, re.M)
    assert params, out
    assert f"schedule={best_trial.params['schedule']}" in params.group(1)
    assert "initial_lr=" in params.group(1)
    assert re.search(r"^  schedule: .+$", out, re.M)
    # 4 trials hold 4 of the 7 baselines: said up front, and no tuned trial to compare
    assert "warning: 4 trials leave room for 4 of the 7 baselines" in result.stderr
    assert all(t.user_attrs.get("baseline") for t in trials)
    baseline = re.search(
        r"^best baseline: (.+), val_accuracy (\d\.\d{4}); no tuned trial has completed yet",
        out,
        re.M,
    )
    assert baseline, out
    complete_baselines = [
        t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("baseline")
    ]
    best_baseline_value = max(t.value for t in complete_baselines)
    assert baseline.group(2) == f"{best_baseline_value:.4f}"
    assert baseline.group(1) in {t.user_attrs["baseline"] for t in complete_baselines}
    assert RESUME_HINT not in out

    # the baselines of digits.toml are queued first, in order, and marked; only the 4 that fit
    names = [b["name"] for b in tomllib.loads(DEFAULT_STUDY.read_text())["baselines"]]
    assert [t.user_attrs.get("baseline") for t in trials] == names[:4]
    assert [t.number for t in done] == [0, 1, 2, 3]
    assert all(t.user_attrs.get("baseline") == names[t.number] for t in done)
    assert not [t for t in trials if t.state == TrialState.WAITING]

    # one row per epoch of every trial, with the schedule's rate
    assert_epoch_rows_match(db, trials, epochs=2)
    assert len(epoch_rows(db)) == sum(len(rows_by_trial(db)[t._trial_id]) for t in done)

    # the study file and its hash
    spec = load_study_file(None, [SMALL[1], SMALL[3]])
    files = query(db, "SELECT * FROM sweeper_study_files")
    assert len(files) == 1
    assert files[0]["study_name"] == "digits"
    assert files[0]["text"] == DEFAULT_STUDY.read_text(encoding="utf-8")
    assert json.loads(files[0]["overrides"]) == ["train.epochs=2", "data.subset=400"]
    assert re.fullmatch(r"[0-9a-f]{64}", files[0]["hash"])
    assert files[0]["hash"] == spec.hash
    expected = hashlib.sha256(
        (files[0]["text"] + "\0" + "train.epochs=2\ndata.subset=400").encode()
    ).hexdigest()
    assert files[0]["hash"] == expected

    # the run and its environment
    runs = query(db, "SELECT * FROM sweeper_runs")
    assert len(runs) == 1
    run = runs[0]
    assert run["study_name"] == "digits"
    assert run["host"] == socket.gethostname()
    assert run["pid"] == os.getpid()
    assert run["finished_at"] is not None
    env = json.loads(run["environment"])
    import keras

    assert env["keras_backend"] == keras.config.backend()
    assert "keras" in env["packages"]
    assert {r["run_id"] for r in epoch_rows(db)} == {run["id"]}

    # Optuna's own command line reads the store as it is
    optuna_cli = shutil.which("optuna")
    cmd = (
        [optuna_cli]
        if optuna_cli
        else [sys.executable, "-c", "from optuna.cli import main; main()"]
    )
    listed = subprocess.run(
        [*cmd, "trials", "--storage", url, "--study-name", "digits", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    listed_finished = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED", "FAIL")]
    assert len(listed_finished) == 4
    assert sorted(r["number"] for r in listed_finished) == [0, 1, 2, 3]
    assert {r["state"] for r in rows} - {"COMPLETE", "PRUNED", "FAIL"} <= {"WAITING"}
    for r in listed_finished:
        t = next(t for t in trials if t.number == r["number"])
        # the objective carries its name (study.set_metric_names), as optuna-dashboard shows it
        assert r["value"] == {"val_accuracy": pytest.approx(t.value)}


# --------------------------------------------------------------------------------------------
# 2. pruning
# --------------------------------------------------------------------------------------------

PRUNE_STUDY = """\
[study]
name = "prune"
n_trials = 5
seed = 0

[data]
dataset = "digits"
subset = 400

[train]
model = "mnist-cnn"
batch_size = 32
epochs = 3

[sampler]
type = "random"

[pruner]
type = "median"
n_startup_trials = 2
n_warmup_steps = 0

[space]
schedules = ["constant"]
initial_lr = { low = 1e-5, high = 0.5, log = true }
"""


def test_median_pruner_prunes_and_pruned_trials_keep_their_epochs(tmp_path: Path) -> None:
    study_file = tmp_path / "prune.toml"
    study_file.write_text(PRUNE_STUDY)
    db = tmp_path / "prune.db"
    result = tune(str(study_file), "--storage", sqlite_url(db))
    assert result.exit_code == 0, result.output

    trials = load_trials(sqlite_url(db), "prune")
    assert len(finished(trials)) == 5
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.number, t.state.name, t.params) for t in trials]
    counts = summary_counts(result.stdout)
    assert counts["pruned"] == len(pruned)
    assert counts["complete"] == sum(t.state == TrialState.COMPLETE for t in trials)
    by_trial = rows_by_trial(db)
    for t in pruned:
        assert by_trial.get(t._trial_id), f"pruned trial {t.number} has no epoch rows"
    assert_epoch_rows_match(db, trials, epochs=3)


# --------------------------------------------------------------------------------------------
# 3. resuming
# --------------------------------------------------------------------------------------------


def test_rerun_with_a_larger_target_trains_only_the_missing_trials(tmp_path: Path) -> None:
    db = tmp_path / "resume.db"
    args = ("--storage", sqlite_url(db), *SMALL)
    first = tune("--n-trials", "3", *args)
    assert first.exit_code == 0, first.output
    assert summary_counts(first.stdout)["ran"] == 3
    before = {t.number: t for t in finished(load_trials(sqlite_url(db)))}
    assert sorted(before) == [0, 1, 2]
    rows_before = {k: len(v) for k, v in rows_by_trial(db).items()}

    second = tune("--n-trials", "5", *args)
    assert second.exit_code == 0, second.output
    counts = summary_counts(second.stdout)
    assert counts["finished"] == 5
    assert counts["target"] == 5
    assert counts["ran"] == 2
    assert RESUME_HINT not in second.stdout

    trials = load_trials(sqlite_url(db))
    done = finished(trials)
    assert sorted(t.number for t in done) == [0, 1, 2, 3, 4]
    assert len(trials) == len({t.number for t in trials})
    assert len(trials) == 5  # five of the seven baselines queued (the room there is), no copies
    for t in done:
        if t.number in before:
            old = before[t.number]
            assert (t._trial_id, t.state, t.value, t.params) == (
                old._trial_id,
                old.state,
                old.value,
                old.params,
            )
            assert t.datetime_complete == old.datetime_complete
    rows_after = {k: len(v) for k, v in rows_by_trial(db).items()}
    for trial_id, n in rows_before.items():
        assert rows_after[trial_id] == n
    assert_epoch_rows_match(db, trials, epochs=2)
    assert len(query(db, "SELECT * FROM sweeper_runs")) == 2

    third = tune("--n-trials", "5", *args)
    assert third.exit_code == 0, third.output
    assert summary_counts(third.stdout)["ran"] == 0
    assert len(load_trials(sqlite_url(db))) == 5


# --------------------------------------------------------------------------------------------
# 4. SIGKILL mid-trial
# --------------------------------------------------------------------------------------------


def test_sigkill_mid_trial_then_rerun_retrains_that_trial(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    url = sqlite_url(db)
    args = ["--storage", url, "--n-trials", "5", "--set", "train.epochs=6", "--set",
            "data.subset=400"]  # fmt: skip
    proc, log = start_tune(tmp_path, args, "killed.log")
    try:
        caught = wait_for_running_trial(proc, db, min_complete=1, max_rows=3)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)  # reaped: its pid no longer exists
    assert proc.returncode == -signal.SIGKILL, log.read_text()

    at_kill = load_trials(url)
    killed = next(t for t in at_kill if t.number == caught["number"])
    assert killed.state == TrialState.RUNNING
    assert killed.user_attrs["worker"] == f"{socket.gethostname()}:{proc.pid}"
    complete_before = {t.number: t for t in at_kill if t.state == TrialState.COMPLETE}
    assert complete_before
    killed_rows_before = rows_by_trial(db)[killed._trial_id]
    assert 1 <= len(killed_rows_before) < 6

    result = tune(*args)
    assert result.exit_code == 0, result.output
    counts = summary_counts(result.stdout)
    assert counts["finished"] == 5

    trials = load_trials(url)
    assert len(finished(trials)) == 5
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert not [t for t in trials if t.state == TrialState.FAIL]
    assert len(trials) == 5  # no copy of any trial was queued
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    for number, old in complete_before.items():
        new = next(t for t in trials if t.number == number)
        assert (new._trial_id, new.state, new.params, new.value) == (
            old._trial_id,
            old.state,
            old.params,
            old.value,
        )
    rerun = next(t for t in trials if t.number == killed.number)
    assert rerun._trial_id == killed._trial_id
    assert rerun.state in FINISHED
    assert rerun.params == killed.params
    assert rerun.user_attrs["baseline"] == killed.user_attrs["baseline"]
    assert "requeued" in rerun.user_attrs
    assert rerun.user_attrs["worker"] == f"{socket.gethostname()}:{os.getpid()}"

    rows = rows_by_trial(db)[rerun._trial_id]
    epochs = [r["epoch"] for r in rows]
    assert len(epochs) == len(set(epochs))
    assert epochs == list(range(len(rows)))
    new_run = max(r["id"] for r in query(db, "SELECT id FROM sweeper_runs"))
    assert {r["run_id"] for r in rows} == {new_run}, "rows of the killed attempt were left"
    dupes = query(
        db,
        "SELECT trial_id, epoch, COUNT(*) AS n FROM sweeper_epochs "
        "GROUP BY trial_id, epoch HAVING n > 1",
    )
    assert dupes == []
    assert_epoch_rows_match(db, trials, epochs=6)
    assert query(db, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]


STALE_STUDY = """\
[study]
name = "stale"
seed = 0

[data]
dataset = "digits"
subset = 400

[train]
epochs = 3

[sampler]
type = "random"

[pruner]
type = "median"
n_startup_trials = 1
n_warmup_steps = 0

[space]
schedules = ["constant"]
initial_lr = { low = 1e-5, high = 0.5, log = true }

[[baselines]]
name = "fast"
schedule = "constant"
initial_lr = 0.1

[[baselines]]
name = "slow"
schedule = "constant"
initial_lr = 1e-5
"""


def test_rerun_of_a_killed_trial_that_stops_earlier_leaves_no_rows_of_the_attempt(
    tmp_path: Path,
) -> None:
    study_file = tmp_path / "stale.toml"
    study_file.write_text(STALE_STUDY)
    db = tmp_path / "stale.db"
    url = sqlite_url(db)
    first = tune(str(study_file), "--storage", url, "--n-trials", "1")
    assert first.exit_code == 0, first.output

    # what a worker killed during epoch 4 of a hopeless tuned trial leaves in the store: the trial
    # RUNNING under its (dead) pid, three epoch rows; a rerun stops it after its first epoch
    # (baselines are never pruned: the victim is a tuned trial with the "slow" baseline's rate)
    study = optuna.load_study(study_name="stale", storage=url)
    study.enqueue_trial({"initial_lr": 1e-5})
    attempt = study.ask()
    assert attempt.user_attrs.get("baseline") is None
    attempt.suggest_float("initial_lr", 1e-5, 0.5, log=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    mark_worker(attempt, f"{socket.gethostname()}:{gone.pid}")
    con = sqlite3.connect(db)
    with con:
        for epoch in range(3):
            con.execute(
                "INSERT INTO sweeper_epochs (study_name, trial_id, trial_number, epoch, step, lr, "
                "loss, val_accuracy, seconds, run_id, created_at) "
                "VALUES ('stale', ?, ?, ?, ?, 1e-5, 2.3, 0.09, 0.1, 1, '2020-01-01 00:00:00')",
                (attempt._trial_id, attempt.number, epoch, 13 * (epoch + 1)),
            )
    con.close()

    second = tune(str(study_file), "--storage", url, "--n-trials", "2")
    assert second.exit_code == 0, second.output
    trials = load_trials(url, "stale")
    rerun = next(t for t in trials if t.number == attempt.number)
    assert rerun.state == TrialState.PRUNED
    assert rerun.user_attrs["requeued"]
    rows = rows_by_trial(db)[rerun._trial_id]
    assert len(rows) == len(rerun.intermediate_values), [(r["epoch"], r["run_id"]) for r in rows]
    assert_epoch_rows_match(db, trials, epochs=3)


# --------------------------------------------------------------------------------------------
# 5. Ctrl-C (or SIGTERM) mid-trial
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_mid_trial_requeues_it_and_rerun_completes_it(
    signum: signal.Signals, tmp_path: Path
) -> None:
    db = tmp_path / "int.db"
    url = sqlite_url(db)
    args = ["--storage", url, "--n-trials", "1", "--set", "train.epochs=6", "--set",
            "data.subset=400"]  # fmt: skip
    proc, log = start_tune(tmp_path, args, "interrupted.log")
    try:
        caught = wait_for_running_trial(proc, db, min_complete=0, max_rows=3)
        os.kill(proc.pid, signum)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text(errors="replace")
    assert rc == 130, output
    assert "Traceback" not in output
    assert "interrupted: " + RESUME_HINT in output

    trials = load_trials(url)
    stopped = next(t for t in trials if t.number == caught["number"])
    assert stopped.state == TrialState.WAITING
    assert "interrupted" in stopped.user_attrs["requeued"]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    params_before = stopped.params
    assert params_before  # sampled before training started
    runs = query(db, "SELECT * FROM sweeper_runs")
    assert len(runs) == 1
    assert runs[0]["finished_at"] is not None

    result = tune(*args)
    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout)["finished"] == 1
    trials = load_trials(url)
    again = next(t for t in trials if t.number == caught["number"])
    assert again.state in FINISHED
    assert again._trial_id == stopped._trial_id
    assert again.params == params_before
    assert len(finished(trials)) == 1
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert_epoch_rows_match(db, trials, epochs=6)


# --------------------------------------------------------------------------------------------
# 6. bad input: one line, exit status 2, no store touched
# --------------------------------------------------------------------------------------------

BAD_FILES = {
    "unknown_key": ("[train]\nepochs = 2\nepochz = 3\n", ["[train]", "'epochz'"]),
    "unknown_family": (
        '[space]\nschedules = ["constant", "cosinus"]\n',
        ["[space] schedules", "'cosinus'"],
    ),
    "low_above_high": (
        "[space]\ninitial_lr = { low = 0.5, high = 0.01 }\n",
        ["[space] initial_lr", "0.5", "0.01"],
    ),
    "non_positive_rate": ("[space]\ninitial_lr = -0.1\n", ["[space] initial_lr", "-0.1", "> 0"]),
    "non_positive_low": (
        "[space]\ninitial_lr = { low = 0.0, high = 0.1 }\n",
        ["initial_lr.low", "0.0", "> 0"],
    ),
    "non_positive_baseline_rate": (
        '[[baselines]]\nname = "zero"\nschedule = "constant"\ninitial_lr = 0.0\n',
        ["[[baselines]] #1 initial_lr", "0.0", "> 0"],
    ),
    "missing_dataset_path": (
        '[data]\ndataset = "mnist"\npath = "no-such-dir"\n',
        ["[data] path", "no-such-dir"],
    ),
    "malformed_toml": ("[train\nepochs = 2\n", ["not valid TOML", "line 1"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_study_file_is_one_line_and_touches_no_store(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text, expected = BAD_FILES[case]
    (tmp_path / "bad.toml").write_text(text)
    result = tune("bad.toml", "--n-trials", "1")
    assert result.exit_code == 2, result.output
    line = assert_one_error_line(result)
    assert "bad.toml" in line
    for part in expected:
        assert part in line, (part, line)
    assert not (tmp_path / "sweeper.db").exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "bad.toml"]


BAD_INVOCATIONS = {
    "missing_study_file": (["missing.toml"], ["missing.toml", "no such study file"]),
    "override_bad_value": (["--set", "train.epochs=zero"], ["digits.toml", "epochs", "'zero'"]),
    "override_non_positive": (["--set", "train.epochs=0"], ["digits.toml", "epochs", "got 0"]),
    "override_unknown_key": (["--set", "train.epochz=2"], ["digits.toml", "[train]", "'epochz'"]),
    "override_bad_rate": (["--set", "space.initial_lr=-1"], ["initial_lr", "-1"]),
    "override_not_key_value": (["--set", "trainepochs"], ["'trainepochs'", "section.key=value"]),
    "override_unknown_section": (["--set", "trian.epochs=2"], ["digits.toml", "'trian'"]),
    "subset_too_large": (["--set", "data.subset=100000"], ["subset", "100,000"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INVOCATIONS))
def test_bad_invocation_is_one_line_and_touches_no_store(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args, expected = BAD_INVOCATIONS[case]
    result = tune(*args, "--n-trials", "1")
    assert result.exit_code == 2, result.output
    line = assert_one_error_line(result)
    for part in expected:
        assert part in line, (part, line)
    assert not (tmp_path / "sweeper.db").exists()
    assert list(tmp_path.iterdir()) == []


SMALL_STUDY = """\
[study]
name = "small"
seed = 0

[data]
dataset = "digits"
subset = 400

[train]
epochs = 1
batch_size = 32

[pruner]
type = "none"

[space]
schedules = ["constant", "cosine"]
initial_lr = { low = 0.01, high = 0.2, log = true }
"""


def test_changed_study_file_is_refused_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    study_file = tmp_path / "small.toml"
    study_file.write_text(SMALL_STUDY)
    db = tmp_path / "sweeper.db"
    first = tune("small.toml", "--n-trials", "1")
    assert first.exit_code == 0, first.output
    assert len(load_trials(sqlite_url(db), "small")) == 1
    digest = file_digest(db)

    # a bad override on an existing store changes nothing
    bad = tune("small.toml", "--n-trials", "2", "--set", "train.epochs=-1")
    assert bad.exit_code == 2, bad.output
    line = assert_one_error_line(bad)
    assert "small.toml" in line
    assert "epochs" in line
    assert "-1" in line
    assert file_digest(db) == digest

    # the same file with other overrides is another definition: refused, named as such
    other = tune("small.toml", "--n-trials", "2", "--set", "train.epochs=2")
    assert other.exit_code == 2, other.output
    line = assert_one_error_line(other)
    assert "--allow-changed" in line
    assert "was run with no --set, this run has --set train.epochs=2" in line
    assert "different study file" not in line
    assert file_digest(db) == digest

    study_file.write_text(SMALL_STUDY.replace("high = 0.2", "high = 0.3"))
    refused = tune("small.toml", "--n-trials", "2")
    assert refused.exit_code == 2, refused.output
    line = assert_one_error_line(refused)
    assert "--allow-changed" in line
    assert "'small'" in line
    assert file_digest(db) == digest
    assert len(load_trials(sqlite_url(db), "small")) == 1

    allowed = tune("small.toml", "--n-trials", "2", "--allow-changed")
    assert allowed.exit_code == 0, allowed.output
    trials = load_trials(sqlite_url(db), "small")
    assert len(finished(trials)) == 2
    files = query(db, "SELECT * FROM sweeper_study_files")
    assert len(files) == 1
    assert files[0]["text"] == study_file.read_text()
    assert files[0]["hash"] == load_study_file(study_file).hash

    # the stored definition is now the new one: no flag needed any more
    again = tune("small.toml", "--n-trials", "2")
    assert again.exit_code == 0, again.output
    assert summary_counts(again.stdout)["ran"] == 0


# --------------------------------------------------------------------------------------------
# 7. storage errors and $SWEEPER_STORAGE
# --------------------------------------------------------------------------------------------


def test_sqlite_in_a_missing_directory_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = "sqlite:////nonexistent-dir/x.db"
    result = tune("--storage", url, "--n-trials", "1", *SMALL)
    assert result.exit_code != 0
    line = assert_one_error_line(result)
    assert "/nonexistent-dir" in line
    assert not Path("/nonexistent-dir").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["not a url", "foo://bar"])
def test_unparsable_url_is_one_line(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = tune("--storage", url, "--n-trials", "1", *SMALL)
    assert result.exit_code != 0
    assert "storage URL" in assert_one_error_line(result)
    assert list(tmp_path.iterdir()) == []


def _assert_storage_error_masked(
    url: str, masked: str, via_env: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if via_env:
        result = tune("--n-trials", "1", *SMALL, env={"SWEEPER_STORAGE": url})
    else:
        result = tune("--storage", url, "--n-trials", "1", *SMALL)
    assert "s3cret" not in result.output
    if isinstance(result.exception, ImportError):
        raise result.exception
    assert result.exit_code != 0
    line = assert_one_error_line(result)
    assert masked in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("via_env", [False, True], ids=["option", "env"])
def test_unreachable_server_is_one_line_with_the_password_masked(
    via_env: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql+psycopg://user:s3cret@127.0.0.1:1/db"
    _assert_storage_error_masked(url, "user:***@127.0.0.1:1/db", via_env, tmp_path, monkeypatch)


_MISSING_DRIVERS = [
    (module, url)
    for module, url in (
        ("MySQLdb", "mysql+mysqldb://user:s3cret@127.0.0.1:1/db"),
        ("pg8000", "postgresql+pg8000://user:s3cret@127.0.0.1:1/db"),
        ("pymssql", "mssql+pymssql://user:s3cret@127.0.0.1:1/db"),
    )
    if importlib.util.find_spec(module) is None
]


@pytest.mark.skipif(not _MISSING_DRIVERS, reason="every candidate driver is installed")
@pytest.mark.parametrize("via_env", [False, True], ids=["option", "env"])
def test_missing_database_driver_is_one_line_with_the_password_masked(
    via_env: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _module, url = _MISSING_DRIVERS[0]
    _assert_storage_error_masked(url, "user:***@127.0.0.1:1/db", via_env, tmp_path, monkeypatch)


def test_sweeper_storage_env_var_is_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env_db = tmp_path / "from-env.db"
    monkeypatch.setenv("SWEEPER_STORAGE", sqlite_url(env_db))
    result = tune("--n-trials", "1", "--set", "train.epochs=1", "--set", "data.subset=400")
    assert result.exit_code == 0, result.output
    assert env_db.is_file()
    assert not (tmp_path / "sweeper.db").exists()
    assert f"in {sqlite_url(env_db)}:" in result.stdout
    assert len(finished(load_trials(sqlite_url(env_db)))) == 1

    # --storage wins over the variable
    result = tune("--storage", "sqlite:////nonexistent-dir/x.db", "--n-trials", "1", *SMALL)
    assert result.exit_code != 0
    assert "/nonexistent-dir" in assert_one_error_line(result)
    assert len(finished(load_trials(sqlite_url(env_db)))) == 1


# --------------------------------------------------------------------------------------------
# 8. a user model beside the study file; small budgets
# --------------------------------------------------------------------------------------------

USER_MODELS = """\
import keras


def build(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


def logits(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def three_classes(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def raises(input_shape, num_classes):
    raise ValueError("no model today")


def not_a_model(input_shape, num_classes):
    return "a string"
"""


def _user_model_study(tmp_path: Path, module: str) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / f"{module}.py").write_text(USER_MODELS)
    study = folder / "mine.toml"
    study.write_text(SMALL_STUDY.replace("[train]\n", f'[train]\nmodel = "{module}:build"\n'))
    return study


def test_user_model_beside_the_study_file_is_found_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = _user_model_study(tmp_path, "beside_model_ok")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = tune(str(study), "--n-trials", "2")
    assert result.exit_code == 0, result.output
    trials = load_trials(sqlite_url(elsewhere / "sweeper.db"), "small")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("logits", "outputs no probabilities"),
        ("three_classes", "outputs shape (3,) per example, but the data has 10 classes"),
        ("raises", "ValueError: no model today"),
        ("not_a_model", "returned str, not a keras.Model"),
        ("missing", "has no function 'missing'"),
    ],
)
def test_bad_user_model_is_refused_in_one_line_before_anything_is_written(
    function: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = _user_model_study(tmp_path, f"beside_model_{function}")
    monkeypatch.chdir(tmp_path)
    result = tune(
        str(study), "--n-trials", "2", "--set", f'train.model="beside_model_{function}:{function}"'
    )
    assert result.exit_code == 2, result.output
    line = assert_one_error_line(result)
    assert expected in line, line
    assert not (tmp_path / "sweeper.db").exists()


HIDDEN_MODEL = """\
import keras


def build(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
"""


def test_a_changed_user_model_is_refused_by_tune_and_worker_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    module = tmp_path / "fingerprinted_model.py"
    module.write_text(HIDDEN_MODEL)
    (tmp_path / "small.toml").write_text(
        SMALL_STUDY.replace("[train]\n", '[train]\nmodel = "fingerprinted_model:build"\n')
    )
    db = tmp_path / "sweeper.db"
    first = tune("small.toml", "--n-trials", "1")
    assert first.exit_code == 0, first.output

    # the module edited (each command is a fresh process for the person who runs it)
    module.write_text(HIDDEN_MODEL.replace("Dense(16,", "Dense(24,"))
    monkeypatch.delitem(sys.modules, "fingerprinted_model")
    digest = file_digest(db)
    refused = tune("small.toml", "--n-trials", "2")
    assert refused.exit_code == 2, refused.output
    line = assert_one_error_line(refused)
    assert line.startswith("error: the model 'fingerprinted_model:build' changed since study ")
    assert "layer 3 Dense units 16 -> 24, weight shapes (64, 16) (16,) -> (64, 24) (24,)" in line
    assert line.endswith("another --study-name, or --allow-changed to continue it with this one")
    assert file_digest(db) == digest
    monkeypatch.delitem(sys.modules, "fingerprinted_model")
    args = ["worker", "--study-name", "small", "--study-file", "small.toml", "--n-trials", "2"]
    worker = CliRunner().invoke(main, args)
    assert worker.exit_code == 2, worker.output
    assert "layer 3 Dense units 16 -> 24" in assert_one_error_line(worker)
    assert "`sweeper tune STUDY_FILE --allow-changed`" in worker.output
    assert file_digest(db) == digest
    assert len(load_trials(sqlite_url(db), "small")) == 1

    monkeypatch.delitem(sys.modules, "fingerprinted_model")
    allowed = tune("small.toml", "--n-trials", "2", "--allow-changed")
    assert allowed.exit_code == 0, allowed.output
    assert "the model 'fingerprinted_model:build' changed since study 'small' was created" in (
        allowed.output
    )
    assert summary_counts(allowed.stdout)["ran"] == 1
    (attr,) = query(db, "SELECT value_json FROM study_user_attributes WHERE key = ?",
                    ("model_fingerprint",))  # fmt: skip
    assert json.loads(attr["value_json"])["layers"][2]["config"]["units"] == 24
    # the new model is the study's now: the worker joins it (nothing is left to run)
    monkeypatch.delitem(sys.modules, "fingerprinted_model")
    joined = CliRunner().invoke(main, args)
    assert joined.exit_code == 0, joined.output


def test_missing_user_module_names_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = _user_model_study(tmp_path, "beside_model_present")
    monkeypatch.chdir(tmp_path)
    result = tune(str(study), "--set", 'train.model="no_such_module_here:build"')
    assert result.exit_code == 2, result.output
    line = assert_one_error_line(result)
    assert f"no module 'no_such_module_here' in {study.parent}" in line  # before the backend
    assert line.endswith("put no_such_module_here.py beside the study file or install it")
    assert not (tmp_path / "sweeper.db").exists()


def test_a_budget_without_room_for_tuning_says_so_and_queues_no_extra_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = sqlite_url(tmp_path / "sweeper.db")
    n_baselines = len(load_study_file(None).baselines)
    result = tune("--n-trials", "3", *SMALL)
    assert result.exit_code == 0, result.output
    assert f"warning: 3 trials leave room for 3 of the {n_baselines} baselines" in result.stderr
    assert f"use --n-trials {n_baselines + 1} or more" in result.stderr
    assert "no tuned trial has completed yet" in result.stdout
    trials = load_trials(url)
    assert len(trials) == 3
    assert all(t.state == TrialState.COMPLETE for t in trials)  # none left WAITING
    assert all(t.user_attrs.get("baseline") for t in trials)

    # a larger target queues the baselines still missing, once each, then tunes
    more = tune("--n-trials", str(n_baselines + 2), *SMALL)
    assert more.exit_code == 0, more.output
    assert "warning:" not in more.stderr
    trials = load_trials(url)
    assert len(trials) == n_baselines + 2
    names = [t.user_attrs.get("baseline") for t in trials if t.user_attrs.get("baseline")]
    assert sorted(names) == sorted(b.name for b in load_study_file(None).baselines)
    assert "tuning gains" in more.stdout
