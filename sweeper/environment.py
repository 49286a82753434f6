"""The ``SWEEPER_*`` environment variables, each declared once here with what it does.

Every module reads them through this one: the ``*_ENV`` names (for messages, and for the
environment a process hands to the workers it starts) and an accessor per variable that returns
its value parsed (a path, a whole number, a flag). :data:`VARIABLES` lists them all with their
one-line docs; README.md's "Environment variables" table names each, and
``tests/test_environment.py`` checks both and that no other module spells a name out.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

VARIABLES: dict[str, str] = {}  # every variable's name -> what it does, in one line


def _declared(name: str, doc: str) -> str:
    VARIABLES[name] = doc
    return name


STORAGE_ENV = _declared(
    "SWEEPER_STORAGE",
    "the store's URL where --storage (storage=) is not given; default sqlite:///sweeper.db",
)
CHECKPOINT_ENV = _declared(
    "SWEEPER_CHECKPOINTS",
    "the checkpoint folder where --checkpoint-dir (checkpoint_dir=) is not given; "
    "default ./sweeper-checkpoints",
)
ARTIFACTS_ENV = _declared(
    "SWEEPER_ARTIFACTS",
    "the shared checkpoint store where --artifacts (artifacts=) is not given: file:///path or "
    "s3://bucket/prefix; default the study file's [study] artifacts, else none",
)
HOST_ENV = _declared(
    "SWEEPER_HOST",
    "the name this machine goes by in the store (whose checkpoints and processes are its own); "
    "default the host name",
)
DATA_DIR_ENV = _declared(
    "SWEEPER_DATA_DIR",
    "where the Python API writes in-memory arrays as .npz files where data_dir= is not given; "
    "default $XDG_CACHE_HOME/sweeper/data (~/.cache/sweeper/data)",
)
VERBOSE_ENV = _declared(
    "SWEEPER_VERBOSE",
    "-v's count (set by the CLI, inherited by its workers): non-zero lets the backends' start-up "
    "output through",
)
HEARTBEAT_GRACE_ENV = _declared(
    "SWEEPER_HEARTBEAT_GRACE",
    "seconds without a heartbeat before a running trial is stale (at least 2; default 40)",
)
WORKER_INDEX_ENV = _declared(
    "SWEEPER_WORKER_INDEX",
    "set by tune --workers: the index of each worker process it starts",
)
TRUSTED_HASH_ENV = _declared(
    "SWEEPER_TRUSTED_HASH",
    "set by tune --workers: the study file's hash, whose stored definition its workers may run",
)
KILL_AT_ENV = _declared(
    "SWEEPER_KILL_AT",
    "for the fault tests only: the crash point (sweeper/faults.py) where the process kills itself",
)


def storage_from_env() -> str | None:
    """``$SWEEPER_STORAGE`` as it is set (an empty one too: the store refuses it), else None."""
    return os.environ.get(STORAGE_ENV)


def checkpoint_root_from_env() -> Path | None:
    """``$SWEEPER_CHECKPOINTS`` as a path; None when it is unset or empty."""
    raw = os.environ.get(CHECKPOINT_ENV)
    return Path(raw) if raw else None


def artifacts_from_env() -> str | None:
    """``$SWEEPER_ARTIFACTS``, or None when unset or empty."""
    return os.environ.get(ARTIFACTS_ENV) or None


def host_name() -> str:
    """The name of this machine in the store: ``$SWEEPER_HOST``, else its host name."""
    return os.environ.get(HOST_ENV, "").strip() or socket.gethostname()


def data_dir_from_env() -> Path | None:
    """``$SWEEPER_DATA_DIR`` as a path, ``~`` expanded; None when it is unset or empty."""
    raw = os.environ.get(DATA_DIR_ENV)
    return Path(raw).expanduser() if raw else None


def verbose_from_env() -> bool:
    """Whether ``$SWEEPER_VERBOSE`` holds a non-zero count."""
    return os.environ.get(VERBOSE_ENV, "0") not in ("", "0")


def heartbeat_grace_from_env() -> int | None:
    """``$SWEEPER_HEARTBEAT_GRACE`` in whole seconds; None when it is unset or not a whole number."""
    raw = os.environ.get(HEARTBEAT_GRACE_ENV, "").strip()
    return int(raw) if raw.isdecimal() else None


def worker_index_from_env() -> int | None:
    """The index ``tune --workers`` gave this process; None in any other process."""
    try:
        return int(os.environ.get(WORKER_INDEX_ENV, ""))
    except ValueError:
        return None


def trusted_hash_from_env() -> str | None:
    """The hash of the study file whose stored definition this process may run, if set."""
    return os.environ.get(TRUSTED_HASH_ENV)


def kill_at_from_env() -> str | None:
    """The crash point this process is to kill itself at (the fault tests), if set."""
    return os.environ.get(KILL_AT_ENV)
