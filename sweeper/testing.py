"""A synthetic study written straight into a new SQLite store, for benchmarks and tests.

One study of N trials shaped like a real sweeper study of the embedded ``digits`` study file:
baselines first, then every schedule family with its conditional dimensions, complete / pruned /
diverged / failed / running / waiting trials, the per-trial user attributes the tuner writes,
val_accuracy as intermediate values, one ``sweeper_epochs`` row per finished epoch and its
``sweeper_ledger`` row (trials trained one after the other, in number order). Trials go
in through ``optuna.create_trial`` and ``study.add_trials``; epoch rows through a bulk ORM insert.
No training, no Keras: ``scripts/bench_analysis.py`` times the read-only commands on it and the
read-only side's tests read it.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeper.search import space as space_mod
from sweeper.search.trial_record import (
    BASELINE_ATTR,
    BASELINE_VALUES_ATTR,
    OPTIMIZER_ATTR,
    OUTCOME_ATTR,
    REASON_ATTR,
    SCHEDULE_ATTR,
    STEPS_PER_EPOCH_ATTR,
    TRACEBACK_ATTR,
    WORKER_ATTR,
)
from sweeper.store.optuna_ids import trial_id
from sweeper.store.store import Store
from sweeper.store.tables import EpochRow, LedgerRow
from sweeper.studyfile.config import load_study_file
from sweeper.studyfile.study_spec import StudySpec
from sweeper.training.schedules import from_dimensions

STUDY = "synthetic"
EPOCHS = 8
STEPS_PER_EPOCH = 34


def _fast_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """No fsync per commit while building (the store is a throw-away benchmark file)."""

    @sa.event.listens_for(storage.engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous = OFF")
        cur.execute("PRAGMA journal_mode = MEMORY")
        cur.close()

    storage.engine.dispose()


def _sample(
    rng: random.Random, dists: dict[str, BaseDistribution], family: str
) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    params: dict[str, Any] = {space_mod.SCHEDULE_PARAM: family}
    used = {space_mod.SCHEDULE_PARAM: dists[space_mod.SCHEDULE_PARAM]}
    for name in space_mod.dimensions_for(family):
        dist = dists.get(name)
        if dist is None:
            continue
        used[name] = dist
        if isinstance(dist, CategoricalDistribution):
            params[name] = rng.choice(dist.choices)
        elif getattr(dist, "log", False):
            low, high = math.log(dist.low), math.log(dist.high)  # type: ignore[attr-defined]
            params[name] = math.exp(rng.uniform(low, high))
        else:
            params[name] = rng.uniform(dist.low, dist.high)  # type: ignore[attr-defined]
    return params, used


def _widened(dist: BaseDistribution, value: Any) -> BaseDistribution:
    """``dist`` stretched to hold ``value`` (a baseline may lie outside the searched range)."""
    if isinstance(dist, FloatDistribution) and not dist.low <= value <= dist.high:
        return FloatDistribution(min(dist.low, value), max(dist.high, value), log=dist.log)
    return dist


def _final_accuracy(rng: random.Random, mean_log_lr: float, family: str) -> float:
    quality = math.exp(-((mean_log_lr - math.log10(0.12)) ** 2) / (2 * 0.45**2))
    bonus = {"cosine": 0.02, "cosine_restarts": 0.015, "step": 0.01, "exponential": 0.01}
    value = 0.1 + 0.78 * quality + bonus.get(family, 0.0) + rng.gauss(0.0, 0.015)
    return min(max(value, 0.05), 0.995)


def _curve(rng: random.Random, final: float, epochs: int) -> list[float]:
    rate = rng.uniform(0.4, 1.2)
    norm = 1.0 - math.exp(-rate * epochs)
    return [
        min(max(0.1 + (final - 0.1) * (1.0 - math.exp(-rate * (e + 1))) / norm, 0.0), 1.0)
        + rng.gauss(0.0, 0.006)
        for e in range(epochs)
    ]


def build_synthetic_store(
    path: str | Path,
    n_trials: int = 10_000,
    *,
    seed: int = 0,
    study_name: str = STUDY,
    epochs: int = EPOCHS,
    steps_per_epoch: int = STEPS_PER_EPOCH,
) -> str:
    """Write a synthetic sweeper study of ``n_trials`` trials to a new SQLite file; its URL."""
    path = Path(path)
    if path.exists():
        path.unlink()
    url = f"sqlite:///{path}"
    spec = load_study_file(None)
    rng = random.Random(seed)

    store = Store(url)
    storage = store.optuna_storage(heartbeat=False)
    _fast_sqlite(storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    study.set_user_attr("steps_per_epoch", steps_per_epoch)
    study.set_user_attr("epochs", epochs)
    study.set_user_attr("baselines_enqueued", True)

    plans = _plans(spec, rng, n_trials)
    shape = _Shape(len(plans), len(spec.baselines), epochs, steps_per_epoch)
    finals: list[float] = []
    trials: list[FrozenTrial] = []
    curves: list[tuple[list[float], list[float]]] = []  # per trial: val_accuracy, lr per epoch
    for number, plan in enumerate(plans):
        trial, accs, lrs = _synthetic_trial(number, plan, shape, rng, finals)
        trials.append(trial)
        curves.append((accs, lrs))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.add_trials(trials)

    stored = study.get_trials(deepcopy=False)
    for t in stored:
        if t.state == TrialState.RUNNING:
            storage.record_heartbeat(trial_id(t))
    rows = _epoch_rows(stored, curves, rng, study_name, steps_per_epoch)
    with store.session() as s:
        s.execute(sa.insert(EpochRow), rows)
        s.execute(sa.insert(LedgerRow), _ledger_rows(rows))
    store.close()
    return url


Plan = tuple[dict[str, Any], dict[str, BaseDistribution], dict[str, Any]]
START = datetime(2025, 3, 1, 9, 0, 0)  # the first synthetic trial's start


@dataclass(frozen=True)
class _Shape:
    n: int  # trials in all
    baselines: int
    epochs: int
    steps_per_epoch: int


def _plans(spec: StudySpec, rng: random.Random, n_trials: int) -> list[Plan]:
    """(params, distributions, dimensions) per trial: the baselines, then sampled ones."""
    dists = space_mod.search_space(spec.space)
    families = list(spec.space.families())
    plans: list[Plan] = []
    for b in spec.baselines:
        values = space_mod.baseline_values(b.values, spec.space)
        params = space_mod.baseline_params(values, spec.space)
        used = {k: _widened(dists[k], v) for k, v in params.items()}
        marks = {BASELINE_ATTR: b.name, BASELINE_VALUES_ATTR: values}
        plans.append((params, used, {**values, **marks}))
    while len(plans) < n_trials:
        family = rng.choice(families)
        params, used = _sample(rng, dists, family)
        plans.append((params, used, dict(params)))
    return plans[:n_trials]


def _synthetic_trial(
    number: int, plan: Plan, shape: _Shape, rng: random.Random, finals: list[float]
) -> tuple[FrozenTrial, list[float], list[float]]:
    """Trial ``number``: its frozen trial, validation accuracies and rates per epoch trained."""
    params, used, dims = plan
    dims = dict(dims)
    epochs, spe = shape.epochs, shape.steps_per_epoch
    family = str(params[space_mod.SCHEDULE_PARAM])
    baseline = dims.pop(BASELINE_ATTR, None)
    values = dims.pop(BASELINE_VALUES_ATTR, None)
    schedule = from_dimensions(family, dims, steps_per_epoch=spe, epochs=epochs)
    rates = schedule.curve(spe * epochs)
    mean_log_lr = float(sum(math.log10(max(r, 1e-9)) for r in rates[::17]) / len(rates[::17]))
    final = _final_accuracy(rng, mean_log_lr, family)
    accs = _curve(rng, final, epochs)
    lrs = [float(rates[(e + 1) * spe - 1]) for e in range(epochs)]
    attrs: dict[str, Any] = {
        SCHEDULE_ATTR: schedule.to_dict(),
        OPTIMIZER_ATTR: "sgd",
        STEPS_PER_EPOCH_ATTR: spe,
        WORKER_ATTR: f"node{number % 4}:{4100 + number % 4}",
    }
    if baseline is not None:
        attrs[BASELINE_ATTR] = baseline
        attrs[BASELINE_VALUES_ATTR] = values
    state, ran = _fate(number, shape, rng, schedule.initial_lr, accs, finals, attrs)
    accs, lrs = accs[:ran], lrs[:ran]
    if attrs.get(OUTCOME_ATTR) == "diverged" and accs:
        accs[-1] = 0.0975
    if state == TrialState.COMPLETE:
        finals.append(accs[-1])
    t0 = START + timedelta(seconds=number * 0.6)
    seconds = ran * rng.uniform(1.5, 2.5)
    trial = optuna.create_trial(
        state=state,
        value=accs[-1] if state in (TrialState.COMPLETE, TrialState.PRUNED) and accs else None,
        params=params,
        distributions=used,
        user_attrs=attrs,
        intermediate_values=dict(enumerate(accs)),
    )
    trial.datetime_start = None if state == TrialState.WAITING else t0
    trial.datetime_complete = (
        t0 + timedelta(seconds=seconds)
        if state not in (TrialState.RUNNING, TrialState.WAITING)
        else None
    )
    return trial, accs, lrs


def _fate(
    number: int,
    shape: _Shape,
    rng: random.Random,
    initial_lr: float,
    accs: list[float],
    finals: list[float],
    attrs: dict[str, Any],
) -> tuple[TrialState, int]:
    """How trial ``number`` ended and the epochs it trained: the last ones waiting or running,
    high rates diverging, a few failures, the median rule pruning the rest of the weak ones."""
    epochs = shape.epochs
    roll = rng.random()
    if number >= shape.n - 2:
        return TrialState.WAITING, 0
    if number >= shape.n - 5:
        return TrialState.RUNNING, rng.randint(1, epochs - 1)
    if initial_lr > 0.35 and roll < 0.3:
        ran = rng.randint(1, 3)
        attrs[OUTCOME_ATTR] = "diverged"
        attrs[REASON_ATTR] = f"loss became NaN in epoch {ran}"
        return TrialState.PRUNED, ran
    if roll < 0.02:
        attrs[TRACEBACK_ATTR] = "Traceback (most recent call last):\n  ...\nMemoryError\n"
        return TrialState.FAIL, rng.randint(0, epochs - 1)
    if len(finals) > 20 and number > shape.baselines:
        cut = rng.randint(2, epochs - 1)
        median = sorted(finals[-200:])[len(finals[-200:]) // 2]
        if accs[cut - 1] < median * (1 - math.exp(-0.8 * cut)) + 0.05 and roll < 0.6:
            return TrialState.PRUNED, cut
    return TrialState.COMPLETE, epochs


def _epoch_rows(
    stored: list[FrozenTrial],
    curves: list[tuple[list[float], list[float]]],
    rng: random.Random,
    study_name: str,
    steps_per_epoch: int,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for t, (accs, lrs) in zip(stored, curves, strict=True):
        for e, (acc, lr) in enumerate(zip(accs, lrs, strict=True)):
            rows.append(
                {
                    "study_name": study_name,
                    "trial_id": trial_id(t),
                    "trial_number": t.number,
                    "epoch": e,
                    "step": (e + 1) * steps_per_epoch,
                    "lr": lr,
                    "loss": -math.log(max(acc, 1e-3)) * 0.9,
                    "accuracy": min(acc + 0.02, 1.0),
                    "val_loss": -math.log(max(acc, 1e-3)),
                    "val_accuracy": acc,
                    "seconds": rng.uniform(1.5, 2.5),
                    "run_id": None,
                }
            )
    return rows


def _ledger_rows(epoch_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger of ``epoch_rows``: every epoch trained once, trial after trial."""
    keys = ("study_name", "trial_number", "epoch", "val_accuracy", "run_id")
    return [{k: r[k] for k in keys} for r in epoch_rows]
