"""A full disk, under the checkpoints or under the store: one line naming the path and the fix,
a non-zero exit and no crash; the trial that was running is queued again, not failed, and the rerun
after space is freed runs the full count.

First the checkpoint writer on files alone (a write the disk cuts short); then the real command
line on a real tmpfs of a few hundred KiB, mounted in a private mount namespace (``unshare``;
skipped with the reason where the machine does not allow it).
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from process_helpers import sweeper_env

from sweeper.training import checkpoints
from sweeper.training.checkpoints import Checkpoint, NoSpaceForCheckpoint


def test_a_disk_too_full_for_a_checkpoint_is_refused_before_writing(tmp_path: Path) -> None:
    ck = Checkpoint(tmp_path / "trial-0", trial=0, config=0)
    written: list[Path] = []
    huge = shutil.disk_usage(tmp_path).free * 2  # no disk holds twice its free space
    with pytest.raises(NoSpaceForCheckpoint) as info:
        checkpoints.save(ck, written.append, 1, state_bytes=huge)
    assert written == []  # nothing was started
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC and "\n" not in message
    assert f"no space left on the disk of {ck.folder}" in message and "free" in message
    assert "--checkpoint-dir" in message


def test_a_write_the_disk_cuts_short_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    ck = Checkpoint(tmp_path / "trial-0", trial=0, config=0)
    checkpoints.save(ck, lambda path: path.write_bytes(b"epoch one"), 1)

    def fills_up(path: Path) -> None:
        path.write_bytes(b"half of epoch tw")
        raise OSError(errno.ENOSPC, "Can't synchronously write data (errno = 28)")

    broken = len(checkpoints.BROKEN_WRITES)
    with pytest.raises(NoSpaceForCheckpoint):
        checkpoints.save(ck, fills_up, 2)
    assert checkpoints.BROKEN_WRITES[broken:] == [ck.folder]  # the command line exits past them
    del checkpoints.BROKEN_WRITES[broken:]
    assert not (ck.folder / checkpoints.INCOMING_WEIGHTS).exists()  # the partial file is gone
    assert checkpoints.verify(ck) == (1, None)  # epoch one is still the checkpoint


def test_another_error_of_the_write_is_not_taken_for_a_full_disk(tmp_path: Path) -> None:
    def refuses(path: Path) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    with pytest.raises(PermissionError):
        checkpoints.save(Checkpoint(tmp_path / "t", trial=0, config=0), refuses, 1)


# --------------------------------------------------------------------------------------------
# the command line on a real full tmpfs
# --------------------------------------------------------------------------------------------

STUDY = """
[study]
name = "full"
seed = 0
n_trials = 4

[data]
dataset = "digits"
subset = 300

[train]
model = "mnist-cnn"
batch_size = 64
epochs = 3

[space]
schedules = ["constant", "cosine"]
initial_lr = { low = 0.02, high = 0.3, log = true }
"""

MARK = "=== rerun ==="


def can_mount() -> str:
    """Why a private tmpfs cannot be mounted here ("" when it can)."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs -o size=64k tmpfs /tmp && echo ok",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.stdout.strip() != "ok":
        return f"a private tmpfs cannot be mounted here: {probe.stderr.strip()[:200]}"
    return ""


def in_full_tmpfs(tmp_path: Path, script: str) -> tuple[str, str]:
    """Run ``script`` (bash) in a private mount namespace where ``sweep`` runs the real command
    line; (what it printed before the rerun mark, after it)."""
    why = can_mount()
    if why:
        pytest.skip(why)
    (tmp_path / "s.toml").write_text(STUDY)
    (tmp_path / "full").mkdir()
    sweep = (  # a shell function: $STORE is read when it runs
        f'sweep() {{ {sys.executable} -m sweeper tune s.toml --storage "sqlite:///$STORE" '
        '--checkpoint-dir ck "$@"; }'
    )
    proc = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "bash",
            "-c",
            f"set -u; cd {tmp_path}; {sweep}; {script}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # in the order printed: the mark splits the two runs
        text=True,
        timeout=600,
        env=sweeper_env(),
    )
    out = proc.stdout
    assert MARK in out, out[-3000:]
    first, rerun = out.split(MARK)
    return first, rerun


def assert_one_error_line(output: str, *phrases: str) -> None:
    errors = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, output[-3000:]
    for phrase in phrases:
        assert phrase in errors[0], errors[0]
    for noise in ("Traceback", "Exception ignored", "Segmentation fault", "h5py"):
        assert noise not in output, output[-3000:]


def finished(store: Path) -> dict[TrialState, int]:
    trials = optuna.load_study(study_name="full", storage=f"sqlite:///{store}").get_trials()
    for t in trials:  # what a failure was, in the assertion's report
        if t.state == TrialState.FAIL:
            print(f"trial {t.number} failed: {t.user_attrs}, {t.system_attrs}")
    return {s: sum(t.state == s for t in trials) for s in TrialState}


@pytest.mark.slow
def test_a_full_checkpoint_disk_is_one_line_and_the_rerun_runs_the_full_count(
    tmp_path: Path,
) -> None:
    first, rerun = in_full_tmpfs(
        tmp_path,
        f"""
        mkdir ck && mount -t tmpfs -o size=1m tmpfs ck
        dd if=/dev/zero of=ck/filler bs=1k count=1000 status=none
        STORE={tmp_path}/s.db; sweep; echo "rc=$?"
        echo '{MARK}'
        rm ck/filler; sweep; echo "rc=$?"
        """,
    )
    assert "rc=1" in first  # not 139: no crash after the line
    assert_one_error_line(first, "no space left on the disk of ck/full/trial-0", "--checkpoint-dir")
    assert "rc=0" in rerun, rerun[-3000:]
    counts = finished(tmp_path / "s.db")
    assert counts[TrialState.FAIL] == 0 and counts[TrialState.RUNNING] == 0
    assert counts[TrialState.COMPLETE] + counts[TrialState.PRUNED] >= 4


@pytest.mark.slow
def test_a_full_store_disk_is_one_line_and_the_rerun_runs_the_full_count(tmp_path: Path) -> None:
    # the store's disk fills while trials run: 600 KiB hold the study and a few trials
    first, rerun = in_full_tmpfs(
        tmp_path,
        f"""
        mount -t tmpfs -o size=600k tmpfs full
        STORE={tmp_path}/full/s.db; sweep --n-trials 60; echo "rc=$?"
        echo '{MARK}'
        mount -o remount,size=16m full; sweep --n-trials 8; echo "rc=$?"
        cp full/s.db* .
        """,
    )
    assert "rc=1" in first
    assert_one_error_line(first, "database or disk is full", "free space on the disk of")
    assert "rc=0" in rerun, rerun[-3000:]
    counts = finished(tmp_path / "s.db")
    assert counts[TrialState.FAIL] == 0 and counts[TrialState.RUNNING] == 0
    assert counts[TrialState.COMPLETE] >= 1
