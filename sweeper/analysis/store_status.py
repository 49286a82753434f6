"""The state of every study of a store (:func:`status`), from aggregate queries on Optuna's
tables: trials by state, the running trials with their worker and heartbeat, the best value,
the last activity, and the epochs spent against the budget. No trial is loaded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sweeper.analysis.read_store import (
    DIRECTIONS,
    HEARTBEATS,
    STATE,
    STUDIES,
    STUDY_ATTRS,
    SYSTEM_ATTRS,
    TRIALS,
    USER_ATTRS,
    VALUES,
    open_store,
    reading,
)
from sweeper.search.configurations import ConfigState, latest, state_of
from sweeper.search.trial_record import (
    CONFIG_ATTR,
    OUTCOME_ATTR,
    PAUSE_REASON_ATTR,
    PAUSED_ATTR,
    PROMOTED_FROM_ATTR,
    WORKER_ATTR,
    TrialRecord,
)
from sweeper.store.store import GRACE_PERIOD
from sweeper.store.tables import LedgerRow
from sweeper.training.shared_checkpoints import ARTIFACTS_ATTR

if TYPE_CHECKING:
    pass

# the user attributes that say where a configuration stands (sweeper.search.configurations)
_CONFIG_KEYS = (CONFIG_ATTR, PAUSED_ATTR, PAUSE_REASON_ATTR, OUTCOME_ATTR, PROMOTED_FROM_ATTR)


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
    configs: dict[str, int] | None = None  # configurations by ConfigState (chains of trials)
    artifacts: str | None = None  # the shared checkpoint store its workers were given, if any

    @property
    def n_trials(self) -> int:
        return sum(self.counts.values())


def _counts(conn: sa.Connection) -> dict[int, dict[str, int]]:
    """Per study, trials by state; a failed trial queued again counts as ``retried``."""
    raw: dict[int, dict[str, int]] = defaultdict(dict)
    q = sa.select(TRIALS.c.study_id, TRIALS.c.state, sa.func.count()).group_by(
        TRIALS.c.study_id, TRIALS.c.state
    )
    for sid, state, n in conn.execute(q):
        raw[sid][str(state)] = int(n)
    retried: dict[int, set[int]] = defaultdict(set)  # numbers in the retry callback's history
    q = (
        sa.select(TRIALS.c.study_id, SYSTEM_ATTRS.c.value_json)
        .join(TRIALS, TRIALS.c.trial_id == SYSTEM_ATTRS.c.trial_id)
        .where(SYSTEM_ATTRS.c.key == "retry_history")
    )
    for sid, text in conn.execute(q):
        retried[sid].update(int(n) for n in json.loads(text))
    failed: dict[int, set[int]] = defaultdict(set)
    if retried:
        q = sa.select(TRIALS.c.study_id, TRIALS.c.number).where(STATE == "FAIL")
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


def _configs(conn: sa.Connection) -> dict[int, dict[str, int]]:
    """Per study, configurations by state (:mod:`sweeper.search.configurations`), from the few
    attributes that decide it: one query per table, no trial built."""
    from optuna.trial import TrialState

    rows = conn.execute(
        sa.select(TRIALS.c.study_id, TRIALS.c.trial_id, TRIALS.c.number, STATE)
    ).all()
    attrs: dict[int, dict[str, Any]] = defaultdict(dict)
    q = sa.select(USER_ATTRS.c.trial_id, USER_ATTRS.c.key, USER_ATTRS.c.value_json).where(
        USER_ATTRS.c.key.in_(_CONFIG_KEYS)
    )
    for tid, key, raw in conn.execute(q):
        attrs[tid][str(key)] = json.loads(raw)
    q = sa.select(SYSTEM_ATTRS.c.trial_id, SYSTEM_ATTRS.c.value_json).where(
        SYSTEM_ATTRS.c.key == "failed_trial"
    )
    retry_of: dict[int, int] = {}
    for row in conn.execute(q):
        retry_of[int(row[0])] = int(json.loads(row[1]))
    chains: dict[tuple[int, int], list[tuple[int, TrialState, int]]] = defaultdict(list)
    continued: dict[int, set[int]] = defaultdict(set)
    records: dict[int, TrialRecord] = {}
    for sid, tid, number, state in rows:
        record = records[tid] = TrialRecord.from_attrs(attrs.get(tid, {}))
        config = record.configuration
        if config is None:
            config = int(retry_of.get(tid, number))
        chains[(sid, config)].append((int(number), TrialState[str(state)], tid))
        if record.promoted_from is not None:
            continued[sid].add(record.promoted_from)
    out: dict[int, dict[str, int]] = defaultdict(lambda: {str(c): 0 for c in ConfigState})
    for (sid, _), chain in chains.items():
        which = latest((n, st) for n, st, _ in chain)
        number, state, tid = next(c for c in chain if c[0] == which)
        out[sid][str(state_of(state, records[tid], number, continued[sid]))] += 1
    return out


def _running(conn: sa.Connection) -> dict[int, list[RunningTrial]]:
    """Per study, the RUNNING trials with their worker and last heartbeat."""
    now = conn.scalar(sa.select(sa.func.current_timestamp()))  # the clock heartbeats use
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    if now is not None and now.tzinfo is not None:  # PostgreSQL: heartbeats are naive
        now = now.replace(tzinfo=None)
    worker = sa.and_(USER_ATTRS.c.trial_id == TRIALS.c.trial_id, USER_ATTRS.c.key == WORKER_ATTR)
    q = (
        sa.select(
            TRIALS.c.study_id,
            TRIALS.c.number,
            USER_ATTRS.c.value_json,
            HEARTBEATS.c.heartbeat,
            TRIALS.c.datetime_start,
        )
        .select_from(TRIALS)
        .outerjoin(USER_ATTRS, worker)
        .outerjoin(HEARTBEATS, HEARTBEATS.c.trial_id == TRIALS.c.trial_id)
        .where(STATE == "RUNNING")
        .order_by(TRIALS.c.number)
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
    order = VALUES.c.value.asc() if minimize else VALUES.c.value.desc()
    best = conn.execute(
        sa.select(VALUES.c.value, TRIALS.c.number)
        .join(TRIALS, TRIALS.c.trial_id == VALUES.c.trial_id)
        .where(
            TRIALS.c.study_id == sid,
            STATE == "COMPLETE",
            VALUES.c.objective == 0,
            sa.cast(VALUES.c.value_type, sa.String) == "FINITE",
        )
        .order_by(order, TRIALS.c.number)
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


def _study_attr(conn: sa.Connection, key: str, kind: type) -> dict[int, Any]:
    """Per study id, its user attribute ``key`` where that is of type ``kind``."""
    q = sa.select(STUDY_ATTRS.c.study_id, STUDY_ATTRS.c.value_json).where(STUDY_ATTRS.c.key == key)
    out = {}
    for sid, raw in conn.execute(q):
        value = json.loads(raw)
        if isinstance(value, kind) and not isinstance(value, bool):
            out[int(sid)] = value
    return out


def status(url: str | None = None) -> list[StudyStatus]:
    """Every study of the store, from aggregate queries (no trial is loaded)."""
    store = open_store(url)
    with reading(store) as conn:
        names = dict(conn.execute(sa.select(STUDIES.c.study_id, STUDIES.c.study_name)).all())
        q = sa.select(DIRECTIONS.c.study_id, DIRECTIONS.c.direction)
        directions = dict(conn.execute(q.where(DIRECTIONS.c.objective == 0)).all())
        counts = _counts(conn)
        configs = _configs(conn)
        last = sa.select(
            TRIALS.c.study_id,
            sa.func.max(TRIALS.c.datetime_start),
            sa.func.max(TRIALS.c.datetime_complete),
        ).group_by(TRIALS.c.study_id)
        activity: dict[int, datetime | None] = {}
        for sid, started, completed in conn.execute(last):
            activity[sid] = max((d for d in (started, completed) if d), default=None)
        running = _running(conn)
        spent = _spent(conn)
        budgets = _study_attr(conn, "budget_epochs", int)  # of its last run, when it had one
        shared = _study_attr(conn, ARTIFACTS_ATTR, str)
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
                    artifacts=shared.get(sid),
                    configs=configs.get(sid, {str(c): 0 for c in ConfigState}),
                )
            )
        return out
