"""Optuna's gRPC storage proxy in front of a sweeper store: what it serves (Optuna's own tables:
studies, trials, their attributes and values) reads the same through the proxy as from the
database, and a write through it lands in the database; sweeper's own tables (``sweeper_*``:
per-epoch rows, the ledger, places, promotion claims) are not served by it, so a sweeper worker
still connects to the database itself (README, "Many machines")."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import optuna
import pytest
import sqlalchemy as sa

from sweeper.search.configurations import configurations
from sweeper.store.store import Store
from sweeper.testing import STUDY, build_synthetic_store

pytest.importorskip("grpc", reason="grpcio is not installed (Optuna's proxy needs it)")
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

SERVER = """
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
storage = optuna.storages.RDBStorage(sys.argv[1])
optuna.storages.run_grpc_proxy_server(storage, host="127.0.0.1", port=int(sys.argv[2]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A synthetic sweeper store of 300 trials and Optuna's proxy serving it on loopback."""
    folder = tmp_path_factory.mktemp("grpc")
    url = build_synthetic_store(folder / "s.db", 300)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, url, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(
                        f"Optuna's gRPC proxy did not start: {server.communicate()[1][-300:]}"
                    )
                time.sleep(0.2)
        yield url, port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_proxy_serves_a_sweeper_study_as_the_database_holds_it(
    proxied: tuple[str, int],
) -> None:
    url, port = proxied
    proxy = optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port)
    direct = optuna.load_study(study_name=STUDY, storage=url).get_trials()
    served = optuna.load_study(study_name=STUDY, storage=proxy).get_trials()
    assert len(served) == len(direct) >= 300
    for a, b in zip(direct, served, strict=True):
        assert (a.number, a.state, a.params, a.value) == (b.number, b.state, b.params, b.value)
        assert a.user_attrs == b.user_attrs and a.intermediate_values == b.intermediate_values
    # sweeper's reading of them (configurations, from the trials' attributes) is the same too
    assert configurations(served) == configurations(direct)
    proxy.close()


def test_a_write_through_the_proxy_lands_in_the_database_but_sweeper_tables_are_not_served(
    proxied: tuple[str, int],
) -> None:
    url, port = proxied
    proxy = optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port)
    study = optuna.load_study(study_name=STUDY, storage=proxy)
    study.set_user_attr("note", "through the proxy")
    study.enqueue_trial({"initial_lr": 0.05})
    # the proxy caches what it served: read the database itself
    fresh = optuna.load_study(study_name=STUDY, storage=url)
    assert fresh.user_attrs["note"] == "through the proxy"
    assert fresh.get_trials()[-1].state == optuna.trial.TrialState.WAITING
    # the per-epoch rows live in sweeper's own tables, which only the database holds
    store = Store(url)
    assert store.epochs(STUDY)  # there, in the database
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"sweeper_epochs", "sweeper_ledger"} <= tables
    proxy.close()
