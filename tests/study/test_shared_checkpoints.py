"""Checkpoints in a shared store (file:// here; s3:// in test_shared_checkpoints_s3.py): the URL,
the check before any trial, the two heads a kill cannot corrupt, and two simulated machines (two
worker processes with their own checkpoint folders and host names) continuing one another's
configurations through real SQLite stores and real training on digits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from process_helpers import sweeper_env

from sweeper.errors import ConfigError
from sweeper.search.trial_record import PAUSE_REASON_ATTR, RESTARTED_ATTR, RESUMED_ATTR
from sweeper.store.store import Store
from sweeper.studyfile.config import parse_study
from sweeper.training import checkpoints
from sweeper.training.shared_checkpoints import SharedCheckpoints, parse_url

# --------------------------------------------------------------------------------------------
# the URL
# --------------------------------------------------------------------------------------------


def test_a_url_names_a_folder_or_a_bucket_and_never_credentials() -> None:
    assert parse_url("file:///mnt/shared/x/").path == "/mnt/shared/x"
    s3 = parse_url("s3://team-bucket/runs/sweeper/")
    assert (s3.scheme, s3.path, s3.prefix) == ("s3", "team-bucket", "runs/sweeper/")
    assert parse_url("s3://b").prefix == ""
    for bad, says in [
        ("/mnt/shared", "not a file:// or s3:// URL"),
        ("http://host/x", "not a file:// or s3:// URL"),
        ("file://server/x", r"not a host \(server\)"),
        ("s3://", "no bucket"),
        ("s3://key:secret@bucket/x", "credentials or options do not go in the URL"),
        ("s3://bucket/x?access_key=k", "credentials or options do not go in the URL"),
    ]:
        with pytest.raises(ConfigError, match=says) as info:
            parse_url(bad)
        assert "secret" not in str(info.value) and "\n" not in str(info.value)


def test_the_study_file_takes_the_url_and_checks_its_form(tmp_path: Path) -> None:
    spec = parse_study('[study]\nartifacts = "file:///mnt/x"\n', "a.toml")
    assert spec.artifacts == "file:///mnt/x"
    assert parse_study("", "a.toml").artifacts is None
    with pytest.raises(ConfigError, match=r"a.toml: \[study\] artifacts: .*not a file:// or s3://"):
        parse_study('[study]\nartifacts = "ftp://x"\n', "a.toml")


# --------------------------------------------------------------------------------------------
# the store's objects
# --------------------------------------------------------------------------------------------


def _checkpoint(folder: Path, config: int, epoch: int, payload: bytes) -> checkpoints.Checkpoint:
    ck = checkpoints.Checkpoint(folder, trial=config, config=config)
    checkpoints.save(ck, lambda path: path.write_bytes(payload), epoch)
    return ck


def _shared(tmp_path: Path) -> SharedCheckpoints:
    (tmp_path / "shared").mkdir(exist_ok=True)
    return SharedCheckpoints(parse_url(f"file://{tmp_path / 'shared'}"), "s", "machine-a")


def test_pushed_checkpoints_are_fetched_on_another_machine_and_old_objects_go(
    tmp_path: Path,
) -> None:
    shared = _shared(tmp_path)
    a = tmp_path / "a" / "trial-3"
    for epoch in (1, 2, 3):
        _checkpoint(a, 3, epoch, f"weights after {epoch}".encode())
        shared.push(a, 3, epoch, trial=3)
    folder = tmp_path / "shared" / "s"
    # two heads, each pointing at one object: the object of epoch 1 went when epoch 3's head
    # took its slot
    assert sorted(p.name for p in folder.glob("*.json")) == [
        "config-3.head-0.json",
        "config-3.head-1.json",
    ]
    assert sorted(p.name[:16] for p in folder.glob("*.tar")) == [
        "config-3.e00002-",
        "config-3.e00003-",
    ]
    head = shared.latest(3)
    assert head is not None and (head.epoch, head.host, head.trial) == (3, "machine-a", 3)
    b = tmp_path / "b" / "trial-3"
    ck = checkpoints.Checkpoint(b, trial=9, config=3, shared=shared)
    found = checkpoints.recover(ck)
    assert found.epoch == 3 and (b / checkpoints.WEIGHTS_FILE).read_bytes() == b"weights after 3"
    # nothing ahead of what is here: nothing fetched again
    assert shared.pull(b, 3, have=3) == 0
    checkpoints.remove(ck)
    assert not b.exists() and list(folder.iterdir()) == []


def test_a_head_or_an_object_cut_short_falls_back_to_the_epoch_before(tmp_path: Path) -> None:
    shared = _shared(tmp_path)
    a = tmp_path / "a" / "trial-0"
    for epoch in (1, 2):
        _checkpoint(a, 0, epoch, f"w{epoch}".encode())
        shared.push(a, 0, epoch)
    folder = tmp_path / "shared" / "s"
    head = folder / "config-0.head-0.json"  # epoch 2's
    blob = folder / json.loads(head.read_text())["blob"]
    blob.write_bytes(blob.read_bytes()[:100])  # an upload a kill cut short
    b = tmp_path / "b"
    assert shared.pull(b, 0, have=0) == 1
    assert (b / checkpoints.WEIGHTS_FILE).read_bytes() == b"w1"
    head.write_text(head.read_text()[:30])  # a head cut short does not read at all
    latest = shared.latest(0)
    assert latest is not None and latest.epoch == 1


def test_an_object_of_another_configuration_is_not_installed(tmp_path: Path) -> None:
    shared = _shared(tmp_path)
    a = tmp_path / "a"
    _checkpoint(a, 5, 1, b"five")
    shared.push(a, 5, 1)
    folder = tmp_path / "shared" / "s"
    head = json.loads((folder / "config-5.head-1.json").read_text())
    (folder / "config-6.head-1.json").write_text(json.dumps({**head, "config": 6}))
    assert shared.pull(tmp_path / "b", 6, have=0) == 0  # its manifest says configuration 5
    assert not (tmp_path / "b" / checkpoints.WEIGHTS_FILE).exists()


def test_an_unreachable_store_is_one_line_before_anything(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; create it on the shared file system"):
        SharedCheckpoints(parse_url(f"file://{tmp_path / 'nowhere'}"), "s")
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "s").write_text("a file where the study's folder goes")
    with pytest.raises(ConfigError, match="cannot be written"):
        SharedCheckpoints(parse_url(f"file://{blocked}"), "s")


def test_s3_without_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="no AWS credentials; set AWS_ACCESS_KEY_ID"):
        SharedCheckpoints(parse_url("s3://bucket/x"), "s")


# --------------------------------------------------------------------------------------------
# two machines
# --------------------------------------------------------------------------------------------

STUDY = """\
[study]
name = "m"
seed = 0

[data]
dataset = "digits"
subset = 400

[train]
model = "mnist-cnn"
batch_size = 64
epochs = 4

[sampler]
type = "random"

[space]
schedules = ["cosine"]
initial_lr = 0.1

[pruner]
type = "none"
"""


def machine(
    tmp_path: Path,
    host: str,
    *args: str,
    artifacts: bool = True,
    kill_at: str | None = None,
    study: str = "m",
    artifacts_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``sweeper tune`` as machine ``host`` would run it: its own checkpoint folder; the shared
    store is ``artifacts_url``, else the test's folder ``shared`` (``artifacts``: any)."""
    env = {k: v for k, v in sweeper_env().items() if not k.startswith(("SWEEPER_", "AWS_"))}
    env |= {"SWEEPER_HOST": host, "SWEEPER_HEARTBEAT_GRACE": "3", **(extra_env or {})}
    if kill_at:
        env["SWEEPER_KILL_AT"] = kill_at
    cmd = [sys.executable, "-m", "sweeper", "tune", "m.toml", "--study-name", study]
    cmd += ["--storage", f"sqlite:///{tmp_path / 'm.db'}", "--n-trials", "1"]
    cmd += ["--checkpoint-dir", str(tmp_path / f"ckpt-{host}")]
    if artifacts:
        cmd += ["--artifacts", artifacts_url or f"file://{tmp_path / 'shared'}"]
    return subprocess.run(
        [*cmd, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


def _setup(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(STUDY)
    (tmp_path / "shared").mkdir()


def _rows(tmp_path: Path, study: str) -> list[tuple[Any, ...]]:
    rows = Store(f"sqlite:///{tmp_path / 'm.db'}").epochs(study)
    last = max(r["trial_number"] for r in rows)
    return [
        (r["epoch"], r["step"], r["lr"], r["val_accuracy"], r["loss"])
        for r in rows
        if r["trial_number"] == last
    ]


@pytest.mark.slow
def test_a_configuration_paused_on_one_machine_goes_on_on_another(tmp_path: Path) -> None:
    _setup(tmp_path)
    a = machine(tmp_path, "machine-a", "--budget-epochs", "2")
    assert a.returncode == 0, a.stderr
    assert not (tmp_path / "ckpt-machine-b").exists()
    b = machine(tmp_path, "machine-b", "--budget-epochs", "10")
    assert b.returncode == 0, b.stderr
    assert "restarts" not in b.stderr, b.stderr
    url = f"sqlite:///{tmp_path / 'm.db'}"
    trials = optuna.load_study(study_name="m", storage=url).get_trials()
    parent, child = trials
    assert parent.user_attrs[PAUSE_REASON_ATTR] == "budget"
    assert parent.user_attrs["worker"].startswith("machine-a:")
    assert child.user_attrs["worker"].startswith("machine-b:")
    assert child.state == TrialState.COMPLETE and child.user_attrs[RESUMED_ATTR] == 2
    assert RESTARTED_ATTR not in child.user_attrs
    store = Store(url)
    # no epoch trained twice: 2 on machine A, 2 on machine B
    assert [(r["trial_number"], r["epoch"]) for r in store.ledger("m")] == [
        (0, 0),
        (0, 1),
        (1, 2),
        (1, 3),
    ]
    # finished: its checkpoint is gone, here and in the shared store
    assert list((tmp_path / "shared" / "m").iterdir()) == []
    status = subprocess.run(
        [sys.executable, "-m", "sweeper", "status", "--storage", url],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"checkpoints shared in file://{tmp_path / 'shared'}" in status.stdout
    # the same configuration trained in one go, on one machine: the same rows, the same curve
    whole = machine(tmp_path, "machine-c", "--budget-epochs", "10", study="whole")
    assert whole.returncode == 0, whole.stderr
    assert _rows(tmp_path, "m") == _rows(tmp_path, "whole")


@pytest.mark.slow
def test_without_a_shared_store_a_continuation_elsewhere_restarts_and_says_where_it_was(
    tmp_path: Path,
) -> None:
    _setup(tmp_path)
    a = machine(tmp_path, "machine-a", "--budget-epochs", "2", artifacts=False)
    assert a.returncode == 0, a.stderr
    b = machine(tmp_path, "machine-b", "--budget-epochs", "10", artifacts=False)
    assert b.returncode == 0, b.stderr
    line = next(ln for ln in b.stderr.splitlines() if "restarts configuration 0" in ln)
    assert "it was trained on machine-a" in line and "--artifacts" in line
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    assert store.epochs_spent("m") == 6  # 2, then all 4 again: every epoch counted


@pytest.mark.slow
def test_a_kill_during_an_upload_resumes_from_the_last_complete_checkpoint(
    tmp_path: Path,
) -> None:
    _setup(tmp_path)
    # killed half way through uploading the checkpoint of epoch 2 (the first upload: epoch 1's)
    a = machine(tmp_path, "machine-a", kill_at="during-upload:2")
    assert a.returncode == -signal.SIGKILL, a.stderr
    shared = tmp_path / "shared" / "m"
    assert [p.name for p in shared.glob("*.json")] == ["config-0.head-1.json"]
    assert len(list(shared.glob("config-0.e00002-*.tar"))) == 1  # the partial object
    # the same command on another machine: the last complete checkpoint is epoch 1's
    b = machine(tmp_path, "machine-b")
    assert b.returncode == 0, b.stderr
    url = f"sqlite:///{tmp_path / 'm.db'}"
    done = [
        t
        for t in optuna.load_study(study_name="m", storage=url).get_trials()
        if t.state == TrialState.COMPLETE
    ]
    assert len(done) == 1 and done[0].user_attrs[RESUMED_ATTR] == 1
    assert textwrap.dedent(b.stderr).count("restarts") == 0
