"""Fault tolerance of ``sweeper tune --workers N``: real processes, killed for real.

Each test starts ``python -m sweeper tune ... --workers N`` with ``subprocess.Popen`` in
``tmp_path`` (SQLite store and checkpoints there too), on the MNIST test set shrunk to a few
seconds a trial, or on the scikit-learn digits with a one-layer user model (``tests/tiny_model.py``,
found through ``PYTHONPATH``). Workers are located through the ``worker`` user attribute
("host:pid") of their RUNNING trial and killed with SIGKILL; the store is then checked directly:
finished trials, per-epoch rows, checkpoints, ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from process_helpers import (
    assert_exact_places,
    claim_queue_concurrently,
    sweeper_env,
    tiny_study,
)

from sweeper.errors import SweeperError
from sweeper.search.attempt import error_line
from sweeper.studyfile.config import load_study_file

pytestmark = pytest.mark.slow

TESTS_DIR = Path(__file__).resolve().parents[1]  # tests/
ROOT = TESTS_DIR.parent
MNIST_STUDY = ROOT / "studies" / "mnist-t10k.toml"
STUDY = "mnist-t10k"
EPOCHS = 5
# a few seconds a trial; every trial runs all its epochs (no pruner), and no trial is queued at
# the start (no baselines): the queue has tests of its own
SHRINK = (
    "--set", "data.subset=1200",
    "--set", f"train.epochs={EPOCHS}",
    "--set", "train.batch_size=64",
    "--set", "pruner.type=none",
    "--set", "baselines=[]",
)  # fmt: skip
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
STORAGE_ERRORS = re.compile(
    r"database is locked|database table is locked|OperationalError|disk I/O error|"
    r"malformed|StorageError|cannot use storage",
    re.IGNORECASE,
)
SUMMARY = re.compile(r"(\d+)/(\d+) configurations finished \((\d+) complete")
ABORT = re.compile(r"(\d+) of the last (\d+) trials failed")
PR_SET_CHILD_SUBREAPER = 36


# --------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------


@dataclass
class Proc:
    """A sweeper process whose stdout and stderr go to one log file."""

    popen: subprocess.Popen[bytes]
    log: Path
    args: list[str]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, n: int = 40) -> str:
        lines = [ln for ln in self.output().splitlines() if not _backend_noise(ln)]
        return "\n".join(lines[-n:])

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{' '.join(self.args)} still running after {timeout} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the process and whatever is left of its group (its workers)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)


def _backend_noise(line: str) -> bool:
    """TensorFlow/absl start-up chatter (not sweeper's output)."""
    return line.startswith(("I0000", "E0000", "W0000", "WARNING: All log messages"))


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start ``python -m sweeper ARGS`` in its own process group; all are killed at teardown."""
    procs: list[Proc] = []

    def start(*args: str, cwd: Path | None = None, name: str = "sweeper", **env: str) -> Proc:
        log = tmp_path / f"{name}-{len(procs)}.log"
        cmd = [sys.executable, "-m", "sweeper", *args]
        with log.open("wb") as fh:
            popen = subprocess.Popen(
                cmd,
                cwd=cwd or tmp_path,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=sweeper_env(**env),
                start_new_session=True,
            )
        proc = Proc(popen, log, cmd)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()


def run_sweeper(spawn: Callable[..., Proc], *args: str, timeout: float = 240, **kw: Any) -> Proc:
    proc = spawn(*args, **kw)
    proc.wait(timeout)
    return proc


def _start_time(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (0 if it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def children(pid: int) -> list[int]:
    """Child pids of ``pid``, in the order they were started."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError):
                out += [
                    int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                ]
    except FileNotFoundError:
        return []
    return sorted(out, key=lambda child: (_start_time(child), child))


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Make this process the reaper of orphaned descendants (so their exit codes can be read)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER) is not available")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def wait_child(pid: int, timeout: float) -> int | None:
    """Exit code of our (adopted) child ``pid`` (negative: killed by that signal), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None  # not ours to reap: it has gone through another parent
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    return None


# --------------------------------------------------------------------------------------------
# the store, read directly
# --------------------------------------------------------------------------------------------


def connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, timeout=60)


def running_trials(db: Path) -> list[tuple[int, int, str, int]]:
    """(trial_id, number, host, pid) of every RUNNING trial that has a ``worker`` attribute."""
    if not db.exists():
        return []
    try:
        with contextlib.closing(connect(db)) as con:
            rows = con.execute(
                "SELECT t.trial_id, t.number, a.value_json FROM trials t "
                "JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'worker' "
                "WHERE t.state = 'RUNNING' ORDER BY t.number"
            ).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    out = []
    for trial_id, number, value in rows:
        host, _, pid = str(json.loads(value)).rpartition(":")
        if pid.isdigit():
            out.append((trial_id, number, host, int(pid)))
    return out


def epoch_rows(db: Path, trial_id: int) -> list[int]:
    with contextlib.closing(connect(db)) as con:
        return [
            r[0]
            for r in con.execute(
                "SELECT epoch FROM sweeper_epochs WHERE trial_id = ? ORDER BY epoch", (trial_id,)
            )
        ]


def integrity(db: Path) -> str:
    with contextlib.closing(connect(db)) as con:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])


def load_trials(url: str, study: str) -> list[FrozenTrial]:
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    try:
        return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()


def origin(t: FrozenTrial) -> int:
    """The number of the first attempt of ``t`` (a retry copy names it in ``failed_trial``)."""
    failed = t.system_attrs.get("failed_trial")
    return int(failed) if failed is not None else t.number


def superseded(trials: list[FrozenTrial]) -> set[int]:
    """Failed trials that a retry copy replaces."""
    return {int(t.system_attrs["failed_trial"]) for t in trials if "failed_trial" in t.system_attrs}


def continued(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of the paused trials that a later trial continues (promoted)."""
    return {int(t.user_attrs["promoted_from"]) for t in trials if "promoted_from" in t.user_attrs}


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The finished trials that count towards the target: a retried failure counts through its
    retry, a promoted trial through its continuation."""
    retried = superseded(trials)
    return [
        t
        for t in trials
        if t.state in FINISHED
        and not (t.state == TrialState.FAIL and t.number in retried)
        and t.number not in continued(trials)
    ]


def paused_checkpoints(trials: list[FrozenTrial]) -> list[str]:
    """The checkpoint folders a finished sweep keeps: those of paused, never continued trials."""
    taken = continued(trials)
    return sorted(
        f"trial-{t.user_attrs.get('config', t.number)}"
        for t in trials
        if t.state == TrialState.PRUNED
        and "paused_at_epoch" in t.user_attrs
        and t.number not in taken
    )


def checkpoint_dirs(ckpt: Path, study: str) -> list[str]:
    """The trials' checkpoint folders (the study's kept best model lies beside them)."""
    folder = ckpt / study
    return sorted(p.name for p in folder.glob("trial-*")) if folder.is_dir() else []


def assert_sweep_finished(
    db: Path, study: str, target: int, ckpt: Path, *, epochs: int
) -> list[FrozenTrial]:
    """Exactly ``target`` finished trials, none left RUNNING or WAITING, every trial's epochs
    0..n-1 stored once, no checkpoint left behind, and a sound database file."""
    trials = load_trials(f"sqlite:///{db}", study)
    states = Counter(t.state.name for t in trials)
    assert not [t.number for t in trials if t.state == TrialState.RUNNING], states
    assert not [t.number for t in trials if t.state == TrialState.WAITING], states
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    done = counted(trials)
    assert len(done) == target, f"{len(done)} finished trials for a target of {target}: {states}"
    for t in done:
        rows = epoch_rows(db, t._trial_id)
        if t.state == TrialState.COMPLETE:
            assert rows == list(range(epochs)), f"trial {t.number}: epochs {rows}"
        elif t.state == TrialState.PRUNED:
            assert rows == list(range(len(rows))) and rows, f"trial {t.number}: epochs {rows}"
    with contextlib.closing(connect(db)) as con:
        dupes = con.execute(
            "SELECT trial_id, epoch, COUNT(*) FROM sweeper_epochs GROUP BY trial_id, epoch "
            "HAVING COUNT(*) > 1"
        ).fetchall()
        numbers_ok = con.execute(
            "SELECT COUNT(*) FROM sweeper_epochs e JOIN trials t ON t.trial_id = e.trial_id "
            "WHERE e.trial_number != t.number"
        ).fetchone()[0]
    assert dupes == []
    assert numbers_ok == 0, "epoch rows carry another trial's number"
    kept = paused_checkpoints(trials)  # a paused trial keeps its checkpoint to be continued
    assert checkpoint_dirs(ckpt, study) == kept, "checkpoints left behind by finished trials"
    assert integrity(db) == "ok"
    return trials


def summary_counts(output: str) -> tuple[int, ...]:
    found = SUMMARY.findall(output)
    assert found, f"no summary line in:\n{output[-3000:]}"
    return tuple(int(x) for x in found[-1])


@dataclass(frozen=True)
class Victim:
    trial_id: int
    number: int
    pid: int


def find_victim(
    proc: Proc,
    db: Path,
    ckpt: Path,
    choose: Callable[[list[int]], set[int]],
    timeout: float = 180,
) -> Victim:
    """A RUNNING trial of a worker chosen among ``proc``'s children, once it has stored at least
    one epoch and written its checkpoint, and still has epochs to go."""
    host = socket.gethostname()

    def look() -> Victim | None:
        if not proc.alive():
            pytest.fail(f"the sweep ended before a worker could be killed:\n{proc.tail()}")
        workers = children(proc.pid)
        if len(workers) < 2:
            return None
        wanted = choose(workers)
        for trial_id, number, w_host, pid in running_trials(db):
            if w_host != host or pid not in wanted:
                continue
            rows = epoch_rows(db, trial_id)
            meta = ckpt / STUDY / f"trial-{number}" / "training_metadata.json"
            if 1 <= len(rows) < EPOCHS - 1 and meta.exists():
                return Victim(trial_id, number, pid)
        return None

    return wait_until(look, timeout, "a worker's trial with a stored epoch and a checkpoint", 0.05)


def checkpoint_epoch(ckpt: Path, number: int) -> int | None:
    """The epoch a trial's checkpoint resumes at (None if unreadable)."""
    meta = ckpt / STUDY / f"trial-{number}" / "training_metadata.json"
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return None


def resumed_attempt(trials: list[FrozenTrial], number: int) -> FrozenTrial:
    """The finished attempt of trial ``number``: itself, or the retry copy that replaced it."""
    by_number = {t.number: t for t in trials}
    t = by_number[number]
    if t.state == TrialState.FAIL and number in superseded(trials):
        copies = [c for c in trials if origin(c) == number and c.number != number]
        assert copies, f"trial {number} failed and no retry copy exists"
        t = max(copies, key=lambda c: c.number)
    assert t.state == TrialState.COMPLETE, f"trial {number} ended {t.state.name}"
    return t


@pytest.fixture(scope="module")
def mnist_available() -> None:
    try:
        load_study_file(MNIST_STUDY, SHRINK[1::2])
    except SweeperError as exc:
        pytest.skip(f"MNIST-t10k study unusable here: {exc}")


def tune_args(db: Path, ckpt: Path, n_trials: int, workers: int = 2) -> list[str]:
    return [
        "tune", str(MNIST_STUDY), "--storage", f"sqlite:///{db}",
        "--n-trials", str(n_trials), "--workers", str(workers),
        "--checkpoint-dir", str(ckpt), *SHRINK,
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------
# (a) a worker killed mid-trial
# --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("mnist_available")
def test_sigkill_worker_mid_trial_resumes_from_checkpoint(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    db, ckpt, target = tmp_path / "sweep.db", tmp_path / "ckpt", 5
    args = tune_args(db, ckpt, target)
    first = spawn(*args, name="tune")
    # the first worker started: the one `sweeper tune` waits on first
    victim = find_victim(first, db, ckpt, lambda workers: {workers[0]})
    os.kill(victim.pid, signal.SIGKILL)
    wait_until(lambda: gone(victim.pid), 10, f"worker {victim.pid} to die")
    resume_at = checkpoint_epoch(ckpt, victim.number)
    rows_at_kill = len(epoch_rows(db, victim.trial_id))
    assert rows_at_kill < EPOCHS, "the trial finished before the kill"
    if resume_at is not None:
        # the checkpoint follows the stored epoch (record, then back up)
        assert resume_at in (rows_at_kill - 1, rows_at_kill)
    first.wait(240)  # the other worker finishes the sweep, the killed trial included
    assert "Traceback" not in first.output(), first.tail()

    again = run_sweeper(spawn, *args, name="rerun")
    assert again.popen.returncode == 0, again.tail()
    assert summary_counts(again.output())[:2] == (target, target)

    trials = assert_sweep_finished(db, STUDY, target, ckpt, epochs=EPOCHS)
    resumed = resumed_attempt(trials, victim.number)
    got = resumed.user_attrs.get("resumed_from_epoch")
    assert got is not None and got >= 1, (
        f"trial {victim.number} did not resume: {resumed.user_attrs}"
    )
    if resume_at is not None:
        assert got == resume_at
    assert epoch_rows(db, resumed._trial_id) == list(range(EPOCHS))


@pytest.mark.usefixtures("mnist_available")
def test_dead_worker_trial_is_requeued_at_once(tmp_path: Path, spawn: Callable[..., Proc]) -> None:
    """The trial of a worker that died on this host goes back to the queue with its own number
    while the sweep runs (not after the 40 s heartbeat grace, as a failed trial plus a copy).

    The worker killed is the one `sweeper tune` does not wait on first, so it stays a zombie
    until the other worker exits: its pid still answers ``kill(pid, 0)``.
    """
    db, ckpt = tmp_path / "sweep.db", tmp_path / "ckpt"
    run = spawn(*tune_args(db, ckpt, 5), name="tune")
    victim = find_victim(run, db, ckpt, lambda workers: set(workers[1:]))
    os.kill(victim.pid, signal.SIGKILL)

    def requeued() -> bool:
        with contextlib.closing(connect(db)) as con:
            state, attr = con.execute(
                "SELECT t.state, a.value_json FROM trials t LEFT JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id AND a.key = 'requeued' WHERE t.trial_id = ?",
                (victim.trial_id,),
            ).fetchone()
        assert state != "FAIL", f"trial {victim.number} was failed instead of requeued"
        return attr is not None

    try:
        # the other worker reaps at its next trial (~3 s); 12 s is far below the 40 s grace
        wait_until(requeued, 12, f"trial {victim.number} of killed worker {victim.pid} requeued")
    finally:
        run.kill()


# --------------------------------------------------------------------------------------------
# (b) the parent killed: its workers put their trials back and exit
# --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("mnist_available")
def test_sigkill_parent_workers_requeue_and_exit(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    db, ckpt, target = tmp_path / "sweep.db", tmp_path / "ckpt", 5
    args = tune_args(db, ckpt, target)
    with subreaper():
        first = spawn(*args, name="tune")
        victim = find_victim(first, db, ckpt, lambda workers: set(workers))
        workers = children(first.pid)
        assert len(workers) == 2, workers
        first.popen.send_signal(signal.SIGKILL)
        assert first.popen.wait(timeout=30) == -signal.SIGKILL
        # orphaned, the workers are adopted by this process: their exit codes can be read
        codes = {pid: wait_child(pid, 60) for pid in workers}
    # SIGTERM from PR_SET_PDEATHSIG: the trial is put back, and `sweeper worker` exits 130
    assert set(codes.values()) == {130}, f"worker exit codes {codes}:\n{first.tail()}"
    assert "Traceback" not in first.output(), first.tail()

    trials = load_trials(f"sqlite:///{db}", STUDY)
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    interrupted = {t.number: t for t in trials if t.state == TrialState.WAITING}
    assert victim.number in interrupted, {t.number: t.state.name for t in trials}
    assert interrupted[victim.number].user_attrs.get("requeued") == "was interrupted"
    resume_at = checkpoint_epoch(ckpt, victim.number)
    assert resume_at is not None and resume_at >= 1, "the interrupted trial lost its checkpoint"

    again = run_sweeper(spawn, *args, name="rerun")
    assert again.popen.returncode == 0, again.tail()
    assert summary_counts(again.output())[:2] == (target, target)
    trials = assert_sweep_finished(db, STUDY, target, ckpt, epochs=EPOCHS)
    resumed = resumed_attempt(trials, victim.number)
    assert resumed.number == victim.number
    assert resumed.user_attrs.get("resumed_from_epoch") == resume_at
    assert epoch_rows(db, resumed._trial_id) == list(range(EPOCHS))


# --------------------------------------------------------------------------------------------
# (c) the failure policy, (d) many workers on one SQLite file, the queue
# --------------------------------------------------------------------------------------------


def test_error_line_looks_through_the_keras_wrapping_of_a_layer_error() -> None:
    wrapped = RuntimeError(
        "Exception encountered when calling Refuse.call().\n\n\x1b[1mthe real reason\x1b[0m\n\n"
        "Arguments received by Refuse.call():\n  \u2022 training=True"
    )
    assert error_line(wrapped) == "RuntimeError: the real reason"
    assert error_line(ValueError("plain\nsecond line")) == "ValueError: plain"
    assert error_line(KeyError()) == "KeyError"


@pytest.mark.parametrize("workers", [1, 2])
def test_failing_model_stops_the_sweep(
    tmp_path: Path, spawn: Callable[..., Proc], workers: int
) -> None:
    study = tiny_study(tmp_path, "tiny_model:fails_in_training")
    db = tmp_path / "fail.db"
    proc = run_sweeper(
        spawn,
        "tune", str(study), "--storage", f"sqlite:///{db}", "--n-trials", "30",
        "--workers", str(workers), "--checkpoint-dir", str(tmp_path / "ckpt"),
        name="tune",
    )  # fmt: skip
    assert proc.popen.returncode not in (0, 130), proc.tail()
    trials = load_trials(f"sqlite:///{db}", "tiny")
    # the default policy: stop when more than half of the last 10 finished trials failed
    assert 6 <= len(trials) <= 6 + 2 * workers, f"{len(trials)} trials run of 30"
    for t in trials:
        assert t.state == TrialState.FAIL, (t.number, t.state)
        assert "fails_in_training refuses" in str(t.user_attrs.get("traceback", "")), t.number
    lines = [ln for ln in proc.output().splitlines() if ln.strip() and not _backend_noise(ln)]
    last = lines[-1]
    match = ABORT.search(last)
    assert last.startswith("error: ") and match, f"last line: {last!r}"
    assert int(match.group(1)) == int(match.group(2)) >= 6
    assert "fails_in_training refuses" in last
    if workers == 1:
        assert [ln for ln in lines if ln.startswith("error:")] == [last]


def test_four_workers_share_one_sqlite_file(tmp_path: Path, spawn: Callable[..., Proc]) -> None:
    """4 worker processes x 12 trials on one SQLite file (4 x 50: scripts/stress_sqlite.py)."""
    study = tiny_study(tmp_path, "tiny_model:dense")
    db, ckpt, target = tmp_path / "stress.db", tmp_path / "ckpt", 12
    proc = run_sweeper(
        spawn,
        "tune", str(study), "--storage", f"sqlite:///{db}", "--n-trials", str(target),
        "--workers", "4", "--checkpoint-dir", str(ckpt),
        name="tune", timeout=300,
    )  # fmt: skip
    output = proc.output()
    assert proc.popen.returncode == 0, proc.tail()
    assert not STORAGE_ERRORS.search(output), STORAGE_ERRORS.search(output)
    assert "Traceback" not in output, proc.tail()
    trials = assert_sweep_finished(db, "tiny", target, ckpt, epochs=1)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    with contextlib.closing(connect(db)) as con:
        runs = con.execute("SELECT pid, finished_at FROM sweeper_runs").fetchall()
    assert len(runs) == 4 and all(finished for _, finished in runs), runs


@pytest.mark.parametrize("repeat", range(1))  # raise it to repeat the race locally
def test_three_workers_finish_exactly_the_target(
    tmp_path: Path, spawn: Callable[..., Proc], repeat: int
) -> None:
    """--workers 3, trials of a fraction of a second: never one configuration more than
    --n-trials (two workers seeing room at once), every place of the target bound (places.py)."""
    study = tiny_study(tmp_path, "tiny_model:dense")
    db, ckpt, target = tmp_path / "exact.db", tmp_path / "ckpt", 9
    proc = run_sweeper(
        spawn,
        "tune", str(study), "--storage", f"sqlite:///{db}", "--n-trials", str(target),
        "--workers", "3", "--checkpoint-dir", str(ckpt),
        name="tune", timeout=300,
    )  # fmt: skip
    output = proc.output()
    assert proc.popen.returncode == 0, proc.tail()
    assert "Traceback" not in output and not STORAGE_ERRORS.search(output), proc.tail()
    assert_sweep_finished(db, "tiny", target, ckpt, epochs=1)
    assert_exact_places(f"sqlite:///{db}", "tiny", target)
    assert summary_counts(output)[:2] == (target, target)


def test_two_workers_with_a_pack_each_share_one_sqlite_file(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    """--workers 2 --pack 3: every worker trains its own pack, no trial twice, the exact count."""
    study = tiny_study(tmp_path, "tiny_model:dense")
    db, ckpt, target = tmp_path / "packs.db", tmp_path / "ckpt", 10
    proc = run_sweeper(
        spawn,
        "tune", str(study), "--storage", f"sqlite:///{db}", "--n-trials", str(target),
        "--workers", "2", "--pack", "3", "--checkpoint-dir", str(ckpt),
        name="tune", timeout=300,
    )  # fmt: skip
    output = proc.output()
    assert proc.popen.returncode == 0, proc.tail()
    assert "Traceback" not in output and not STORAGE_ERRORS.search(output), proc.tail()
    trials = assert_sweep_finished(db, "tiny", target, ckpt, epochs=1)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    with contextlib.closing(connect(db)) as con:
        runs = con.execute("SELECT pid FROM sweeper_runs").fetchall()
        by_worker = con.execute(
            "SELECT value_json, COUNT(*) FROM trial_user_attributes WHERE key = 'worker' "
            "GROUP BY value_json"
        ).fetchall()
    assert len(runs) == 2, runs
    assert len(by_worker) == 2, by_worker  # both workers trained trials


def test_workers_stop_at_the_target_with_queued_trials(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    """Queued trials (baselines) beyond the target are not run: 2 workers, 2 trials."""
    study = tiny_study(tmp_path, "tiny_model:dense", baselines=5)
    db = tmp_path / "queue.db"
    proc = run_sweeper(
        spawn,
        "tune", str(study), "--storage", f"sqlite:///{db}", "--n-trials", "2",
        "--workers", "2", "--checkpoint-dir", str(tmp_path / "ckpt"),
        name="tune",
    )  # fmt: skip
    assert proc.popen.returncode == 0, proc.tail()
    trials = load_trials(f"sqlite:///{db}", "tiny")
    states = [(t.number, t.state.name) for t in trials]
    finished = len(counted(trials))
    assert finished == 2, f"{finished} finished trials for --n-trials 2: {states}"


def test_a_queued_trial_is_taken_by_one_worker_only(tmp_path: Path) -> None:
    """Baselines and requeued trials wait in the queue; two workers must never both run one
    (they would share its checkpoint directory and one would crash on "Cannot tell a FAIL
    trial")."""
    claims = claim_queue_concurrently(f"sqlite:///{tmp_path / 'queue.db'}")
    assert sorted(claims) == list(range(40))
    twice = sorted(n for n, c in claims.items() if c > 1)
    assert twice == [], f"queued trials taken by several processes at once: {twice}"
