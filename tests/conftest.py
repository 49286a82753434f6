"""Shared by the tests in every folder: the helper modules at the top of tests/ importable,
builders of fake trials, and a process cleaned of what a test run may leave in it
(:func:`clean_process`).

``process_helpers`` (sweeper in real processes) and ``tiny_model`` (user models loaded by
import path) live in tests/; tests in tests/<package>/ import them by name, so tests/ goes on
``sys.path`` here. Tests that start sweeper processes put tests/ on the child's PYTHONPATH
themselves (``process_helpers.sweeper_env``).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeper.search import promotion as promo
from sweeper.search.trial_record import (
    CONFIG_ATTR,
    OUTCOME_ATTR,
    PAUSE_REASON_ATTR,
    PAUSED_ATTR,
    PROMOTED_AT_ATTR,
    PROMOTED_FROM_ATTR,
    REFERENCE_ATTR,
)

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

LR = {"initial_lr": FloatDistribution(1e-4, 1.0, log=True)}


def frozen_trial(
    number: int,
    values: dict[int, float],
    *,
    state: TrialState = TrialState.PRUNED,
    **attrs: Any,
) -> FrozenTrial:
    """Trial ``number`` with ``values`` as its intermediate values (epoch -> accuracy), one
    parameter (``initial_lr``) and ``attrs`` as its user attributes; PRUNED unless ``state``."""
    t = optuna.trial.create_trial(
        state=state,
        value=values[max(values)] if state == TrialState.COMPLETE else None,
        params={"initial_lr": 0.01 * (number + 1)},
        distributions=LR,
        intermediate_values=values,
        user_attrs=attrs,
    )
    t.number = number
    return t


def paused_trial(number: int, values: dict[int, float], at: int, **attrs: Any) -> FrozenTrial:
    """A trial paused at a rung after epoch ``at`` (as the trial loop marks one)."""
    return frozen_trial(number, values, **{PAUSED_ATTR: at, PAUSE_REASON_ATTR: "rung", **attrs})


def asha_trials(
    n: int = 16, *, epochs: int = 8, rungs: tuple[int, ...] = (1, 4), factor: int = 4, seed: int = 0
) -> list[FrozenTrial]:
    """A study as the trial loop leaves one under ASHA, numbered: two baselines trained their
    full length, ``n`` tuned configurations (``constant`` or ``step``) paused at the first rung,
    the best ``1/factor`` of each rung continued (``promotion.child_of``'s attributes) to the next
    rung or, after the last one, to ``epochs`` and complete. The accuracy depends on
    ``initial_lr`` strongly, on ``decay_rate`` a little, not on ``drop_every``."""
    import math
    import random

    from optuna.distributions import CategoricalDistribution

    rng = random.Random(seed)
    dists = {
        "schedule": CategoricalDistribution(["constant", "step"]),
        "initial_lr": FloatDistribution(1e-3, 0.5, log=True),
        "decay_rate": FloatDistribution(0.1, 0.9),
        "drop_every": FloatDistribution(1.0, 4.0),
    }
    trials: list[FrozenTrial] = []

    def add(params: dict[str, Any], upto: int, state: TrialState, **attrs: Any) -> FrozenTrial:
        lr, rate = params["initial_lr"], params.get("decay_rate", 0.0)
        final = 0.95 - (math.log10(lr) + 1) ** 2 / 4 + 0.05 * rate
        curve = {e: final * (1 - math.exp(-0.7 * (e + 1))) for e in range(upto)}
        schedule = {**params, "family": params["schedule"], "steps_per_epoch": 10}
        del schedule["schedule"]
        t = optuna.trial.create_trial(
            state=state,
            value=curve[upto - 1] if state == TrialState.COMPLETE else None,
            params=params,
            distributions={k: dists[k] for k in params},
            user_attrs={"schedule": schedule, "optimizer": "sgd", **attrs},
            intermediate_values=curve,
        )
        t.number = len(trials)
        trials.append(t)
        return t

    for name, lr in (("constant 0.001", 0.001), ("constant 0.01", 0.01)):
        add({"schedule": "constant", "initial_lr": lr}, epochs, TrialState.COMPLETE, baseline=name)
    level = []
    for i in range(n):
        params: dict[str, Any] = {
            "schedule": ["step", "constant"][i % 2],
            "initial_lr": math.exp(rng.uniform(math.log(1e-3), math.log(0.5))),
        }
        if params["schedule"] == "step":
            params.update(decay_rate=rng.uniform(0.1, 0.9), drop_every=rng.uniform(1.0, 4.0))
        level.append(add(params, rungs[0], TrialState.PRUNED))
    for at, upto in zip(rungs, (*rungs[1:], epochs), strict=True):
        for t in level:
            t.set_user_attr(PAUSED_ATTR, at)
            t.set_user_attr(PAUSE_REASON_ATTR, "rung")
            t.set_user_attr(OUTCOME_ATTR, "paused")
        best = sorted(level, key=lambda t: -t.intermediate_values[at - 1])[: len(level) // factor]
        done = TrialState.COMPLETE if upto == epochs else TrialState.PRUNED
        level = [
            add(p.params, upto, done, **promo.child_of(p, at).user_attrs)
            for p in sorted(best, key=lambda t: t.number)
        ]
    return trials


def write_store(path: Path, trials: list[FrozenTrial], name: str, epochs: int = 8) -> str:
    """A new SQLite store at ``path`` holding study ``name`` of ``trials`` (numbered in order);
    its URL."""
    import warnings

    from sweeper.store.store import Store

    url = f"sqlite:///{path}"
    storage = Store(url).optuna_storage(heartbeat=False)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    study.set_user_attr("steps_per_epoch", 10)
    study.set_user_attr("epochs", epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.add_trials(trials)
    storage.engine.dispose()
    return url


@pytest.fixture
def frozen() -> Callable[..., FrozenTrial]:
    """The builder of a finished fake trial: :func:`frozen_trial`."""
    return frozen_trial


@pytest.fixture
def paused() -> Callable[..., FrozenTrial]:
    """The builder of a fake trial paused at a rung: :func:`paused_trial`."""
    return paused_trial


@pytest.fixture
def clean_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No store or trusted hash from the environment; the SIGINT and SIGTERM handlers as they
    were once the test is done (an in-process run installs its own)."""
    monkeypatch.delenv("SWEEPER_STORAGE", raising=False)
    monkeypatch.delenv("SWEEPER_TRUSTED_HASH", raising=False)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def ledger_study() -> tuple[list[FrozenTrial], list[tuple[int, int, float | None]]]:
    """A small ASHA study as two workers leave it, and its ledger in training order (trial
    number, 0-based epoch, val_accuracy): a baseline (0) trained 3 epochs; the reference
    configuration (1) paused at epoch 1 and continued to completion by trial 5; tuned
    configurations paused (2, 4) or stopped without a finite value (3)."""
    reference = {REFERENCE_ATTR: "cosine(initial_lr=0.1)"}
    trials = [
        frozen_trial(0, {0: 0.80, 1: 0.85, 2: 0.88}, state=TrialState.COMPLETE, baseline="b"),
        paused_trial(1, {0: 0.70}, 1, **reference),
        paused_trial(2, {0: 0.60}, 1),
        frozen_trial(3, {0: float("nan")}, outcome="stalled"),
        paused_trial(4, {0: 0.75}, 1),
        frozen_trial(
            5,
            {0: 0.70, 1: 0.90, 2: 0.93},
            state=TrialState.COMPLETE,
            **{CONFIG_ATTR: 1, PROMOTED_FROM_ATTR: 1, PROMOTED_AT_ATTR: 1},
            **reference,
        ),
    ]
    ledger = [
        (0, 0, 0.80),
        (1, 0, 0.70),
        (0, 1, 0.85),
        (2, 0, 0.60),
        (0, 2, 0.88),
        (3, 0, None),
        (4, 0, 0.75),
        (5, 1, 0.90),
        (5, 2, 0.93),
    ]
    return trials, ledger


def ledger_store(
    path: Path,
    studies: dict[str, tuple[list[FrozenTrial], list[tuple[int, int, float | None]]]],
) -> str:
    """A real store at ``path`` (Optuna's tables and sweeper's, as ``Store`` creates them)
    holding each study's trials and its ledger rows (:func:`ledger_study`'s form); its URL."""
    import sqlalchemy as sa

    from sweeper.store.store import Store
    from sweeper.store.tables import LedgerRow

    url = f"sqlite:///{path}"
    store = Store(url)
    try:
        storage = store.optuna_storage(heartbeat=False)
        for name, (trials, ledger) in studies.items():
            study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
            study.add_trials(trials)
            rows = [
                {"study_name": name, "trial_number": n, "epoch": e, "val_accuracy": v}
                for n, e, v in ledger
            ]
            if rows:
                with store.session() as s:
                    s.execute(sa.insert(LedgerRow), rows)
    finally:
        store.close()
    return url
