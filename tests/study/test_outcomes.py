"""Tests for sweeper.search.outcomes.describe: one description of a trial, for the progress display
and (without the baseline's name) for the read side."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeper.analysis import queries as an
from sweeper.search.outcomes import describe

FAMILY = CategoricalDistribution(("constant", "step"))


def trial(params: dict[str, Any] | None = None, **attrs: Any) -> FrozenTrial:
    params = {"schedule": "step"} if params is None else params
    return optuna.create_trial(
        state=TrialState.COMPLETE,
        value=0.5,
        params=params,
        distributions={"schedule": FAMILY} if params else {},
        user_attrs=attrs,
    )


STEP = {
    "family": "step",
    "initial_lr": 0.1,
    "decay_rate": 0.5,
    "drop_every": 2.0,
    "steps_per_epoch": 10,
}
TEXT = "step(initial_lr=0.1, decay_rate=0.5, drop_every=2, steps_per_epoch=10)"


def test_a_trial_in_one_line() -> None:
    t = trial(schedule=STEP, optimizer="sgd")
    assert describe(t) == an.describe(t) == TEXT
    adam = trial(schedule=STEP, optimizer="adam")
    assert describe(adam) == an.describe(adam) == TEXT + " + adam"


def test_a_baselines_name_goes_first_in_the_progress_display_only() -> None:
    t = trial(schedule=STEP, optimizer="adam", baseline="tutorial")
    assert describe(t) == f"[baseline: tutorial] {TEXT} + adam"
    assert describe(t, baseline=False) == an.describe(t) == f"{TEXT} + adam"


def test_a_trial_without_a_stored_schedule_is_its_family() -> None:
    t = trial(baseline="b")
    assert describe(t) == "[baseline: b] step" and an.describe(t) == "step"
    unknown = trial(params={})
    assert describe(unknown) == "" and an.describe(unknown) == "?"


def test_an_unreadable_schedule_is_its_family() -> None:
    t = trial(schedule={"family": "step", "initial_lr": 0.1, "bogus": 1})
    assert describe(t) == an.describe(t) == "step"
