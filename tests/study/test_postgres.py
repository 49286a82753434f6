"""sweeper on a real PostgreSQL server: several workers on one study, workers joining from the store.

A module-scoped fixture runs ``initdb`` and ``pg_ctl start`` (as the ``postgres`` user through
``runuser`` when the tests run as root) in a temporary directory, on a free loopback port with
trust authentication, plus one role that needs a password (for the bad-password test). The
tests are skipped, with the reason, only when the server binaries are missing or cannot run.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import FrozenTrial, TrialState
from process_helpers import (
    ask_concurrently,
    assert_exact_places,
    claim_queue_concurrently,
    sweeper_env,
    tiny_study,
)

from sweeper.errors import SweeperError
from sweeper.search.best_model import BEST_MODEL_ATTR, LOCK_FILE, MODEL_FILE, RECORD_FILE
from sweeper.search.runner import prepare_study
from sweeper.store.store import Store
from sweeper.studyfile.config import load_study_file
from sweeper.training.data import load_dataset
from sweeper.training.train_trial import steps_per_epoch

pytestmark = pytest.mark.slow

TESTS_DIR = Path(__file__).resolve().parents[1]  # tests/
ROOT = TESTS_DIR.parent
MNIST_STUDY = ROOT / "studies" / "mnist-t10k.toml"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
PW_USER, PW_RIGHT, PW_WRONG = "sweeper_pw", "right-Pa55word", "wr0ng-S3cret-pw"


# --------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgServer:
    url: str  # postgresql+psycopg://postgres@127.0.0.1:PORT/sweeper
    host: str
    port: int


def _server_bindir() -> Path | None:
    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        dirs.append(str(Path(on_path).parent))
    for d in dirs:
        if all((Path(d) / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return Path(d)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    bindir = _server_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
    pytest.importorskip("psycopg", reason="psycopg (PostgreSQL driver) is not installed")
    prefix: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the postgres user
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if runuser is None or owner is None:
            pytest.skip("running as root without runuser or a 'postgres' user to run the server")
        prefix = [runuser, "-u", "postgres", "--"]

    base = Path(tempfile.mkdtemp(prefix="sweeper-pg-"))
    data, sock, log = base / "data", base / "sock", base / "server.log"
    sock.mkdir()
    if owner is not None:
        for path in (base, sock):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    base.chmod(0o700)

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, *cmd], capture_output=True, text=True, timeout=120, check=False
        )

    port = _free_port()
    started = False
    try:
        init = run(
            str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        if init.returncode != 0:
            pytest.skip(f"initdb cannot run here: {_last_line(init.stderr or init.stdout)}")
        # trust on loopback, except one role that must give its password
        hba = data / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            f"host all {PW_USER} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n"
        )
        if owner is not None:
            os.chown(hba, owner.pw_uid, owner.pw_gid)
        options = (
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        start = run(
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        if start.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            pytest.skip(f"PostgreSQL server cannot start here: {_last_line(server_log)}")
        started = True
        admin = sa.create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as con:
            con.execute(sa.text("CREATE DATABASE sweeper"))
            con.execute(sa.text(f"CREATE ROLE {PW_USER} LOGIN PASSWORD '{PW_RIGHT}'"))
        admin.dispose()
        yield PgServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/sweeper", "127.0.0.1", port)
    finally:
        if started:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# processes and the store
# --------------------------------------------------------------------------------------------


def _noise(line: str) -> bool:
    return line.startswith(("I0000", "E0000", "W0000", "WARNING: All log messages"))


@dataclass
class Done:
    returncode: int
    output: str

    def lines(self) -> list[str]:
        return [ln for ln in self.output.splitlines() if ln.strip() and not _noise(ln)]

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines()[-n:])


def start(*args: str, cwd: Path, log: Path) -> tuple[subprocess.Popen[bytes], Path]:
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sweeper", *args],
            cwd=cwd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=sweeper_env(),
            start_new_session=True,
        )
    return proc, log


def finish(proc: subprocess.Popen[bytes], log: Path, timeout: float = 240) -> Done:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
    return Done(proc.returncode, log.read_text(errors="replace"))


def sweeper(*args: str, cwd: Path, log: Path, timeout: float = 240) -> Done:
    return finish(*start(*args, cwd=cwd, log=log), timeout=timeout)


def load_trials(url: str, study: str) -> list[FrozenTrial]:
    storage = optuna.storages.RDBStorage(url)
    try:
        return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()


def epochs_by_trial(url: str, study: str) -> dict[int, list[int]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as con:
            rows = con.execute(
                sa.text(
                    "SELECT trial_id, epoch FROM sweeper_epochs WHERE study_name = :s "
                    "ORDER BY trial_id, epoch"
                ),
                {"s": study},
            ).all()
    finally:
        engine.dispose()
    out: dict[int, list[int]] = {}
    for trial_id, epoch in rows:
        out.setdefault(trial_id, []).append(epoch)
    return out


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    retried = {
        int(t.system_attrs["failed_trial"]) for t in trials if "failed_trial" in t.system_attrs
    }
    continued = {
        int(t.user_attrs["promoted_from"]) for t in trials if "promoted_from" in t.user_attrs
    }
    return [
        t
        for t in trials
        if t.state in FINISHED
        and not (t.state == TrialState.FAIL and t.number in retried)
        and t.number not in continued  # a promoted trial counts through its continuation
    ]


@pytest.fixture(scope="module")
def mnist_ok() -> None:
    try:
        load_study_file(MNIST_STUDY)
    except SweeperError as exc:
        pytest.skip(f"MNIST-t10k study unusable here: {exc}")


SMALL = (
    "--set", "data.subset=1200", "--set", "train.epochs=3", "--set", "train.batch_size=64",
    "--set", "baselines=[]",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("mnist_ok")
def test_three_workers_share_one_study(pg: PgServer, tmp_path: Path) -> None:
    name, target, n_epochs, ckpt = "pg-three", 7, 3, tmp_path / "ckpt"
    first = sweeper(
        "tune", str(MNIST_STUDY), "--storage", pg.url, "--study-name", name,
        "--n-trials", "1", "--checkpoint-dir", str(ckpt), *SMALL,
        cwd=tmp_path, log=tmp_path / "tune.log",
    )  # fmt: skip
    assert first.returncode == 0, first.tail()

    worker = [
        "worker", "--storage", pg.url, "--study-name", name, "--n-trials", str(target),
        "--checkpoint-dir", str(ckpt),
    ]  # fmt: skip
    procs = [start(*worker, cwd=tmp_path, log=tmp_path / f"worker-{i}.log") for i in range(3)]
    done = [finish(*p) for p in procs]
    for d in done:
        assert d.returncode == 0, d.tail()
        assert "Traceback" not in d.output, d.tail()

    trials = load_trials(pg.url, name)
    states = Counter(t.state.name for t in trials)
    assert states["RUNNING"] == 0 and states["WAITING"] == 0, states
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    finished = counted(trials)
    assert len(finished) == target, f"{len(finished)} finished for a target of {target}: {states}"
    epochs = epochs_by_trial(pg.url, name)
    for t in finished:
        rows = epochs.get(t._trial_id, [])
        if t.state == TrialState.COMPLETE:
            assert rows == list(range(n_epochs)), f"trial {t.number}: epochs {rows}"
        elif t.state == TrialState.PRUNED:
            assert rows and rows == list(range(len(rows))), f"trial {t.number}: epochs {rows}"
    # only paused trials, never continued, keep their checkpoints (to be continued later)
    kept = sorted(
        f"trial-{t.user_attrs.get('config', t.number)}"
        for t in finished
        if t.state == TrialState.PRUNED and "paused_at_epoch" in t.user_attrs
    )
    folder = ckpt / name
    left = sorted(p.name for p in folder.iterdir() if p.name.startswith("trial-"))
    assert left == kept, (left, kept)
    # the four processes kept one model, the best complete trial's (of equal values the earliest)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: (float(t.value or 0.0), -t.number))
    study = optuna.load_study(study_name=name, storage=pg.url)
    assert study.user_attrs[BEST_MODEL_ATTR]["trial"] == best.number
    assert json.loads((folder / RECORD_FILE).read_text())["trial"] == best.number
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("trial-")) == sorted(
        [MODEL_FILE, RECORD_FILE, LOCK_FILE]
    )  # and no temporary left
    engine = sa.create_engine(pg.url)
    with engine.connect() as con:
        runs = con.execute(
            sa.text("SELECT pid, finished_at FROM sweeper_runs WHERE study_name = :s"), {"s": name}
        ).all()
    engine.dispose()
    assert len(runs) == 4 and all(f is not None for _, f in runs), runs  # tune + 3 workers
    # workers started together must still draw different schedules (a promoted trial repeats
    # its parent's parameters by design: the same configuration, continued)
    draws = Counter(
        json.dumps(t.params, sort_keys=True) for t in trials if "promoted_from" not in t.user_attrs
    )
    repeated = {k: n for k, n in draws.items() if n > 1}
    assert not repeated, f"the same parameters drawn by several workers: {repeated}"


@pytest.mark.usefixtures("mnist_ok")
@pytest.mark.parametrize("given_as", ["absolute", "relative"])
def test_worker_joins_from_a_directory_without_the_study_file(
    pg: PgServer, tmp_path: Path, given_as: str
) -> None:
    """The study file's text is in the store; its data path, relative to the study file as
    usual, still resolves when the worker runs elsewhere and the file is gone."""
    project = tmp_path / "project"
    (project / "studies").mkdir(parents=True)
    data_dir = Path(str(load_study_file(MNIST_STUDY).data.path))
    (project / "data").symlink_to(data_dir, target_is_directory=True)
    text = re.sub(r"(?m)^path = .*$", 'path = "../data"', MNIST_STUDY.read_text())
    study_file = project / "studies" / "join.toml"
    study_file.write_text(text)
    name, ckpt = f"pg-join-{given_as}", tmp_path / "ckpt"
    arg = str(study_file) if given_as == "absolute" else study_file.name
    first = sweeper(
        "tune", arg, "--storage", pg.url, "--study-name", name, "--n-trials", "1",
        "--checkpoint-dir", str(ckpt), "--set", "data.subset=600", "--set", "train.epochs=2",
        "--set", "baselines=[]", "--set", "pruner.type=none",  # both trials train in full
        cwd=project / "studies", log=tmp_path / "tune.log",
    )  # fmt: skip
    assert first.returncode == 0, first.tail()
    study_file.unlink()

    empty = tmp_path / "elsewhere"
    empty.mkdir()
    joined = sweeper(
        "worker", "--storage", pg.url, "--study-name", name, "--n-trials", "2",
        "--checkpoint-dir", str(ckpt),
        cwd=empty, log=tmp_path / "worker.log",
    )  # fmt: skip
    assert joined.returncode == 0, joined.tail()
    assert "worker done: 1 trial(s) run" in joined.output, joined.tail()
    assert list(empty.iterdir()) == []  # nothing written to the worker's directory
    trials = load_trials(pg.url, name)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    epochs = epochs_by_trial(pg.url, name)
    assert [epochs.get(t._trial_id) for t in trials] == [[0, 1], [0, 1]]


@pytest.mark.parametrize("command", ["worker", "tune"])
def test_bad_password_is_one_masked_line(pg: PgServer, tmp_path: Path, command: str) -> None:
    url = f"postgresql+psycopg://{PW_USER}:{PW_WRONG}@{pg.host}:{pg.port}/sweeper"
    args = (
        ["worker", "--storage", url, "--study-name", "nothing"]
        if command == "worker"
        else ["tune", "--storage", url, "--n-trials", "1", "--checkpoint-dir", str(tmp_path)]
    )
    done = sweeper(*args, cwd=tmp_path, log=tmp_path / "out.log", timeout=120)
    assert done.returncode not in (0, 130)
    assert PW_WRONG not in done.output
    lines = [ln for ln in done.lines() if not ln.startswith("tuning ")]
    assert len(lines) == 1, done.tail()
    masked = f"postgresql+psycopg://{PW_USER}:***@{pg.host}:{pg.port}/sweeper"
    assert lines[0].startswith("error: ") and masked in lines[0], lines[0]
    assert "password authentication failed" in lines[0], lines[0]
    # the role exists and the right password works: the failure is the password alone
    good = sa.create_engine(
        f"postgresql+psycopg://{PW_USER}:{PW_RIGHT}@{pg.host}:{pg.port}/sweeper"
    )
    with good.connect() as con:
        assert con.execute(sa.text("SELECT 1")).scalar() == 1
    good.dispose()


def test_a_queued_trial_is_taken_by_one_worker_only(pg: PgServer) -> None:
    queued = 40
    claims = claim_queue_concurrently(pg.url, "pg-queue", queued=queued)
    assert sorted(claims) == list(range(queued))
    assert [n for n, c in claims.items() if c > 1] == []


def test_processes_asking_at_once_start_exactly_the_target(pg: PgServer) -> None:
    """8 processes take trials of one study through its places at the same moment (no Keras:
    the claims alone), one in five put back in the queue: exactly the target is started."""
    told = ask_concurrently(pg.url, "pg-asking", processes=8, target=24)
    assert_exact_places(pg.url, "pg-asking", 24, told)


@pytest.mark.parametrize("repeat", range(1))  # raise it to repeat the race locally
@pytest.mark.parametrize("workers", [3, 8])
def test_workers_started_together_finish_exactly_the_target(
    pg: PgServer, tmp_path: Path, workers: int, repeat: int
) -> None:
    """N `sweeper worker` processes started at once on one study of trials of a fraction of a
    second: the study ends with exactly --n-trials configurations, never one more (two workers
    seeing room at once), every place of the target bound."""
    study_file = tiny_study(tmp_path, "tiny_model:dense", name=f"pg-exact-{workers}-{repeat}")
    spec = load_study_file(study_file)
    target = 2 * workers + 1
    store = Store(pg.url)
    spe = steps_per_epoch(len(load_dataset(spec.data).x_train), spec.train.batch_size)
    prepare_study(spec, store, spec.name, allow_changed=False, steps_per_epoch=spe, target=target)
    store.close()
    worker = [
        "worker", "--storage", pg.url, "--study-name", spec.name, "--n-trials", str(target),
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--study-file", str(study_file),
    ]  # fmt: skip
    procs = [start(*worker, cwd=tmp_path, log=tmp_path / f"w{i}.log") for i in range(workers)]
    done = [finish(*p, timeout=400) for p in procs]
    for d in done:
        assert d.returncode == 0, d.tail()
        assert "Traceback" not in d.output, d.tail()
    assert_exact_places(pg.url, spec.name, target)
    trials = load_trials(pg.url, spec.name)
    assert len(counted(trials)) == target
    epochs = epochs_by_trial(pg.url, spec.name)
    assert all(epochs.get(t._trial_id) == [0] for t in counted(trials))


@pytest.mark.usefixtures("mnist_ok")
def test_no_worker_command_line_holds_the_password(pg: PgServer, tmp_path: Path) -> None:
    """`tune --workers 2` with a password in the URL: the children get it through the environment,
    never on their command lines, which every user of the machine can read."""
    admin = sa.create_engine(pg.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:  # a database of the password user's own
        con.execute(sa.text(f"CREATE DATABASE sweeper_argv OWNER {PW_USER}"))
    admin.dispose()
    url = f"postgresql+psycopg://{PW_USER}:{PW_RIGHT}@{pg.host}:{pg.port}/sweeper_argv"
    proc, log = start(
        "tune", str(MNIST_STUDY), "--storage", url, "--study-name", "pg-argv", "--workers", "2",
        "--n-trials", "4", "--checkpoint-dir", str(tmp_path / "ckpt"), *SMALL,
        cwd=tmp_path, log=tmp_path / "tune.log",
    )  # fmt: skip
    seen: dict[int, str] = {}
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "sweeper" in cmdline and " worker" in cmdline:
                seen[int(entry.name)] = cmdline
        time.sleep(0.1)
    done = finish(proc, log)
    assert done.returncode == 0, done.tail()
    assert len(seen) >= 2, seen
    assert not [c for c in seen.values() if PW_RIGHT in c], seen
    assert PW_RIGHT not in done.output
