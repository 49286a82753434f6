"""Read-only analysis of a store: the state of its studies, their trials, best trials, importance.

Nothing here writes to the store: a SQLite file that does not exist is reported, never created,
and Optuna's tables are read with plain SQL through SQLAlchemy. :func:`status` runs a few aggregate
queries over every study; :func:`load` reads one study's trials in one bulk query per table and
builds Optuna ``FrozenTrial`` objects from the rows (Optuna's storage builds one ORM object per
row, which takes seconds for ten thousand trials). Optuna's own functions (importance, plots) then
run on a read-only study over the trials read (:class:`TrialsStorage`).

Never imports Keras or TensorFlow.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sqlite3
import warnings
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import optuna
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from sweeper import optuna_ids
from sweeper import space as space_mod
from sweeper.errors import StorageError, SweeperError
from sweeper.schedules import from_dict
from sweeper.store import GRACE_PERIOD, SQLITE_TIMEOUT, Store, url_secrets
from sweeper.tables import EpochRow, LedgerRow

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)

EVALUATORS = ("ped-anova", "fanova", "mean-decrease-impurity")
MIN_IMPORTANCE_TRIALS = 4  # complete tuned trials needed to rank parameters
# At most this many trials per importance evaluation: fANOVA (Optuna's, in pure Python) takes
# about a second per scope for 100 trials and 32 trees, and grows faster than linearly.
IMPORTANCE_SAMPLE = {"ped-anova": 5000, "fanova": 100, "mean-decrease-impurity": 2000}
FANOVA_TREES = 32


class StoreNotFoundError(StorageError):
    """The store to read does not exist."""


class StudyNotFoundError(SweeperError):
    """No study of that name in the store."""

    exit_code = 2


class TooFewTrialsError(SweeperError):
    """Not enough finished trials for the analysis asked for."""


# -- Optuna's tables, read with SQLAlchemy Core ---------------------------------------------------
_c = sa.column
_studies = sa.table("studies", _c("study_id"), _c("study_name"))
_directions = sa.table("study_directions", _c("study_id"), _c("direction"), _c("objective"))
_study_attrs = sa.table("study_user_attributes", _c("study_id"), _c("key"), _c("value_json"))
_trials = sa.table(
    "trials",
    _c("trial_id"),
    _c("number"),
    _c("study_id"),
    _c("state"),
    _c("datetime_start", sa.DateTime),
    _c("datetime_complete", sa.DateTime),
)
_values = sa.table("trial_values", _c("trial_id"), _c("objective"), _c("value"), _c("value_type"))
_inter = sa.table(
    "trial_intermediate_values",
    _c("trial_id"),
    _c("step"),
    _c("intermediate_value"),
    _c("intermediate_value_type"),
)
_params = sa.table(
    "trial_params",
    _c("param_id"),
    _c("trial_id"),
    _c("param_name"),
    _c("param_value"),
    _c("distribution_json"),
)
_user_attrs = sa.table("trial_user_attributes", _c("trial_id"), _c("key"), _c("value_json"))
_system_attrs = sa.table("trial_system_attributes", _c("trial_id"), _c("key"), _c("value_json"))
_heartbeats = sa.table("trial_heartbeats", _c("trial_id"), _c("heartbeat", sa.DateTime))

# States and value types are enums on PostgreSQL: compare them as text.
_STATE = sa.cast(_trials.c.state, sa.String)
_SPECIAL = {"INF_POS": math.inf, "INF_NEG": -math.inf, "NAN": math.nan}


def _stored_float(value: float | None, kind: str) -> float:
    return _SPECIAL[kind] if kind in _SPECIAL else float(value)  # type: ignore[arg-type]


@cache
def _distribution(text: str) -> BaseDistribution:
    from optuna.distributions import json_to_distribution

    return json_to_distribution(text)


# -- opening a store without writing to it --------------------------------------------------------
def open_store(url: str | None = None) -> Store:
    """The store at ``url``; a SQLite file that does not exist is an error, not a new store."""
    store = Store(url)
    file = store.sqlite_file
    if file is not None and not file.is_file():
        raise StoreNotFoundError(
            f"no store at {store.masked_url}: the file {file} does not exist; run "
            "`sweeper tune` first or pass --storage (or $SWEEPER_STORAGE) of an existing store"
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
    return [str(n) for n in conn.scalars(sa.select(_studies.c.study_name).order_by("study_id"))]


def _study_id(conn: sa.Connection, store: Store, name: str) -> int:
    sid = conn.scalar(sa.select(_studies.c.study_id).where(_studies.c.study_name == name))
    if sid is None:
        names = study_names(conn)
        known = f"its studies: {', '.join(names)}" if names else "it holds no study yet"
        raise StudyNotFoundError(f"no study {name!r} in {store.masked_url}; {known}")
    return int(sid)


# -- status of every study ------------------------------------------------------------------------
@dataclass(frozen=True)
class RunningTrial:
    number: int
    worker: str | None
    heartbeat: datetime | None
    stale: bool  # no heartbeat for longer than the grace period


@dataclass(frozen=True)
class StudyStatus:
    name: str
    direction: str  # "maximize" | "minimize"
    counts: dict[str, int]  # complete, pruned, failed, running, waiting, retried
    best_value: float | None
    best_number: int | None
    last_activity: datetime | None
    running: tuple[RunningTrial, ...] = ()
    epochs_spent: int = 0  # epochs trained for the study (its ledger)
    budget_epochs: int | None = None  # the epoch budget of its last run, if it had one

    @property
    def n_trials(self) -> int:
        return sum(self.counts.values())


def _counts(conn: sa.Connection) -> dict[int, dict[str, int]]:
    """Per study, trials by state; a failed trial queued again counts as ``retried``."""
    raw: dict[int, dict[str, int]] = defaultdict(dict)
    q = sa.select(_trials.c.study_id, _trials.c.state, sa.func.count()).group_by(
        _trials.c.study_id, _trials.c.state
    )
    for sid, state, n in conn.execute(q):
        raw[sid][str(state)] = int(n)
    retried: dict[int, set[int]] = defaultdict(set)  # numbers in the retry callback's history
    q = (
        sa.select(_trials.c.study_id, _system_attrs.c.value_json)
        .join(_trials, _trials.c.trial_id == _system_attrs.c.trial_id)
        .where(_system_attrs.c.key == "retry_history")
    )
    for sid, text in conn.execute(q):
        retried[sid].update(int(n) for n in json.loads(text))
    failed: dict[int, set[int]] = defaultdict(set)
    if retried:
        q = sa.select(_trials.c.study_id, _trials.c.number).where(_STATE == "FAIL")
        for sid, number in conn.execute(q):
            failed[sid].add(int(number))
    out = {}
    for sid, c in raw.items():
        n_retried = len(retried[sid] & failed[sid])
        out[sid] = {
            "complete": c.get("COMPLETE", 0),
            "pruned": c.get("PRUNED", 0),
            "failed": c.get("FAIL", 0) - n_retried,
            "running": c.get("RUNNING", 0),
            "waiting": c.get("WAITING", 0),
            "retried": n_retried,
        }
    return out


def _running(conn: sa.Connection) -> dict[int, list[RunningTrial]]:
    """Per study, the RUNNING trials with their worker and last heartbeat."""
    now = conn.scalar(sa.select(sa.func.current_timestamp()))  # the clock heartbeats use
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    if now is not None and now.tzinfo is not None:  # PostgreSQL: heartbeats are naive
        now = now.replace(tzinfo=None)
    worker = sa.and_(_user_attrs.c.trial_id == _trials.c.trial_id, _user_attrs.c.key == "worker")
    q = (
        sa.select(
            _trials.c.study_id,
            _trials.c.number,
            _user_attrs.c.value_json,
            _heartbeats.c.heartbeat,
            _trials.c.datetime_start,
        )
        .select_from(_trials)
        .outerjoin(_user_attrs, worker)
        .outerjoin(_heartbeats, _heartbeats.c.trial_id == _trials.c.trial_id)
        .where(_STATE == "RUNNING")
        .order_by(_trials.c.number)
    )
    out: dict[int, list[RunningTrial]] = defaultdict(list)
    local_now = datetime.now()  # the clock Optuna stamps datetime_start with
    for sid, number, who, beat, started in conn.execute(q):
        if isinstance(started, str):
            started = datetime.fromisoformat(started)
        if beat:
            stale = bool(now and (now - beat).total_seconds() > GRACE_PERIOD)
        else:  # never beat: its process died between taking it and starting it
            stale = bool(started and (local_now - started).total_seconds() > GRACE_PERIOD)
        out[sid].append(RunningTrial(int(number), json.loads(who) if who else None, beat, stale))
    return out


def _best(conn: sa.Connection, sid: int, minimize: bool) -> tuple[float, int] | None:
    order = _values.c.value.asc() if minimize else _values.c.value.desc()
    best = conn.execute(
        sa.select(_values.c.value, _trials.c.number)
        .join(_trials, _trials.c.trial_id == _values.c.trial_id)
        .where(
            _trials.c.study_id == sid,
            _STATE == "COMPLETE",
            _values.c.objective == 0,
            sa.cast(_values.c.value_type, sa.String) == "FINITE",
        )
        .order_by(order, _trials.c.number)
        .limit(1)
    ).first()
    return None if best is None else (float(best[0]), int(best[1]))


def _spent(conn: sa.Connection) -> dict[str, int]:
    """Per study name, the epochs in its ledger (none for a store without one)."""
    if not sa.inspect(conn).has_table(LedgerRow.__tablename__):
        return {}
    table = sa.Table(LedgerRow.__tablename__, LedgerRow.metadata)
    q = sa.select(table.c.study_name, sa.func.count()).group_by(table.c.study_name)
    return {str(n): int(c) for n, c in conn.execute(q)}


def _budgets(conn: sa.Connection) -> dict[int, int]:
    """Per study id, the ``budget_epochs`` its last run stored (when it had one)."""
    q = sa.select(_study_attrs.c.study_id, _study_attrs.c.value_json).where(
        _study_attrs.c.key == "budget_epochs"
    )
    out = {}
    for sid, raw in conn.execute(q):
        value = json.loads(raw)
        if isinstance(value, int) and not isinstance(value, bool):
            out[int(sid)] = value
    return out


def status(url: str | None = None) -> list[StudyStatus]:
    """Every study of the store, from aggregate queries (no trial is loaded)."""
    store = open_store(url)
    with reading(store) as conn:
        names = dict(conn.execute(sa.select(_studies.c.study_id, _studies.c.study_name)).all())
        q = sa.select(_directions.c.study_id, _directions.c.direction)
        directions = dict(conn.execute(q.where(_directions.c.objective == 0)).all())
        counts = _counts(conn)
        last = sa.select(
            _trials.c.study_id,
            sa.func.max(_trials.c.datetime_start),
            sa.func.max(_trials.c.datetime_complete),
        ).group_by(_trials.c.study_id)
        activity: dict[int, datetime | None] = {}
        for sid, started, completed in conn.execute(last):
            activity[sid] = max((d for d in (started, completed) if d), default=None)
        running = _running(conn)
        spent = _spent(conn)
        budgets = _budgets(conn)
        out = []
        for sid, name in sorted(names.items()):
            direction = "minimize" if str(directions.get(sid)) == "MINIMIZE" else "maximize"
            best = _best(conn, sid, direction == "minimize")
            empty = dict.fromkeys(("complete", "pruned", "failed", "running", "waiting"), 0)
            out.append(
                StudyStatus(
                    name=str(name),
                    direction=direction,
                    counts=counts.get(sid, {**empty, "retried": 0}),
                    best_value=None if best is None else best[0],
                    best_number=None if best is None else best[1],
                    last_activity=activity.get(sid),
                    running=tuple(running.get(sid, ())),
                    epochs_spent=spent.get(str(name), 0),
                    budget_epochs=budgets.get(sid),
                )
            )
        return out


# -- one study's trials ---------------------------------------------------------------------------
@dataclass
class StudyData:
    """A study as read from the store: its trials, in number order, and its attributes."""

    name: str
    storage: str  # masked URL
    direction: str  # "maximize" | "minimize"
    user_attrs: dict[str, Any]
    trials: list[FrozenTrial]
    _copies: dict[str, optuna.Study] = field(default_factory=dict, repr=False)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def steps_per_epoch(self) -> int | None:
        value = self.user_attrs.get("steps_per_epoch")
        return int(value) if value else None

    @property
    def epochs(self) -> int | None:
        value = self.user_attrs.get("epochs")
        return int(value) if value else None

    def complete(self) -> list[FrozenTrial]:
        from optuna.trial import TrialState

        return [
            t
            for t in self.trials
            if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
        ]

    def ranked(self) -> list[FrozenTrial]:
        """Complete trials, best first."""
        sign = -1.0 if self.maximize else 1.0
        return sorted(self.complete(), key=lambda t: (sign * float(t.value or 0.0), t.number))

    def as_study(
        self, trials: Iterable[FrozenTrial] | None = None, key: str = "all"
    ) -> optuna.Study:
        """A read-only Optuna study of ``trials`` (all by default), cached under ``key``."""
        if key not in self._copies:
            chosen = self.trials if trials is None else trials
            self._copies[key] = copy_study(chosen, self.direction)
        return self._copies[key]


def admissible(trial: FrozenTrial) -> FrozenTrial:
    """``trial``, its distributions widened where a value lies outside them.

    A baseline trial may hold a value outside the searched range (enqueued on purpose); Optuna
    stores it, but refuses such a trial in ``add_trials``.
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import FrozenTrial

    widened: dict[str, BaseDistribution] = {}
    for name, dist in trial.distributions.items():
        value = trial.params[name]
        if isinstance(dist, FloatDistribution) and not dist.low <= value <= dist.high:
            step = None if dist.step is None or dist.log else dist.step
            low, high = min(dist.low, value), max(dist.high, value)
            if step is not None:
                low = dist.low - math.ceil((dist.low - low) / step) * step
                high = dist.high + math.ceil((high - dist.high) / step) * step
            widened[name] = FloatDistribution(low, high, log=dist.log, step=step)
        elif isinstance(dist, IntDistribution) and not dist.low <= value <= dist.high:
            widened[name] = IntDistribution(
                min(dist.low, value), max(dist.high, value), log=dist.log
            )
        elif isinstance(dist, CategoricalDistribution) and value not in dist.choices:
            widened[name] = CategoricalDistribution([*dist.choices, value])
    if not widened:
        return trial
    return FrozenTrial(
        number=trial.number,
        state=trial.state,
        value=None,
        values=trial.values,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=trial.params,
        distributions={**trial.distributions, **widened},
        user_attrs=trial.user_attrs,
        system_attrs=trial.system_attrs,
        intermediate_values=trial.intermediate_values,
        trial_id=optuna_ids.trial_id(trial),
    )


class TrialsStorage(optuna.storages.BaseStorage):
    """A read-only Optuna storage over trials already read: one study, nothing can be written.

    Optuna's functions (importance evaluators, plots) run on a :class:`optuna.Study` over it
    without copying a trial: the trials are handed out as they are (Optuna's storage contract lets
    a storage assume that its callers never modify what it returns).
    """

    def __init__(
        self,
        trials: Iterable[FrozenTrial],
        direction: str = "maximize",
        name: str = "copy",
        user_attrs: dict[str, Any] | None = None,
    ) -> None:
        from optuna.study import StudyDirection

        self._trials = sorted((admissible(t) for t in trials), key=lambda t: t.number)
        self._by_id = {optuna_ids.trial_id(t): t for t in self._trials}
        self._name = name
        self._direction = StudyDirection[direction.upper()]
        self._user_attrs = dict(user_attrs or {})

    def _read_only(self, *_args: Any, **_kwargs: Any) -> Any:
        raise NotImplementedError("a TrialsStorage is read-only")

    create_new_study = delete_study = set_study_user_attr = set_study_system_attr = _read_only
    create_new_trial = set_trial_param = set_trial_state_values = _read_only
    set_trial_intermediate_value = set_trial_user_attr = set_trial_system_attr = _read_only

    def get_study_id_from_name(self, study_name: str) -> int:
        if study_name != self._name:
            raise KeyError(study_name)
        return 0

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._name

    def get_study_directions(self, study_id: int) -> list[optuna.study.StudyDirection]:
        return [self._direction]

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._user_attrs

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return {}

    def get_all_studies(self) -> list[Any]:
        raise NotImplementedError("a TrialsStorage holds one study and lists none")

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._by_id[trial_id]

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[optuna.trial.TrialState] | None = None,
    ) -> list[FrozenTrial]:
        if states is None:
            return list(self._trials)
        return [t for t in self._trials if t.state in states]


def copy_study(trials: Iterable[FrozenTrial], direction: str = "maximize") -> optuna.Study:
    """A read-only Optuna study of ``trials``, which keep their numbers (see TrialsStorage)."""
    storage = TrialsStorage(trials, direction)
    return optuna.Study("copy", storage, sampler=optuna.samplers.RandomSampler(seed=0))


def _trial_rows(conn: sa.Connection, table: sa.TableClause, sid: int, *cols: Any) -> Any:
    return conn.execute(
        sa.select(table.c.trial_id, *cols)
        .join(_trials, _trials.c.trial_id == table.c.trial_id)
        .where(_trials.c.study_id == sid)
    )


def read_trials(conn: sa.Connection, sid: int) -> list[FrozenTrial]:
    """Every trial of study ``sid``, one query per Optuna table."""
    from optuna.trial import FrozenTrial, TrialState

    values: dict[int, dict[int, float]] = defaultdict(dict)
    for tid, objective, value, kind in _trial_rows(
        conn, _values, sid, _values.c.objective, _values.c.value, _values.c.value_type
    ):
        values[tid][int(objective)] = _stored_float(value, str(kind))
    inter: dict[int, dict[int, float]] = defaultdict(dict)
    for tid, step, value, kind in _trial_rows(
        conn,
        _inter,
        sid,
        _inter.c.step,
        _inter.c.intermediate_value,
        _inter.c.intermediate_value_type,
    ):
        inter[tid][int(step)] = _stored_float(value, str(kind))
    params: dict[int, dict[str, Any]] = defaultdict(dict)
    dists: dict[int, dict[str, BaseDistribution]] = defaultdict(dict)
    rows = _trial_rows(
        conn, _params, sid, _params.c.param_name, _params.c.param_value, _params.c.distribution_json
    )
    for tid, name, value, text in sorted(rows, key=lambda r: r[0]):
        dist = _distribution(text)
        dists[tid][name] = dist
        params[tid][name] = dist.to_external_repr(value)
    attrs: list[dict[int, dict[str, Any]]] = []
    for table in (_user_attrs, _system_attrs):
        found: dict[int, dict[str, Any]] = defaultdict(dict)
        for tid, key, text in _trial_rows(conn, table, sid, table.c.key, table.c.value_json):
            found[tid][key] = json.loads(text)
        attrs.append(found)
    trials = []
    query = sa.select(_trials).where(_trials.c.study_id == sid).order_by(_trials.c.number)
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


def load(url: str | None, name: str) -> StudyData:
    """Read study ``name`` from the store at ``url``."""
    store = open_store(url)
    with reading(store) as conn:
        sid = _study_id(conn, store, name)
        direction = conn.scalar(
            sa.select(_directions.c.direction).where(
                _directions.c.study_id == sid, _directions.c.objective == 0
            )
        )
        attrs = {
            k: json.loads(v)
            for k, v in conn.execute(
                sa.select(_study_attrs.c.key, _study_attrs.c.value_json).where(
                    _study_attrs.c.study_id == sid
                )
            )
        }
        trials = read_trials(conn, sid)
    log.info("read %d trials of study %s from %s", len(trials), name, store.masked_url)
    return StudyData(
        name=name,
        storage=store.masked_url,
        direction="minimize" if str(direction) == "MINIMIZE" else "maximize",
        user_attrs=attrs,
        trials=trials,
    )


def read_epochs(url: str | None, name: str) -> list[dict[str, Any]]:
    """The study's ``sweeper_epochs`` rows (none for a store without that table)."""
    store = open_store(url)
    table = sa.Table(EpochRow.__tablename__, EpochRow.metadata)
    cols = [c for c in table.columns if c.name not in ("id", "created_at")]
    with reading(store) as conn:
        if not sa.inspect(conn).has_table(table.name):
            return []
        result = conn.execute(
            sa.select(*cols)
            .where(table.c.study_name == name)
            .order_by(table.c.trial_number, table.c.trial_id, table.c.epoch)
        )
        return [dict(r._mapping) for r in result]


def counts(data: StudyData) -> dict[str, int]:
    """Trials by outcome: ``sweeper.study.count_states`` plus ``diverged`` (among the pruned)."""
    from sweeper.trials import count_states

    out = count_states(data.trials)
    out["diverged"] = sum(outcome_of(t) == "diverged" for t in data.trials)
    return out


# -- trials in words ------------------------------------------------------------------------------
def family_of(trial: FrozenTrial) -> str:
    family = trial.params.get(space_mod.SCHEDULE_PARAM)
    if family is None:
        family = (trial.user_attrs.get("schedule") or {}).get("family")
    return str(family) if family is not None else "?"


def baseline_of(trial: FrozenTrial) -> str | None:
    name = trial.user_attrs.get(space_mod.BASELINE_ATTR)
    return str(name) if name else None


def outcome_of(trial: FrozenTrial) -> str:
    """complete | pruned | diverged | failed | running | waiting."""
    if trial.user_attrs.get("outcome") == "diverged":
        return "diverged"
    name = trial.state.name.lower()
    return "failed" if name == "fail" else name


def describe(trial: FrozenTrial) -> str:
    """The trial's schedule in one line, e.g. ``cosine(initial_lr=0.1, ...)``."""
    schedule = trial.user_attrs.get("schedule")
    if not schedule:
        return family_of(trial)
    try:
        text = from_dict(schedule).describe()
    except SweeperError:
        text = str(schedule.get("family"))
    optimizer = trial.user_attrs.get("optimizer")
    if optimizer and optimizer != "sgd":
        text += f" + {optimizer}"
    return text


def duration_of(trial: FrozenTrial) -> float | None:
    d = trial.duration
    return None if d is None else d.total_seconds()


@dataclass(frozen=True)
class BestTrials:
    top: list[FrozenTrial]  # best complete trials, best first (baselines included)
    baselines: list[FrozenTrial]  # every baseline trial, best complete first
    best_tuned: FrozenTrial | None  # best complete trial that is not a baseline
    best_baseline: FrozenTrial | None

    @property
    def gain(self) -> float | None:
        """Best tuned value minus best baseline value."""
        if self.best_tuned is None or self.best_baseline is None:
            return None
        return float(self.best_tuned.value or 0.0) - float(self.best_baseline.value or 0.0)


def best_trials(data: StudyData, top: int = 5) -> BestTrials:
    ranked = data.ranked()
    rank = {t.number: i for i, t in enumerate(ranked)}
    baselines = [t for t in data.trials if baseline_of(t)]
    baselines.sort(key=lambda t: (rank.get(t.number, len(rank)), t.number))
    tuned = [t for t in ranked if not baseline_of(t)]
    best_base = [t for t in ranked if baseline_of(t)]
    return BestTrials(
        top=ranked[:top],
        baselines=baselines,
        best_tuned=tuned[0] if tuned else None,
        best_baseline=best_base[0] if best_base else None,
    )


# -- parameter importance -------------------------------------------------------------------------
@dataclass(frozen=True)
class Importance:
    scope: str  # "all families" or a family name
    n_trials: int  # trials the evaluator saw
    n_available: int  # complete tuned trials in the scope
    values: dict[str, float]  # parameter -> importance (sums to 1), most important first


@dataclass(frozen=True)
class ImportanceReport:
    evaluator: str
    overall: Importance
    families: list[Importance]
    skipped: dict[str, str]  # family -> why it has no ranking
    baselines_excluded: int


def make_evaluator(name: str, seed: int = 0) -> Any:
    from optuna import importance as imp

    makers: dict[str, Callable[[], Any]] = {
        "ped-anova": imp.PedAnovaImportanceEvaluator,
        "fanova": lambda: imp.FanovaImportanceEvaluator(n_trees=FANOVA_TREES, seed=seed),
        "mean-decrease-impurity": lambda: imp.MeanDecreaseImpurityImportanceEvaluator(seed=seed),
    }
    if name not in makers:
        raise SweeperError(
            f"unknown importance evaluator {name!r}; choose one of: {', '.join(EVALUATORS)}"
        )
    return makers[name]()


def _importance(
    trials: list[FrozenTrial],
    scope: str,
    evaluator: str,
    direction: str,
    max_trials: int,
    seed: int,
    params: list[str] | None = None,
) -> Importance:
    import optuna

    used = trials
    if len(trials) > max_trials:
        used = sorted(random.Random(seed).sample(trials, max_trials), key=lambda t: t.number)
    study = copy_study(used, direction)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = optuna.importance.get_param_importances(
                study, evaluator=make_evaluator(evaluator, seed), params=params
            )
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            raise TooFewTrialsError(f"{scope}: {exc}") from exc
    for w in caught:
        log.info("importance of %s: %s", scope, w.message)
    values = dict(
        sorted(
            ((k, float(v)) for k, v in values.items() if math.isfinite(v)),
            key=lambda kv: (-kv[1], kv[0]),
        )
    )
    return Importance(scope, len(used), len(trials), values)


def importances(
    data: StudyData,
    evaluator: str = "ped-anova",
    *,
    max_trials: int | None = None,
    seed: int = 0,
) -> ImportanceReport:
    """Importance of the searched parameters over all tuned trials, then within each family.

    Baseline trials are left out: their values are fixed by hand (some outside the searched
    ranges) rather than sampled. Conditional parameters only exist inside a family, so each
    family is also ranked on its own trials. Each scope is sampled down to ``max_trials`` trials
    (default: :data:`IMPORTANCE_SAMPLE` of the evaluator).
    """
    complete = data.complete()
    tuned = [t for t in complete if not baseline_of(t)]
    if len(tuned) < MIN_IMPORTANCE_TRIALS:
        raise TooFewTrialsError(
            f"importance needs at least {MIN_IMPORTANCE_TRIALS} complete trials besides the "
            f"baselines; study {data.name!r} has {len(tuned)}: run more trials with `sweeper tune`"
        )
    make_evaluator(evaluator)
    max_trials = max_trials or IMPORTANCE_SAMPLE[evaluator]
    overall = _importance(tuned, "all families", evaluator, data.direction, max_trials, seed)
    by_family: dict[str, list[FrozenTrial]] = defaultdict(list)
    for t in tuned:
        by_family[family_of(t)].append(t)
    families, skipped = [], {}
    for family in sorted(by_family, key=lambda f: (-len(by_family[f]), f)):
        trials = by_family[family]
        if len(trials) < MIN_IMPORTANCE_TRIALS:
            skipped[family] = f"{len(trials)} complete trial(s), {MIN_IMPORTANCE_TRIALS} needed"
            continue
        common = set.intersection(*(set(t.params) for t in trials))
        params = sorted(common - {space_mod.SCHEDULE_PARAM})
        if len(params) < 2:
            skipped[family] = f"only one searched parameter ({', '.join(params) or 'none'})"
            continue
        try:
            families.append(
                _importance(trials, family, evaluator, data.direction, max_trials, seed, params)
            )
        except TooFewTrialsError as exc:
            skipped[family] = str(exc)
    return ImportanceReport(evaluator, overall, families, skipped, len(complete) - len(tuned))
