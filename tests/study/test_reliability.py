"""Faults, bad input and a hostile store: one clear line, nothing stuck, nothing run that the user
did not confirm. Real SQLite stores, real processes for the worker; tiny digits studies."""

from __future__ import annotations

import pickle
import signal
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner, Result
from optuna.trial import TrialState

from sweeper.cli.commands import main
from sweeper.errors import DataError
from sweeper.search.recovery import reap_dead_local_trials
from sweeper.search.run_options import RunOptions
from sweeper.search.worker import worker_command
from sweeper.store.storage_url import mask_url
from sweeper.store.store import GRACE_PERIOD, Store
from sweeper.studyfile.names import check_study_name, file_stem, shown
from sweeper.training.data import DataSpec, load_dataset

STUDY = """\
[study]
name = "rel"
seed = 0

[data]
dataset = "digits"
subset = 300

[train]
model = "{model}"
epochs = 1
batch_size = 64

[pruner]
type = "none"

[space]
schedules = ["constant"]
initial_lr = {{ low = 0.01, high = 0.2, log = true }}
"""

USER_MODEL = """\
import keras


def build(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
"""


pytestmark = pytest.mark.usefixtures("clean_process")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_error_line(result: Result) -> str:
    assert "Traceback" not in result.output, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [ln for ln in result.stderr.splitlines() if not ln.startswith(("tuning ", "Keras "))]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def digest(db: Path) -> bytes:
    return db.read_bytes()


# -- study names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../x", "path separator"),
        ("/etc/passwd", "path separator"),
        ("..", "path component"),
        ("a\nb", "control character"),
        ("x" * 300, "at most 128"),
        ("   ", "empty"),
    ],
)
def test_bad_study_names_are_refused(name: str, problem: str) -> None:
    with pytest.raises(Exception, match=problem):
        check_study_name(name)


def test_names_from_other_tools_are_safe_in_files_and_on_screen() -> None:
    assert file_stem("digits") == "digits"
    for name in ("../../x", "/abs/path", "..", "a\nb", "x" * 300):
        stem = file_stem(name)
        assert "/" not in stem and not stem.startswith(".") and len(stem) < 100
    assert file_stem("a/b") != file_stem("a_b")  # no two names share files
    assert shown("a\nb\x1b[31m") == "a\\nb\\x1b[31m"


def test_a_bad_study_name_is_one_line_and_touches_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(STUDY.format(model="mnist-cnn"))
    for args in (["--study-name", "../escape"], ["--set", f'study.name="{"n" * 300}"']):
        result = run("tune", "s.toml", "--n-trials", "1", *args)
        assert result.exit_code == 2, result.output
        one_error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_report_and_plot_of_a_study_named_like_a_path_stay_in_out(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(study_name="../../escaped", storage=url, direction="maximize")
    for x in (0.1, 0.2, 0.3):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        study.tell(trial, x)
    out = tmp_path / "deep" / "out"
    for args in (["report", "../../escaped", "--out", str(out)],
                 ["plot", "../../escaped", "history", "--out", str(out)]):  # fmt: skip
        result = run(*args, "--storage", url)
        assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and all(p.startswith("_.._escaped-") for p in written), written
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]
    assert not (tmp_path / "escaped-report.html").exists()


def test_status_shows_control_characters_of_a_name_escaped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    optuna.create_study(study_name="evil\n\x1b[2Jname", storage=url)
    result = run("status", "--storage", url)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "evil\\n\\x1b[2Jname" in result.output


# -- passwords -------------------------------------------------------------------------------


def test_passwords_in_query_parameters_are_masked() -> None:
    url = "postgresql+psycopg://u:userinfo-pw@127.0.0.1:1/db?password=query-pw&sslmode=disable"
    masked = mask_url(url)
    assert "userinfo-pw" not in masked and "query-pw" not in masked
    assert "sslmode=disable" in masked and masked.count("***") == 2
    store = Store(url)
    error = store.as_error(RuntimeError("login failed for password query-pw"))
    assert "query-pw" not in str(error) and "userinfo-pw" not in str(error)


def test_worker_command_lines_carry_no_storage_url() -> None:
    cmd = worker_command("study", 10, RunOptions(checkpoint_dir="/tmp/ckpt"))
    assert "--storage" not in cmd
    assert cmd[1] == "-P"  # the working directory is not put on sys.path


# -- a store that would run code -------------------------------------------------------------


def _tuned_user_model_study(tmp_path: Path) -> tuple[str, Path]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "rel_user_model.py").write_text(USER_MODEL)
    study = project / "rel.toml"
    study.write_text(STUDY.format(model="rel_user_model:build"))
    url = f"sqlite:///{tmp_path / 'u.db'}"
    result = run("tune", str(study), "--storage", url, "--n-trials", "1",
                 "--checkpoint-dir", str(tmp_path / "ckpt"))  # fmt: skip
    assert result.exit_code == 0, result.output
    return url, study


def test_worker_runs_a_stored_user_model_only_when_confirmed(tmp_path: Path) -> None:
    url, study = _tuned_user_model_study(tmp_path)
    mine = tmp_path / "mine"  # this worker's copy of the project
    mine.mkdir()
    copy = mine / "rel.toml"
    copy.write_text(study.read_text())
    (mine / "rel_user_model.py").write_text(USER_MODEL)
    study.unlink()  # the stored source no longer confirms it on this machine
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt")]
    refused = run("worker", "--storage", url, "--study-name", "rel", "--n-trials", "2", *ckpt)
    assert refused.exit_code == 2, refused.output
    line = one_error_line(refused)
    assert "imports model 'rel_user_model:build'" in line and "--trust-store" in line
    assert len(optuna.load_study(study_name="rel", storage=url).trials) == 1

    confirmed = run("worker", "--storage", url, "--study-name", "rel", "--n-trials", "2",
                    "--study-file", str(copy), *ckpt)  # fmt: skip
    assert confirmed.exit_code == 0, confirmed.output
    assert len(optuna.load_study(study_name="rel", storage=url).trials) == 2


def test_worker_refuses_a_study_file_edited_in_the_store(tmp_path: Path) -> None:
    url, _study = _tuned_user_model_study(tmp_path)
    con = sqlite3.connect(tmp_path / "u.db")
    with con:
        con.execute(
            "UPDATE sweeper_study_files SET text = replace(text, 'epochs = 1', 'epochs = 2')"
        )
    con.close()
    result = run("worker", "--storage", url, "--study-name", "rel", "--n-trials", "2",
                 "--trust-store", "--checkpoint-dir", str(tmp_path / "ckpt"))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "does not match its stored hash" in one_error_line(result)
    assert len(optuna.load_study(study_name="rel", storage=url).trials) == 1


def test_a_crafted_cifar_batch_is_not_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with (folder / name).open("wb") as f:
            pickle.dump({b"data": Payload(), b"labels": [0]}, f)
    with pytest.raises(DataError, match="refused to load"):
        load_dataset(DataSpec("cifar10", path=str(tmp_path)))
    assert not marker.exists()


def test_real_cifar_batches_still_load(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, size=(20, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, size=20)],
        }
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f, protocol=2)
    dataset = load_dataset(DataSpec("cifar10", path=str(tmp_path), validation_fraction=0.2))
    assert dataset.x_train.shape[1:] == (32, 32, 3)


# -- environment checked before the first trial -------------------------------------------------


def test_an_unwritable_checkpoint_folder_is_one_line_before_any_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(STUDY.format(model="mnist-cnn"))
    (tmp_path / "a-file").write_text("")
    result = run("tune", "s.toml", "--n-trials", "2", "--checkpoint-dir", "a-file/ckpt")
    assert result.exit_code == 2, result.output
    assert "checkpoint folder a-file/ckpt/rel cannot be written" in one_error_line(result)
    assert not (tmp_path / "sweeper.db").exists()
    fixed = run("tune", "s.toml", "--n-trials", "2", "--checkpoint-dir", "ckpt")
    assert fixed.exit_code == 0, fixed.output
    assert "2/2 configurations finished (2 complete" in fixed.stdout


@pytest.mark.parametrize(
    "args",
    [["--timeout", "nan"], ["--timeout", "inf"], ["--set", "train.epochs=1000000000"]],
    ids=["timeout-nan", "timeout-inf", "epochs"],
)
def test_absurd_limits_are_refused(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("tune", "--n-trials", "1", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "sweeper.db").exists()


# -- bad paths and values of read-only commands ------------------------------------------------


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 's.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    for x in (0.1, 0.5, 0.9):
        trial = study.ask({"initial_lr": optuna.distributions.FloatDistribution(1e-3, 1, log=True)})
        study.tell(trial, x)
    return url


@pytest.mark.parametrize(
    "args",
    [
        ["report", "s", "--out", "{file}"],
        ["report", "s", "--out", "/proc/no/such"],
        ["plot", "s", "history", "--out", "{file}"],
        ["plot", "s", "history", "--out", "/proc/no/such"],
        ["schedules", "--plot", "/proc/no/such/x.png"],
        ["schedules", "--set", "initial_lr=abc"],
    ],
    ids=["report-file", "report-proc", "plot-file", "plot-proc", "schedules-plot", "schedules-set"],
)
def test_bad_paths_and_values_are_one_line(
    args: list[str], small_store: str, tmp_path: Path
) -> None:
    file = tmp_path / "existing-file"
    file.write_text("keep me")
    args = [a.replace("{file}", str(file)) for a in args]
    if args[0] != "schedules":
        args += ["--storage", small_store]
    result = run(*args)
    assert result.exit_code != 0, result.output
    one_error_line(result)
    assert file.read_text() == "keep me"


def test_worker_and_evaluate_on_an_optuna_only_store_create_no_table(small_store: str) -> None:
    db = Path(small_store.removeprefix("sqlite:///"))
    before = digest(db)
    for args in (["worker", "--study-name", "s"], ["evaluate", "s"]):
        result = run(*args, "--storage", small_store)
        assert result.exit_code != 0, result.output
        assert "no stored study file" in one_error_line(result)
    assert digest(db) == before


# -- a trial nobody owns -----------------------------------------------------------------------


def test_a_running_trial_that_never_beat_is_freed_after_the_grace_period(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stuck.db'}"
    store = Store(url)
    study = optuna.create_study(study_name="stuck", storage=store.optuna_storage())
    stuck = study.ask()  # as a process killed before its first heartbeat leaves it
    study.enqueue_trial({})
    fresh = study.ask()  # taken just now: its owner may still be starting
    assert reap_dead_local_trials(study) == 0
    status = run("status", "--storage", url)
    assert "stale" not in status.output

    old = (datetime.now() - timedelta(seconds=GRACE_PERIOD + 5)).strftime("%Y-%m-%d %H:%M:%S.%f")
    con = sqlite3.connect(tmp_path / "stuck.db")
    with con:
        con.execute(
            "UPDATE trials SET datetime_start = ? WHERE trial_id = ?", (old, stuck._trial_id)
        )
    con.close()
    status = run("status", "--storage", url)
    assert f"running trial {stuck.number} on ? (no heartbeat, stale" in status.output, status.output
    assert reap_dead_local_trials(study) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states[stuck.number] == TrialState.WAITING
    assert states[fresh.number] == TrialState.RUNNING
    store.close()


# -- a SIGKILL at the hardest moments, then the same command ----------------------------------

KILL_STUDY = STUDY.format(model="mnist-cnn").replace("epochs = 1", "epochs = 2") + (
    '\n[[baselines]]\nname = "b1"\nschedule = "constant"\ninitial_lr = 0.05\n'
    '\n[[baselines]]\nname = "b2"\nschedule = "constant"\ninitial_lr = 0.1\n'
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "pack"),
    [
        ("after-ask", 1),
        ("after-stamp", 1),
        ("baselines", 1),
        ("before-tell", 1),
        ("before-tell", 2),  # packed: one trial trained, not told; the other between epochs
        ("after-place", 1),  # a place claimed, its trial not taken: taken over after the grace
        ("after-place", 2),
    ],
)
def test_a_kill_at_any_point_then_the_same_command_finishes_the_exact_count(
    point: str, pack: int, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "k.toml").write_text(KILL_STUDY)
    url = f"sqlite:///{tmp_path / 'k.db'}"
    cmd = [sys.executable, "-m", "sweeper", "tune", "k.toml", "--storage", url, "--n-trials", "4"]
    cmd += ["--pack", str(pack)]
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPER_STORAGE", "SWEEPER_KILL_AT")}
    env["SWEEPER_HEARTBEAT_GRACE"] = "3"  # a killed trial's heartbeat goes stale in seconds
    killed = subprocess.run(
        cmd, cwd=tmp_path, env={**env, "SWEEPER_KILL_AT": point},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert again.returncode == 0, again.stderr
    assert "4/4 configurations finished" in again.stdout, again.stdout
    trials = optuna.load_study(study_name="rel", storage=url).get_trials()
    states = [t.state for t in trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states, states
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    counted = [t for t in trials if t.number not in retried]
    assert len(counted) == 4, [(t.number, t.state.name) for t in trials]
    baselines = sorted(t.user_attrs["baseline"] for t in counted if t.user_attrs.get("baseline"))
    assert baselines == ["b1", "b2"]  # each once, whatever the kill point


def test_read_only_commands_leave_the_store_file_as_it_was(
    small_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Path(small_store.removeprefix("sqlite:///"))
    con = sqlite3.connect(db)
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    con.close()
    before = digest(db)
    commands = (["status"], ["best", "s"], ["export", "s", "--format", "json"])
    for args in commands:
        result = run(*args, "--storage", small_store)
        assert result.exit_code == 0, result.output
    assert digest(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]  # no -wal, no -shm
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == mode
    con.close()
    # a store this user may read but not write (nor its folder) is opened as immutable
    import sweeper.analysis.read_store

    monkeypatch.setattr(sweeper.analysis.read_store.os, "access", lambda *_a, **_k: False)
    result = run("status", "--storage", small_store)
    assert result.exit_code == 0, result.output
    assert "s " in result.output
    assert digest(db) == before


BREAKS_IN_TRAINING = """\
import keras


class NeedsAModule(keras.layers.Layer):
    def call(self, x, training=None):
        if training:
            import a_module_this_machine_lacks  # noqa: F401
        return x


def build(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = NeedsAModule()(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
"""


@pytest.mark.slow
def test_a_trial_failing_for_the_machine_stops_the_sweep_and_is_not_counted(
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    module = tmp_path / "rel_breaks.py"
    module.write_text(BREAKS_IN_TRAINING)
    (tmp_path / "s.toml").write_text(STUDY.format(model="rel_breaks:build"))
    url = f"sqlite:///{tmp_path / 'e.db'}"
    cmd = [sys.executable, "-m", "sweeper", "tune", "s.toml", "--storage", url, "--n-trials", "2"]
    env = {k: v for k, v in os.environ.items() if k != "SWEEPER_STORAGE"}

    def sweep() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )

    broken = sweep()
    assert broken.returncode == 1, broken.stderr
    errors = [ln for ln in broken.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "a_module_this_machine_lacks" in errors[0], broken.stderr
    assert "queued again, not counted" in errors[0]
    assert "Traceback" not in broken.stderr
    trials = optuna.load_study(study_name="rel", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.WAITING]  # back in the queue, not FAILED

    module.write_text(USER_MODEL)  # the fix
    fixed = sweep()
    assert fixed.returncode == 0, fixed.stderr
    assert (
        "2/2 configurations finished (2 complete, 0 paused (resumable), 0 stopped, 0 failed)"
        in fixed.stdout
    )


def test_a_transaction_an_interrupt_left_open_does_not_lock_out_the_run_record(
    tmp_path: Path,
) -> None:
    """A Ctrl-C inside an Optuna storage call can leave its connection checked out in a
    transaction that holds SQLite's write lock (BEGIN IMMEDIATE), alive while the interrupt's
    frames are. The run record written as the interrupt unwinds must not wait on it."""
    store = Store(f"sqlite:///{tmp_path / 'held.db'}")
    run_id = store.start_run("held", {})
    storage = store.optuna_storage(heartbeat=False)
    held = storage.engine.connect()  # what the interrupted call's frames still reference
    held.exec_driver_sql("SELECT 1")  # its BEGIN IMMEDIATE takes the write lock
    assert held.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
    try:
        assert store.roll_back_abandoned() == 1
        t0 = time.monotonic()
        store.finish_run(run_id)  # without the roll-back: the 60 s busy timeout, then an error
        assert time.monotonic() - t0 < 5
        assert store.roll_back_abandoned() == 0  # nothing left open
    finally:
        held.close()
        store.close()
