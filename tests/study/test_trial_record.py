"""Tests for sweeper.search.trial_record: every trial attribute's key declared once, and
:class:`TrialRecord` reading them typed from real Optuna trials (in memory and in a SQLite file);
and no other module of the package writing or reading a trial attribute by a string key."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweeper.search import trial_record
from sweeper.search.trial_record import (
    BASELINE_ATTR,
    BASELINE_VALUES_ATTR,
    CONFIG_ATTR,
    ERROR_ATTR,
    OPTIMIZER_ATTR,
    OUTCOME_ATTR,
    PAUSE_REASON_ATTR,
    PAUSED_ATTR,
    PROMOTED_AT_ATTR,
    PROMOTED_FROM_ATTR,
    REASON_ATTR,
    REFERENCE_ATTR,
    REFERENCE_RATE_ATTR,
    REQUEUED_ATTR,
    RESTARTED_ATTR,
    RESUMED_ATTR,
    SCHEDULE_ATTR,
    STEPS_PER_EPOCH_ATTR,
    TRACEBACK_ATTR,
    WORKER_ATTR,
    WORKER_SCOPE_ATTR,
    WORKER_SINCE_ATTR,
    TrialRecord,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sweeper"
KEYS = {name: value for name, value in vars(trial_record).items() if name.endswith("_ATTR")}

# every attribute as the modules that write it store it: field -> (key, value)
EVERY = {
    "configuration": (CONFIG_ATTR, 3),
    "promoted_from": (PROMOTED_FROM_ATTR, 3),
    "promoted_at": (PROMOTED_AT_ATTR, 2),
    "paused_at": (PAUSED_ATTR, 4),
    "pause_reason": (PAUSE_REASON_ATTR, "budget"),
    "outcome": (OUTCOME_ATTR, "paused"),
    "reason": (REASON_ATTR, "epoch budget spent"),
    "error": (ERROR_ATTR, "ValueError: bad"),
    "traceback": (TRACEBACK_ATTR, "Traceback ...\nValueError: bad\n"),
    "resumed_from": (RESUMED_ATTR, 2),
    "restarted": (RESTARTED_ATTR, "checkpoint of configuration 3 not found here"),
    "schedule": (SCHEDULE_ATTR, {"family": "cosine", "initial_lr": 0.1, "steps_per_epoch": 34}),
    "optimizer": (OPTIMIZER_ATTR, "adam"),
    "steps_per_epoch": (STEPS_PER_EPOCH_ATTR, 34),
    "baseline": (BASELINE_ATTR, "tutorial"),
    "baseline_values": (BASELINE_VALUES_ATTR, {"initial_lr": 0.05}),
    "reference": (REFERENCE_ATTR, "cosine from initial_lr=0.3"),
    "reference_rate": (REFERENCE_RATE_ATTR, 0.3),
    "worker": (WORKER_ATTR, "node-1:4242"),
    "worker_scope": (WORKER_SCOPE_ATTR, "boot=abc,pidns=1"),
    "worker_since": (WORKER_SINCE_ATTR, "2024-05-01T10:00:00"),
    "requeued": (REQUEUED_ATTR, "was interrupted"),
}
# the fields that are not str
TYPES = {
    "configuration": int,
    "promoted_from": int,
    "promoted_at": int,
    "paused_at": int,
    "resumed_from": int,
    "steps_per_epoch": int,
    "reference_rate": float,
    "schedule": dict,
    "baseline_values": dict,
}


def _stored(storage: str | None) -> optuna.trial.FrozenTrial:
    """A trial of a real study carrying every attribute, read back from its storage."""
    study = optuna.create_study(study_name="record", storage=storage, direction="maximize")
    trial = study.ask()
    for key, value in EVERY.values():
        trial.set_user_attr(key, value)
    study.tell(trial, state=TrialState.PRUNED)
    if storage is not None:  # a fresh connection: the values as the store holds them
        study = optuna.load_study(study_name="record", storage=storage)
    return study.get_trials()[0]


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_every_field_reads_its_attribute_with_its_type(tmp_path: Path, where: str) -> None:
    storage = None if where == "memory" else f"sqlite:///{tmp_path / 'record.db'}"
    record = TrialRecord.of(_stored(storage))
    fields = {f.name for f in dataclasses.fields(TrialRecord)}
    assert fields == set(EVERY)  # every field has its attribute, every attribute its field
    for name, (_, stored) in EVERY.items():
        value = getattr(record, name)
        assert value == stored, name
        assert isinstance(value, TYPES.get(name, str)), name


def test_an_unset_attribute_reads_as_none(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'bare.db'}")
    study.enqueue_trial({}, user_attrs={BASELINE_ATTR: "b"})
    trial = study.ask()
    study.tell(trial, 0.5)
    record = TrialRecord.of(study.get_trials()[0])
    assert record.baseline == "b"
    unset = {f.name: getattr(record, f.name) for f in dataclasses.fields(TrialRecord)}
    del unset["baseline"]
    assert unset == dict.fromkeys(unset)
    assert TrialRecord.from_attrs({}) == TrialRecord.of(optuna.create_trial(value=0.1))


def test_numbers_read_as_the_readers_read_them() -> None:
    """int() as config_of and the rest did; a reference's rate that is no number (pinned: None)
    reads as None."""
    record = TrialRecord.from_attrs(
        {CONFIG_ATTR: 4.0, PAUSED_ATTR: "2", REFERENCE_RATE_ATTR: None, RESUMED_ATTR: 0}
    )
    assert (record.configuration, record.paused_at, record.resumed_from) == (4, 2, 0)
    assert record.reference_rate is None
    assert TrialRecord.from_attrs({REFERENCE_RATE_ATTR: "0.1"}).reference_rate is None
    assert TrialRecord.from_attrs({REFERENCE_RATE_ATTR: 1}).reference_rate == 1.0
    with pytest.raises(ValueError):
        TrialRecord.from_attrs({CONFIG_ATTR: "three"})


def test_from_attrs_reads_the_rows_the_status_reads_by_sql(tmp_path: Path) -> None:
    """The same record from the trial and from its user-attribute rows, each value JSON-decoded
    (analysis/store_status.py)."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'rows.db'}"
    trial = _stored(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT key, value_json FROM trial_user_attributes"))
            attrs = {str(key): json.loads(raw) for key, raw in rows}
    finally:
        engine.dispose()
    assert TrialRecord.from_attrs(attrs) == TrialRecord.of(trial)


def test_every_key_is_declared_once() -> None:
    assert len(KEYS) == len(EVERY)
    assert len(set(KEYS.values())) == len(KEYS)  # no two constants name one key


# -- no string key outside trial_record.py --------------------------------------------------------
# A *study's* attributes are declared beside the code that writes them, by string key; a few share
# a name with a trial's (steps_per_epoch). Each (module, key) below writes or reads the study's.
STUDY_LEVEL = {
    ("search/runner.py", "steps_per_epoch"),
    ("search/runner.py", "epochs"),
    ("search/runner.py", "n_trials"),
    ("search/runner.py", "budget_epochs"),
    ("search/runner.py", "initial_lr_ranges"),
    ("search/worker.py", "steps_per_epoch"),
    ("analysis/study_data.py", "steps_per_epoch"),
    ("testing.py", "steps_per_epoch"),
    ("testing.py", "epochs"),
    ("testing.py", "baselines_enqueued"),
}
TRIAL_KEYS = set(KEYS.values())


def _key(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_user_attrs(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "user_attrs"


def _written(node: ast.AST) -> list[str]:
    """The string keys a node writes as attributes: ``set_user_attr("k", …)``,
    ``set_trial_user_attr(id, "k", …)``, ``user_attrs={"k": …}``."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return []
    at = {"set_user_attr": 0, "set_trial_user_attr": 1}.get(node.func.attr)
    keys = [_key(node.args[at])] if at is not None and len(node.args) > at else []
    for kw in node.keywords:
        if kw.arg == "user_attrs" and isinstance(kw.value, ast.Dict):
            keys += [_key(k) for k in kw.value.keys]
    return [k for k in keys if k is not None]


def _read(node: ast.AST) -> str | None:
    """The string key a node reads from ``user_attrs``: ``["k"]``, ``.get("k")``, ``"k" in``."""
    if isinstance(node, ast.Subscript) and _is_user_attrs(node.value):
        return _key(node.slice)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and _is_user_attrs(node.func.value)
        and node.args
    ):
        return _key(node.args[0])
    if isinstance(node, ast.Compare) and any(_is_user_attrs(c) for c in node.comparators):
        return _key(node.left)
    return None


def string_keys(source: str) -> list[tuple[int, str, str]]:
    """(line, what, key) of every attribute written by a string key and of every trial key
    (declared in trial_record) read by one."""
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        found += [(line, "writes", key) for key in _written(node)]
        if (key := _read(node)) in TRIAL_KEYS:
            found.append((line, "reads", str(key)))
    return sorted(found)


def test_no_module_writes_or_reads_a_trial_attribute_by_a_string_key() -> None:
    offences = []
    study_level = set()
    for file in sorted(PACKAGE.rglob("*.py")):
        module = file.relative_to(PACKAGE).as_posix()
        if module == "search/trial_record.py":
            continue
        for line, what, key in string_keys(file.read_text()):
            if (module, key) in STUDY_LEVEL:
                study_level.add((module, key))
            else:
                offences.append(f"sweeper/{module}:{line} {what} {key!r}")
    assert offences == []
    assert study_level == STUDY_LEVEL  # the allow-list names only what is there


def test_the_string_key_check_can_fail() -> None:
    source = """
trial.set_user_attr("config", 1)
storage.set_trial_user_attr(trial_id, "requeued", "why")
study.enqueue_trial({}, user_attrs={"baseline": "b"})
a = t.user_attrs.get("outcome")
b = t.user_attrs["schedule"]
c = "error" in t.user_attrs
d = t.user_attrs.get(OUTCOME_ATTR)
e = study.user_attrs.get("n_trials")
"""
    assert string_keys(source) == [
        (2, "writes", "config"),
        (3, "writes", "requeued"),
        (4, "writes", "baseline"),
        (5, "reads", "outcome"),
        (6, "reads", "schedule"),
        (7, "reads", "error"),
    ]
