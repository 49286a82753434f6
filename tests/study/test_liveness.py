"""Who may declare a trial's process dead (sweeper.search.liveness, sweeper.search.recovery): only a
process that sees the owner's pid (same host name, boot and PID namespace); and a result told
for a trial another process already ended is dropped in one line.

Real SQLite stores; a second PID namespace through ``unshare`` where the machine allows it.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from process_helpers import sweeper_env

from sweeper.errors import SweepAborted
from sweeper.search import worker
from sweeper.search.liveness import Owner, pid_alive, process_scope
from sweeper.search.recovery import (
    ended_elsewhere,
    mark_worker,
    reap_dead_local_trials,
)
from sweeper.search.run_options import RunOptions
from sweeper.search.runner import prepare_study
from sweeper.search.trial_record import WORKER_ATTR, WORKER_SCOPE_ATTR, WORKER_SINCE_ATTR
from sweeper.store.store import Store
from sweeper.studyfile.config import parse_study
from sweeper.training.data import load_dataset

HOST = socket.gethostname()
HERE = "boot=b1,pidns=101"
LIVE, DEAD = 4242, 4343


def alive(pid: int) -> bool:
    return pid == LIVE


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- the decision -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "pid", "scope", "gone"),
    [
        (HOST, DEAD, HERE, True),  # same boot and namespace: the pid decides
        (HOST, LIVE, HERE, False),
        (HOST, DEAD, "boot=b1,pidns=202", False),  # another PID namespace: the heartbeat decides
        (HOST, DEAD, "boot=b2,pidns=101", False),  # another boot (a machine of the same name)
        (HOST, DEAD, "boot=,pidns=101", False),  # a part unreadable there: not the same scope
        (HOST, DEAD, None, True),  # a stamp without a scope (before scopes): as before
        (HOST, LIVE, None, False),
        (f"not-{HOST}", DEAD, HERE, False),  # another host
        (f"not-{HOST}", DEAD, None, False),
    ],
)
def test_only_a_process_that_sees_the_owner_decides_by_pid(
    host: str, pid: int, scope: str | None, gone: bool
) -> None:
    owner = Owner.parse(f"{host}:{pid}", scope)
    assert owner is not None
    assert owner.gone(HOST, HERE, alive=alive) is gone


def test_a_process_without_proc_sees_no_scoped_owner() -> None:
    owner = Owner.parse(f"{HOST}:{DEAD}", HERE)
    assert owner is not None and not owner.gone(HOST, "", alive=alive)


@pytest.mark.parametrize("worker_stamp", ["", "pid", f"{HOST}:", f"{HOST}:x1", ":12"])
def test_a_garbled_stamp_names_no_owner(worker_stamp: str) -> None:
    assert Owner.parse(worker_stamp, HERE) is None


@pytest.mark.skipif(not Path("/proc/self/ns/pid").exists(), reason="no /proc namespaces here")
def test_the_scope_is_this_boot_and_pid_namespace() -> None:
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    inode = os.stat("/proc/self/ns/pid").st_ino
    assert process_scope() == f"boot={boot},pidns={inode}"
    assert pid_alive(os.getpid()) and not pid_alive(dead_pid())


# -- reaping a store's running trials ---------------------------------------------------------


@pytest.fixture()
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture()
def study(url: str) -> optuna.Study:
    storage = optuna.storages.RDBStorage(url)
    return optuna.create_study(study_name="s", storage=storage, direction="maximize")


def test_reap_requeues_by_pid_only_trials_of_this_boot_and_namespace(study: optuna.Study) -> None:
    gone = dead_pid()
    here = study.ask()
    mark_worker(here, f"{HOST}:{gone}")  # this process's scope
    elsewhere = study.ask()  # a live process of another container with this host name
    mark_worker(elsewhere, f"{HOST}:{gone}", scope="boot=other,pidns=1")
    old = study.ask()  # stamped by an earlier version: host:pid only
    old.set_user_attr(WORKER_ATTR, f"{HOST}:{gone}")
    assert old.datetime_start is not None
    old.set_user_attr(WORKER_SINCE_ATTR, old.datetime_start.isoformat())

    assert reap_dead_local_trials(study) == 2
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {
        here.number: TrialState.WAITING,
        elsewhere.number: TrialState.RUNNING,  # left to its heartbeat
        old.number: TrialState.WAITING,
    }
    stored = study.get_trials()[elsewhere.number].user_attrs
    assert stored[WORKER_SCOPE_ATTR] == "boot=other,pidns=1"
    assert stored[WORKER_ATTR] == f"{HOST}:{gone}"


# -- two PID namespaces, one host name ---------------------------------------------------------

OWNER = """
import os, socket, sys, time
from pathlib import Path
import optuna
from sweeper.search.recovery import mark_worker

url, want, ready, done = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
# pid 1 of a fresh PID namespace: fork until a child gets pid `want`, which takes the trial
while True:
    pid = os.fork()
    if pid == 0:
        if os.getpid() != want:
            os._exit(0)
        break
    os.waitpid(pid, 0)  # the owner too: pid 1 ending would end the namespace
    if pid == want:
        sys.exit(0)
study = optuna.load_study(study_name="s", storage=url)
trial = study.ask()
mark_worker(trial, f"{socket.gethostname()}:{os.getpid()}")
ready.write_text(str(trial.number))
end = time.time() + 120
while not done.exists() and time.time() < end:
    time.sleep(0.05)
os._exit(0)
"""


UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


def can_unshare() -> str:
    """Why a second PID namespace cannot be made here ("" when it can)."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    try:
        probe = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "true"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unshare cannot run: {exc}"
    if probe.returncode != 0:
        return f"unshare --pid is not allowed here: {probe.stderr.strip()[:200]}"
    return ""


def free_pid() -> int:
    """A small pid no process of this namespace has: the owner's pid in its own namespace."""
    return next(p for p in range(100, 30000) if not pid_alive(p))


def test_a_live_owner_in_another_pid_namespace_is_not_declared_dead(tmp_path: Path) -> None:
    why = can_unshare()
    if why:
        pytest.skip(why)
    url = f"sqlite:///{tmp_path / 'ns.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    want = free_pid()
    ready, done = tmp_path / "ready", tmp_path / "done"
    proc = subprocess.Popen(
        [*UNSHARE, sys.executable, "-c", OWNER, url, str(want), str(ready), str(done)],
        env=sweeper_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        end = time.time() + 60
        while not ready.exists():
            if proc.poll() is not None or time.time() > end:
                pytest.fail(f"the owner never took a trial: {proc.communicate()[1]}")
            time.sleep(0.05)
        number = int(ready.read_text())
        stamp = study.get_trials()[number].user_attrs
        assert stamp[WORKER_ATTR] == f"{HOST}:{want}"  # same host name
        assert not pid_alive(want)  # by its bare pid, this process would call it dead
        boot, _, scope_ns = stamp[WORKER_SCOPE_ATTR].partition(",")
        assert (boot, scope_ns) != tuple(process_scope().split(",", 1))
        assert boot == process_scope().split(",")[0]  # same boot, another namespace

        assert reap_dead_local_trials(study) == 0
        assert study.get_trials()[number].state == TrialState.RUNNING
    finally:
        done.touch()
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    # its owner gone, the trial is still not judged by pid here: Optuna's heartbeat decides
    assert reap_dead_local_trials(study) == 0


# -- telling a trial that another process ended ------------------------------------------------


@pytest.mark.parametrize("state", [TrialState.PRUNED, TrialState.COMPLETE, TrialState.WAITING])
def test_optunas_errors_for_a_trial_ended_elsewhere_are_recognised(
    url: str, study: optuna.Study, state: TrialState
) -> None:
    other = optuna.storages.RDBStorage(url)  # the store as another worker process sees it

    def objective(trial: optuna.Trial) -> float:
        values = [0.1] if state == TrialState.COMPLETE else None
        other.set_trial_state_values(trial._trial_id, state, values)
        return 0.5

    with pytest.raises((ValueError, AssertionError)) as raised:
        study.optimize(objective, n_trials=1, catch=(Exception,))
    assert ended_elsewhere(raised.value)

    trial = study.ask()
    other.set_trial_state_values(trial._trial_id, TrialState.PRUNED)
    with pytest.raises(ValueError, match="Cannot tell a PRUNED trial") as told:
        study.tell(trial, 0.5)
    assert ended_elsewhere(told.value)
    with pytest.raises(UpdateFinishedTrialError) as updated:
        trial.set_user_attr("x", 1)
    assert ended_elsewhere(updated.value)


def test_other_errors_are_not_taken_for_a_trial_ended_elsewhere() -> None:
    assert not ended_elsewhere(ValueError("bad value"))
    assert not ended_elsewhere(RuntimeError("Cannot open the store"))
    assert not ended_elsewhere(SweepAborted("Cannot tell a PRUNED trial."))
    try:
        try:
            raise ValueError("Cannot tell a PRUNED trial.")
        except ValueError:
            raise RuntimeError("another failure") from None
    except RuntimeError as suppressed:
        assert not ended_elsewhere(suppressed)


STUDY = """\
[study]
name = "s"
seed = 0
n_trials = 2

[data]
dataset = "digits"
subset = 200

[train]
epochs = 1

[sampler]
type = "random"

[space]
schedules = ["constant"]
initial_lr = { low = 1e-3, high = 0.1, log = true }
"""


class EndedElsewhere:
    """An attempt whose first trial another worker ends (``STATE``) while it trains."""

    STATE = TrialState.PRUNED
    seen: ClassVar[list[int]] = []

    def __init__(self, ctx: Any, trial: optuna.Trial) -> None:
        self.ctx, self.trial = ctx, trial

    def run(self) -> float:
        first = not EndedElsewhere.seen
        EndedElsewhere.seen.append(self.trial.number)
        if first:
            storage = optuna.storages.RDBStorage(self.ctx.store.url)
            storage.set_trial_state_values(self.trial._trial_id, self.STATE)
        return 0.5


@pytest.mark.parametrize(
    "state",
    [TrialState.PRUNED, TrialState.FAIL, TrialState.WAITING],
    ids=["pruned", "failed-as-stale", "requeued"],
)
def test_a_result_for_a_trial_another_worker_ended_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    clean_process: None,
    state: TrialState,
) -> None:
    spec = parse_study(STUDY, str(tmp_path / "s.toml"))
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    prepare_study(spec, store, "s", allow_changed=False, steps_per_epoch=4, target=2)
    monkeypatch.setattr(EndedElsewhere, "STATE", state)
    monkeypatch.setattr(EndedElsewhere, "seen", [])
    monkeypatch.setattr(worker, "Attempt", EndedElsewhere)  # no Keras: the tell is what matters
    monkeypatch.setattr(worker, "load_keras", lambda: SimpleNamespace(describe=lambda: "cpu"))
    monkeypatch.setattr("sweeper.training.train_trial.environment", lambda: {})
    with caplog.at_level(logging.INFO):
        _, interrupted = worker.run_worker(
            spec,
            store,
            "s",
            RunOptions(checkpoint_dir=str(tmp_path / "ckpt")),
            target=2,
            dataset=load_dataset(spec.data),
        )
    assert not interrupted
    first = EndedElsewhere.seen[0]
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == [f"trial {first} was ended by another worker; this result is dropped"]
    assert "Traceback" not in caplog.text
    trials = {
        t.number: t for t in optuna.load_study(study_name="s", storage=store.url).get_trials()
    }
    if state != TrialState.WAITING:  # as the other worker left it
        assert trials[first].state == state
    else:  # put back in the queue by the other: taken again here, and told
        assert EndedElsewhere.seen.count(first) == 2
        assert trials[first].state == TrialState.COMPLETE
    store.close()
