"""Checkpoints shared through S3: moto's S3-compatible server started on loopback by the test,
two simulated machines continuing one another's configuration through it, and a server that
cannot be reached refused in one line before anything is written to the study."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from test_shared_checkpoints import STUDY, machine

from sweeper.search.trial_record import RESTARTED_ATTR, RESUMED_ATTR
from sweeper.store.store import Store

boto3 = pytest.importorskip("boto3", reason="boto3 is not installed (the test extra has it)")

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's standalone S3 server on 127.0.0.1 (skipped, with the reason, if it cannot start)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(
            f"moto's server cannot be imported ({exc}): pip install 'moto[s3]' flask flask-cors"
        )
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as exc:  # a port taken meanwhile, a missing dependency
        pytest.skip(f"moto's S3 server did not start on 127.0.0.1:{port} ({exc})")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _bucket(endpoint: str, name: str) -> Any:
    client = boto3.client("s3", endpoint_url=endpoint, **_client_credentials())
    client.create_bucket(Bucket=name)
    return client


def _client_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@pytest.mark.slow
def test_a_configuration_paused_on_one_machine_goes_on_on_another_through_s3(
    tmp_path: Path, s3_server: str
) -> None:
    client = _bucket(s3_server, "team")
    (tmp_path / "m.toml").write_text(STUDY)
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": s3_server}
    url = "s3://team/runs/sweeper"
    a = machine(tmp_path, "machine-a", "--budget-epochs", "2", artifacts_url=url, extra_env=env)
    assert a.returncode == 0, a.stderr
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="team").get("Contents", [])]
    assert "runs/sweeper/m/config-0.head-1.json" in keys  # the pause's checkpoint, epoch 2
    assert not any("test-secret" in k for k in keys)
    b = machine(tmp_path, "machine-b", "--budget-epochs", "10", artifacts_url=url, extra_env=env)
    assert b.returncode == 0, b.stderr
    store_url = f"sqlite:///{tmp_path / 'm.db'}"
    parent, child = optuna.load_study(study_name="m", storage=store_url).get_trials()
    assert parent.user_attrs["worker"].startswith("machine-a:")
    assert child.user_attrs["worker"].startswith("machine-b:")
    assert child.state == TrialState.COMPLETE and child.user_attrs[RESUMED_ATTR] == 2
    assert RESTARTED_ATTR not in child.user_attrs
    assert [(r["trial_number"], r["epoch"]) for r in Store(store_url).ledger("m")] == [
        (0, 0),
        (0, 1),
        (1, 2),
        (1, 3),
    ]
    left = client.list_objects_v2(Bucket="team", Prefix="runs/sweeper/m/").get("KeyCount", 0)
    assert left == 0  # finished: its shared checkpoint is gone
    # the store holds the URL, never the credentials
    assert b"test-secret" not in (tmp_path / "m.db").read_bytes()


def test_a_server_that_cannot_be_reached_is_one_line_before_any_trial(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(STUDY)
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}"}
    run = machine(tmp_path, "machine-a", artifacts_url="s3://team/x", extra_env=env)
    assert run.returncode != 0
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: artifact store s3://team/x cannot be written"), run.stderr
    assert "Traceback" not in run.stderr
    db = tmp_path / "m.db"
    assert not db.exists() or optuna.get_all_study_names(f"sqlite:///{db}") == []


def test_missing_credentials_are_one_line_before_any_trial(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(STUDY)
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    run = machine(tmp_path, "machine-a", artifacts_url="s3://team/x", extra_env=env)
    assert run.returncode != 0
    assert "error: s3://team/x: no AWS credentials; set AWS_ACCESS_KEY_ID" in run.stderr
    assert "Traceback" not in run.stderr
