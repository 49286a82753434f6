"""Checkpoints that can be trusted: written atomically with a manifest, verified before they are
read, set aside (never deleted) when they do not verify, removed only once Optuna was told, and a
continuation that cannot resume says so.

The manifest on files alone first; then real training of a one-layer user model on 300 digits in
real SQLite stores, in process and (for the kills) in real processes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from process_helpers import sweeper_env

from sweeper.search.outcomes import TrialEvent
from sweeper.search.run_options import RunOptions
from sweeper.search.runner import tune
from sweeper.store.store import Store
from sweeper.studyfile.config import parse_study
from sweeper.training import checkpoints
from sweeper.training.checkpoints import Checkpoint

pytestmark = pytest.mark.usefixtures("clean_process")


@pytest.fixture
def console() -> Iterator[list[str]]:
    """The lines sent to the console logger while the test runs."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("sweeper.console")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


# --------------------------------------------------------------------------------------------
# the manifest, on files alone
# --------------------------------------------------------------------------------------------


def writer(content: bytes) -> Any:
    return lambda path: path.write_bytes(content)


def saved_twice(folder: Path) -> Checkpoint:
    """A checkpoint of configuration 3 after epochs 1 and 2 (the .bkp files: epoch 1)."""
    ck = Checkpoint(folder, trial=7, config=3)
    checkpoints.save(ck, writer(b"weights after epoch 1"), 1)
    checkpoints.save(ck, writer(b"weights after epoch 2"), 2)
    return ck


def test_a_checkpoint_and_its_previous_one_verify_against_their_manifests(tmp_path: Path) -> None:
    ck = saved_twice(tmp_path / "trial-3")
    assert checkpoints.verify(ck) == (2, None)
    assert checkpoints.verify(ck, ".bkp") == (1, None)
    assert (ck.folder / "latest.weights.h5.bkp").read_bytes() == b"weights after epoch 1"
    manifest = (ck.folder / "checkpoint.json").read_text()
    assert '"trial": 7' in manifest and '"config": 3' in manifest and '"epoch": 2' in manifest
    assert sorted(p.name for p in ck.folder.iterdir()) == [
        "checkpoint.json",
        "checkpoint.json.bkp",
        "latest.weights.h5",
        "latest.weights.h5.bkp",
        "training_metadata.json",
        "training_metadata.json.bkp",
    ]  # no temporary file left
    assert checkpoints.recover(ck) == checkpoints.Found(2)
    assert checkpoints.verify(Checkpoint(ck.folder, config=4))[1] == "written for configuration 3"


class Killed(Exception):
    pass


def save_cut_after(renames: int, ck: Checkpoint, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Save epoch 3, the process "killed" before its rename number ``renames + 1``; whether
    the save finished."""
    real_replace = os.replace
    calls = 0

    def replace(src: Any, dst: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > renames:
            raise Killed
        real_replace(src, dst)

    monkeypatch.setattr(checkpoints.os, "replace", replace)
    try:
        checkpoints.save(ck, writer(b"weights after epoch 3"), 3)
        return True
    except Killed:
        return False
    finally:
        monkeypatch.setattr(checkpoints.os, "replace", real_replace)


def test_a_save_cut_at_any_rename_leaves_a_checkpoint_of_the_last_epoch_or_the_one_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for renames in range(20):
        ck = saved_twice(tmp_path / f"cut-{renames}" / "trial-3")
        finished = save_cut_after(renames, ck, monkeypatch)
        found = checkpoints.recover(ck)
        assert found.epoch in (2, 3), (renames, found)
        assert checkpoints.verify(ck) == (found.epoch, None)  # what Keras reads now verifies
        if finished:
            assert found == checkpoints.Found(3)
            break
    # the new weights, three copies to .bkp, the metadata, the manifest
    assert renames == 6


@pytest.mark.parametrize(
    ("damage", "epoch", "problem"),
    [
        ("random bytes", 1, "latest.weights.h5 does not match its checksum"),
        ("truncated, no .bkp", 0, "latest.weights.h5 does not match its checksum"),
        ("no manifest", 0, "latest.weights.h5 has no manifest"),
    ],
)
def test_a_checkpoint_that_does_not_verify_is_set_aside_and_named(
    damage: str, epoch: int, problem: str, tmp_path: Path, console: list[str]
) -> None:
    ck = saved_twice(tmp_path / "trial-3")
    weights = ck.folder / "latest.weights.h5"
    if damage == "random bytes":
        weights.write_bytes(os.urandom(64))
    elif damage == "truncated, no .bkp":
        weights.write_bytes(weights.read_bytes()[:5])
        (ck.folder / "latest.weights.h5.bkp").unlink()
    else:  # as a sweeper before manifests left it
        (ck.folder / "checkpoint.json").unlink()
        (ck.folder / "checkpoint.json.bkp").unlink()
    found = checkpoints.recover(ck)
    assert (found.epoch, found.problem) == (epoch, problem)
    assert found.set_aside is not None and found.set_aside.parent == tmp_path / "set-aside"
    assert found.set_aside.name.startswith("trial-3-")
    assert (found.set_aside / "latest.weights.h5").exists()  # moved, not deleted
    (line,) = console
    assert str(ck.folder) in line and str(found.set_aside) in line and problem in line
    if epoch:
        assert line.endswith(
            "configuration 3 continues from the previous checkpoint, after epoch 1"
        )
        assert checkpoints.verify(ck) == (1, None)
    else:
        assert line.endswith("configuration 3 restarts from epoch 0")
        assert list(ck.folder.iterdir()) == []
    assert checkpoints.recover(ck).set_aside is None  # said once


# --------------------------------------------------------------------------------------------
# real training: a paused configuration continued from a damaged or missing checkpoint
# --------------------------------------------------------------------------------------------

STUDY = """\
[study]
name = "c"
seed = 0

[data]
dataset = "digits"
subset = 300

[train]
model = "tiny_model:dense"
batch_size = 32
epochs = 3
pack = {pack}

[sampler]
type = "random"

[pruner]
type = "none"

[space]
schedules = ["constant"]
initial_lr = {{ low = 0.02, high = 0.2, log = true }}
"""


def tune_c(
    tmp_path: Path, *, budget: int, pack: int = 1, events: list[TrialEvent] | None = None
) -> tuple[Any, list[FrozenTrial], Store]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    spec = parse_study(STUDY.format(pack=pack), str(tmp_path / "c.toml"))
    summary = tune(
        spec,
        RunOptions(
            storage=url,
            checkpoint_dir=str(tmp_path / "ckpt"),
            n_trials=1,
            budget_epochs=budget,
            progress=None if events is None else events.append,
        ),
    )
    return summary, optuna.load_study(study_name="c", storage=url).get_trials(), Store(url)


def paused_after_two_epochs(tmp_path: Path, pack: int = 1) -> Path:
    """Trial 0 paused by the budget after epoch 2: its checkpoint (epoch 2, .bkp epoch 1)."""
    _, trials, _ = tune_c(tmp_path, budget=2, pack=pack)
    assert [t.user_attrs.get("paused_at_epoch") for t in trials] == [2]
    folder = tmp_path / "ckpt" / "c" / "trial-0"
    assert checkpoints.verify(folder) == (2, None)
    assert checkpoints.verify(folder, ".bkp") == (1, None)
    return folder


def trained(store: Store) -> list[tuple[int, int]]:
    """(trial, epoch) of every epoch trained, in order (the ledger)."""
    return [(int(r["trial_number"]), int(r["epoch"])) for r in store.ledger("c")]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "pack"),
    [("random bytes", 1), ("truncated, no .bkp", 1), ("random bytes, no .bkp", 2)],
)
def test_a_corrupt_checkpoint_is_set_aside_and_the_study_goes_on(
    damage: str, pack: int, tmp_path: Path, console: list[str]
) -> None:
    folder = paused_after_two_epochs(tmp_path, pack)
    weights = folder / "latest.weights.h5"
    damaged = os.urandom(weights.stat().st_size)
    if damage == "truncated, no .bkp":
        damaged = weights.read_bytes()[: weights.stat().st_size // 2]
    weights.write_bytes(damaged)
    if damage != "random bytes":  # else the previous epoch's checkpoint still verifies
        (folder / "latest.weights.h5.bkp").unlink()
    console.clear()
    events: list[TrialEvent] = []
    summary, trials, store = tune_c(tmp_path, budget=10, pack=pack, events=events)

    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.COMPLETE]  # none FAILED
    child = trials[1]
    (aside,) = (tmp_path / "ckpt" / "c" / "set-aside").iterdir()
    assert aside.name.startswith("trial-0-")
    lines = [ln for ln in console if "does not verify" in ln]
    assert len(lines) == 1 and str(aside) in lines[0] and str(folder) in lines[0], console
    assert (aside / "latest.weights.h5").read_bytes() == damaged  # moved, not deleted
    (line,) = [e.description for e in events if e.number == 1]
    if damage == "random bytes":
        assert child.user_attrs["resumed_from_epoch"] == 1 and "restarted" not in child.user_attrs
        assert trained(store)[2:] == [(1, 1), (1, 2)]  # epoch 1 again, at most one epoch lost
        assert "(continues trial 0 after epoch 1)" in line
    else:
        assert "resumed_from_epoch" not in child.user_attrs
        assert "did not verify" in child.user_attrs["restarted"]
        assert str(aside) in child.user_attrs["restarted"]
        assert trained(store)[2:] == [(1, 0), (1, 1), (1, 2)]
        assert "restarts trial 0 from epoch 0" in line and "continues" not in line
    assert summary.epochs_spent == len(trained(store))
    assert not folder.exists()  # the continuation completed: its checkpoint removed


@pytest.mark.slow
@pytest.mark.parametrize("pack", [1, 2])
def test_a_continuation_whose_checkpoint_is_gone_restarts_and_says_so(
    pack: int, tmp_path: Path, console: list[str]
) -> None:
    folder = paused_after_two_epochs(tmp_path, pack)
    # deleted, or written on another machine
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    console.clear()
    events: list[TrialEvent] = []
    summary, trials, store = tune_c(tmp_path, budget=10, pack=pack, events=events)

    child = trials[1]
    assert child.state == TrialState.COMPLETE and child.user_attrs["promoted_from"] == 0
    assert child.user_attrs["restarted"] == "checkpoint of configuration 0 not found here"
    assert "resumed_from_epoch" not in child.user_attrs
    (line,) = [e.description for e in events if e.number == 1]
    assert "(restarts trial 0 from epoch 0: checkpoint of configuration 0 not found here)" in line
    assert "continues" not in line
    assert any("trial 1 restarts configuration 0 from epoch 0" in ln for ln in console), console
    # every epoch trained is counted: the parent's two, then the child's three
    assert trained(store) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    assert summary.epochs_spent == 5
    rows = sorted(int(r["epoch"]) for r in store.epochs("c") if r["trial_number"] == 1)
    assert rows == [0, 1, 2]  # its own epochs, none copied from the parent


# --------------------------------------------------------------------------------------------
# a SIGKILL around the tell (real processes)
# --------------------------------------------------------------------------------------------

KILL_STUDY = STUDY.format(pack=1).replace("epochs = 3", "epochs = 2")  # --pack sets it


def sweep(
    tmp_path: Path, pack: int, kill_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "sweeper", "tune", "c.toml", "--storage", "sqlite:///c.db"]
    cmd += ["--n-trials", "2", "--pack", str(pack), "--checkpoint-dir", "ckpt"]
    env = sweeper_env(SWEEPER_HEARTBEAT_GRACE="3")
    env.pop("SWEEPER_KILL_AT", None)
    if kill_at is not None:
        env["SWEEPER_KILL_AT"] = kill_at
    return subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def configuration_epochs(store: Store, trials: list[FrozenTrial]) -> list[tuple[int, int]]:
    """(configuration, epoch) of every epoch trained, in order: a retry copy counts as its
    configuration."""
    config = {t.number: int(t.user_attrs.get("config", t.number)) for t in trials}
    return [(config[n], e) for n, e in trained(store)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "pack"), [("after-tell", 1), ("after-tell", 2), ("before-tell", 1)]
)
def test_a_kill_around_the_tell_costs_at_most_the_epoch_in_progress(
    point: str, pack: int, tmp_path: Path
) -> None:
    (tmp_path / "c.toml").write_text(KILL_STUDY)
    killed = sweep(tmp_path, pack, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    url = f"sqlite:///{tmp_path / 'c.db'}"
    at_kill = optuna.load_study(study_name="c", storage=url).get_trials()
    told = {int(t.user_attrs["config"]) for t in at_kill if t.state == TrialState.COMPLETE}
    if point == "after-tell":  # told COMPLETE, its checkpoint not removed yet
        assert len(told) == 1 and list((tmp_path / "ckpt" / "c").glob("trial-*"))
    else:
        assert told == set()
    again = sweep(tmp_path, pack)
    assert again.returncode == 0, again.stderr
    assert "2/2 configurations finished" in again.stdout, again.stdout
    store = Store(url)
    trials = optuna.load_study(study_name="c", storage=url).get_trials()
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.FAIL}
    done = {int(t.user_attrs["config"]): t for t in trials if t.state == TrialState.COMPLETE}
    assert sorted(done) == [0, 1]
    counts = Counter(configuration_epochs(store, trials))
    repeated = {key: n for key, n in counts.items() if n > 1}
    # only the final epoch (1) of a trial not told yet is trained again, from its checkpoint
    for (config, epoch), n in repeated.items():
        assert (n, epoch) == (2, 1) and config not in told, counts
        assert done[config].user_attrs["resumed_from_epoch"] == 1
    if point == "after-tell" and pack == 1:
        assert repeated == {}, counts  # nothing trained twice
    if point == "before-tell":
        # killed after its final epoch and its outcome recorded on the trial (where the
        # checkpoint used to be removed already): resumed from it, not retrained from epoch 0
        assert repeated == {(0, 1): 2}, counts
    # no checkpoint of a finished trial left behind, the one the kill left included
    assert not list((tmp_path / "ckpt" / "c").glob("trial-*"))
