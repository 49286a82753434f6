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

from sweeper.study import promotion as promo

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
    return frozen_trial(
        number, values, **{promo.PAUSED_ATTR: at, promo.PAUSE_REASON_ATTR: "rung", **attrs}
    )


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
