"""Storage URLs: which one a command uses, the secrets they hold (masked in every message), and
the settings of the engines opened on them (SQLite's busy timeout, WAL, write lock at BEGIN).

:class:`sweeper.store.store.Store` opens a URL with these; the read-only side
(:mod:`sweeper.analysis.read_store`) masks and times out the same way. Never imports Keras.
"""

from __future__ import annotations

import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from sweeper.environment import STORAGE_ENV, storage_from_env
from sweeper.errors import StorageError

DEFAULT_URL = "sqlite:///sweeper.db"
SQLITE_TIMEOUT = 60  # seconds a SQLite writer waits for the lock


def resolve_url(url: str | None = None) -> str:
    """``url``, else ``$SWEEPER_STORAGE``, else ``sqlite:///sweeper.db`` in the working directory.

    An empty one is refused, never taken for the default: an unset variable in ``--storage
    "$DB_URL"`` would otherwise train in ``./sweeper.db`` without a word.
    """
    if url is not None:
        if not str(url).strip():
            raise StorageError(
                "the storage URL is empty (--storage or storage=); give one such as "
                f"{DEFAULT_URL}, or leave it out for ${STORAGE_ENV} or the default"
            )
        return url
    env = storage_from_env()
    if env is not None:
        if not env.strip():
            raise StorageError(
                f"${STORAGE_ENV} is set but empty; give it a storage URL such as {DEFAULT_URL}, "
                f"or unset it for the default {DEFAULT_URL}"
            )
        return env
    return DEFAULT_URL


# query parameters that carry a secret (``?password=...`` is as valid as ``user:password@``)
SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "sslpassword", "secret", "token"})


def url_secrets(url: str) -> list[str]:
    """The secrets a URL holds: its password and secret query values (for masking messages)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return []
    found = [str(parsed.password)] if parsed.password else []
    for key, value in parsed.query.items():
        if key.lower() in SECRET_QUERY_KEYS:
            found += [value] if isinstance(value, str) else list(value)
    return [s for s in found if s]


def mask_url(url: str) -> str:
    """The URL with its password and secret query values replaced by ``***`` (safe for logs
    and messages)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "<unparsable storage URL>"
    secret = {k: "***" for k in parsed.query if k.lower() in SECRET_QUERY_KEYS}
    if secret:
        parsed = parsed.update_query_dict(secret)
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def check_url(url: str) -> None:
    """Refuse a URL that is not a SQLAlchemy URL of a known database kind (a StorageError naming
    it masked); its driver is loaded only when the store is opened."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StorageError(
            f"invalid storage URL {mask_url(url)}: write it as a SQLAlchemy URL such as "
            "sqlite:///sweeper.db or postgresql+psycopg://user:password@host/db"
        ) from None
    try:
        parsed.get_dialect()  # the database kind is known (its driver is loaded later)
    except NoSuchModuleError:
        raise StorageError(
            f"invalid storage URL {mask_url(url)}: no database kind {parsed.drivername!r}; "
            "use sqlite:///FILE, postgresql+psycopg://user:password@host/db or another "
            "SQLAlchemy dialect"
        ) from None
    if is_sqlite(url) and _in_memory(parsed.database or "", parsed.query):
        raise StorageError(
            f"storage {url if not url_secrets(url) else mask_url(url)} is an in-memory database: "
            "a study must persist and its "
            "workers share it; give a file, e.g. sqlite:///sweeper.db"
        )


def _in_memory(database: str, query: Any) -> bool:
    """Whether a SQLite URL's database lives in memory only (gone with its connection)."""
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or query.get("mode") == "memory"
    )


# -- the engines' settings ------------------------------------------------------------------------
def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> Path | None:
    """The SQLite file on disk a URL names; None for other databases, ``:memory:`` and URI forms."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def check_not_directory(url: str) -> None:
    """Refuse a SQLite URL that names a directory (its store file would have to be in it)."""
    file = sqlite_file(url)
    if file is not None and file.is_dir():
        raise StorageError(
            f"cannot use storage {mask_url(url)}: {file} is a directory, not a store file; "
            f"name a file in it, e.g. sqlite:///{file.absolute() / 'sweeper.db'}"
        )


def check_sqlite_dir(url: str) -> None:
    """Refuse a SQLite URL whose file is a directory, or whose file's directory does not exist
    (SQLite would fail to open it)."""
    check_not_directory(url)
    file = sqlite_file(url)
    if file is not None:
        parent = file.absolute().parent
        if not parent.is_dir():
            raise StorageError(
                f"cannot use storage {mask_url(url)}: directory {parent} does not exist; "
                "create it or choose another path"
            )


def engine_kwargs(url: str) -> dict[str, Any]:
    """``create_engine`` keywords for a writer: SQLite's lock timeout, else a pre-ping pool."""
    if is_sqlite(url):
        return {"connect_args": {"timeout": SQLITE_TIMEOUT}}
    return {"pool_pre_ping": True}


def sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_TIMEOUT * 1000}")
        cur.close()

    @event.listens_for(engine, "first_connect")
    def _on_first_connect(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets readers and one writer work at once (several workers on one file); it is
        # a property of the database file, so Optuna's own connections use it too.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode = WAL")
        cur.close()


def sqlite_serializable(engine: Engine) -> None:
    """Make every transaction on ``engine`` take SQLite's write lock when it begins.

    Optuna claims a queued trial with ``SELECT ... FOR UPDATE`` then an update; SQLite ignores
    ``FOR UPDATE``, so two workers could both read WAITING and both run the trial. With
    ``BEGIN IMMEDIATE`` the second one waits (busy timeout) and then reads RUNNING.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_TIMEOUT * 1000}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed are dropped


class CheckedOut:
    """The SQLite connections of some engines that this process's threads hold checked out.

    A Ctrl-C raised inside a database call can leave a connection in an open transaction that
    nothing will return to the pool while the exception is in flight (its frames hold it). On
    SQLite that transaction may hold the file's write lock, and the run's last write (the run
    record, written as the interrupt unwinds) would wait the whole busy timeout and fail with
    "database is locked". :meth:`roll_back_abandoned` ends such transactions of the calling
    thread; a connection is returned to the pool as usual once its frames go.
    """

    def __init__(self) -> None:
        self._out: dict[int, tuple[Any, int]] = {}  # id(DBAPI connection) -> (it, thread id)

    def watch(self, engine: Engine) -> None:
        @event.listens_for(engine, "checkout")
        def _checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            self._out[id(dbapi_conn)] = (dbapi_conn, threading.get_ident())

        @event.listens_for(engine, "checkin")
        def _checkin(dbapi_conn: Any, _record: Any) -> None:
            if dbapi_conn is not None:
                self._out.pop(id(dbapi_conn), None)

    def roll_back_abandoned(self) -> int:
        """Roll back the open transactions of this thread's checked-out connections (call it
        where this thread runs no database call of its own); returns how many it ended."""
        me, ended = threading.get_ident(), 0
        for conn, thread in list(self._out.values()):
            if thread == me and getattr(conn, "in_transaction", False):
                with suppress(Exception):  # a connection already closed has nothing to end
                    conn.execute("ROLLBACK")
                    ended += 1
        return ended
