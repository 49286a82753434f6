"""Opening a store without writing to it, and Optuna's tables read with SQLAlchemy Core.

:func:`open_store` refuses a SQLite file that does not exist (it would be a new, empty store);
:func:`reading` gives a connection on an engine that writes nothing (:func:`read_engine`), with
database errors as one-line ``StorageError``. The table objects name only the columns read.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from sweeper.environment import STORAGE_ENV
from sweeper.errors import StorageError, StoreNotFoundError, StudyNotFoundError
from sweeper.store.storage_url import SQLITE_TIMEOUT, check_not_directory, url_secrets
from sweeper.store.store import Store

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial


# -- Optuna's tables, read with SQLAlchemy Core ---------------------------------------------------
_c = sa.column


STUDIES = sa.table("studies", _c("study_id"), _c("study_name"))


DIRECTIONS = sa.table("study_directions", _c("study_id"), _c("direction"), _c("objective"))


STUDY_ATTRS = sa.table("study_user_attributes", _c("study_id"), _c("key"), _c("value_json"))


TRIALS = sa.table(
    "trials",
    _c("trial_id"),
    _c("number"),
    _c("study_id"),
    _c("state"),
    _c("datetime_start", sa.DateTime),
    _c("datetime_complete", sa.DateTime),
)


VALUES = sa.table("trial_values", _c("trial_id"), _c("objective"), _c("value"), _c("value_type"))


INTERMEDIATE = sa.table(
    "trial_intermediate_values",
    _c("trial_id"),
    _c("step"),
    _c("intermediate_value"),
    _c("intermediate_value_type"),
)


PARAMS = sa.table(
    "trial_params",
    _c("param_id"),
    _c("trial_id"),
    _c("param_name"),
    _c("param_value"),
    _c("distribution_json"),
)


USER_ATTRS = sa.table("trial_user_attributes", _c("trial_id"), _c("key"), _c("value_json"))


SYSTEM_ATTRS = sa.table("trial_system_attributes", _c("trial_id"), _c("key"), _c("value_json"))


HEARTBEATS = sa.table("trial_heartbeats", _c("trial_id"), _c("heartbeat", sa.DateTime))


# States and value types are enums on PostgreSQL: compare them as text.
STATE = sa.cast(TRIALS.c.state, sa.String)


_SPECIAL = {"INF_POS": math.inf, "INF_NEG": -math.inf, "NAN": math.nan}


def stored_float(value: float | None, kind: str) -> float:
    return _SPECIAL[kind] if kind in _SPECIAL else float(value)  # type: ignore[arg-type]


@cache
def parse_distribution(text: str) -> BaseDistribution:
    from optuna.distributions import json_to_distribution

    return json_to_distribution(text)


# -- opening a store without writing to it --------------------------------------------------------
def open_store(url: str | None = None) -> Store:
    """The store at ``url``; a SQLite file that does not exist is an error, not a new store."""
    store = Store(url)
    check_not_directory(store.url)
    file = store.sqlite_file
    if file is not None and not file.is_file():
        raise StoreNotFoundError(
            f"no store at {store.masked_url}: the file {file} does not exist; run "
            f"`sweeper tune` first or pass --storage (or ${STORAGE_ENV}) of an existing store"
        )
    return store


def read_engine(store: Store) -> Engine:
    """An engine on the store that writes nothing: no table, and a SQLite file opened read-only
    (``mode=ro``), so its journal mode is left alone. A file this user may read but not write
    (nor its folder, where SQLite keeps the WAL index) is opened as immutable."""
    kwargs: dict[str, Any] = {}
    file = store.sqlite_file
    if file is not None:
        path = file.absolute()
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
        flags = "mode=ro" if writable else "mode=ro&immutable=1"
        uri = f"file:{quote(str(path))}?{flags}"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT, check_same_thread=False)

        with store.guard():
            return sa.create_engine("sqlite://", creator=connect)
    with store.guard():  # a missing database driver is one line too
        return sa.create_engine(store.url, **kwargs)


@contextmanager
def reading(store: Store) -> Iterator[sa.Connection]:
    """A connection for reading; database errors become one-line ``StorageError``."""
    engine = read_engine(store)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("studies"):
                raise StorageError(
                    f"{store.masked_url} is not a sweeper store: it has no Optuna tables"
                )
            yield conn
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        for secret in url_secrets(store.url):
            reason = reason.replace(secret, "***")
        raise StorageError(f"cannot read storage {store.masked_url}: {reason}") from exc
    finally:
        engine.dispose()


def study_names(conn: sa.Connection) -> list[str]:
    return [str(n) for n in conn.scalars(sa.select(STUDIES.c.study_name).order_by("study_id"))]


def find_study_id(conn: sa.Connection, store: Store, name: str) -> int:
    sid = conn.scalar(sa.select(STUDIES.c.study_id).where(STUDIES.c.study_name == name))
    if sid is None:
        names = study_names(conn)
        known = f"its studies: {', '.join(names)}" if names else "it holds no study yet"
        raise StudyNotFoundError(f"no study {name!r} in {store.masked_url}; {known}")
    return int(sid)


def _trial_rows(conn: sa.Connection, table: sa.TableClause, sid: int, *cols: Any) -> Any:
    return conn.execute(
        sa.select(table.c.trial_id, *cols)
        .join(TRIALS, TRIALS.c.trial_id == table.c.trial_id)
        .where(TRIALS.c.study_id == sid)
    )


def read_trials(conn: sa.Connection, sid: int) -> list[FrozenTrial]:
    """Every trial of study ``sid``, one query per Optuna table."""
    from optuna.trial import FrozenTrial, TrialState

    values: dict[int, dict[int, float]] = defaultdict(dict)
    for tid, objective, value, kind in _trial_rows(
        conn, VALUES, sid, VALUES.c.objective, VALUES.c.value, VALUES.c.value_type
    ):
        values[tid][int(objective)] = stored_float(value, str(kind))
    inter: dict[int, dict[int, float]] = defaultdict(dict)
    for tid, step, value, kind in _trial_rows(
        conn,
        INTERMEDIATE,
        sid,
        INTERMEDIATE.c.step,
        INTERMEDIATE.c.intermediate_value,
        INTERMEDIATE.c.intermediate_value_type,
    ):
        inter[tid][int(step)] = stored_float(value, str(kind))
    params: dict[int, dict[str, Any]] = defaultdict(dict)
    dists: dict[int, dict[str, BaseDistribution]] = defaultdict(dict)
    rows = _trial_rows(
        conn, PARAMS, sid, PARAMS.c.param_name, PARAMS.c.param_value, PARAMS.c.distribution_json
    )
    for tid, name, value, text in sorted(rows, key=lambda r: r[0]):
        dist = parse_distribution(text)
        dists[tid][name] = dist
        params[tid][name] = dist.to_external_repr(value)
    attrs: list[dict[int, dict[str, Any]]] = []
    for table in (USER_ATTRS, SYSTEM_ATTRS):
        found: dict[int, dict[str, Any]] = defaultdict(dict)
        for tid, key, text in _trial_rows(conn, table, sid, table.c.key, table.c.value_json):
            found[tid][key] = json.loads(text)
        attrs.append(found)
    trials = []
    query = sa.select(TRIALS).where(TRIALS.c.study_id == sid).order_by(TRIALS.c.number)
    for row in conn.execute(query).mappings():
        tid = row["trial_id"]
        vals = values.get(tid)
        trials.append(
            FrozenTrial(
                number=int(row["number"]),
                state=TrialState[str(row["state"])],
                value=None,
                values=[vals[k] for k in sorted(vals)] if vals else None,
                datetime_start=row["datetime_start"],
                datetime_complete=row["datetime_complete"],
                params=params.get(tid, {}),
                distributions=dists.get(tid, {}),
                user_attrs=attrs[0].get(tid, {}),
                system_attrs=attrs[1].get(tid, {}),
                intermediate_values=inter.get(tid, {}),
                trial_id=int(tid),
            )
        )
    return trials
