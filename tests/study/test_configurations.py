"""Configurations from trial segments (sweeper.search.configurations): chains, states, values."""

from __future__ import annotations

from conftest import frozen_trial, paused_trial
from optuna.trial import TrialState

from sweeper.search.configurations import (
    ConfigState,
    configurations,
    count_configurations,
    values_at,
)
from sweeper.search.trial_record import (
    CONFIG_ATTR,
    OUTCOME_ATTR,
    PAUSE_REASON_ATTR,
    PROMOTED_FROM_ATTR,
)


def test_a_configuration_continued_twice_is_one_configuration_with_each_epoch_once() -> None:
    first = paused_trial(0, {0: 0.5}, 1, **{CONFIG_ATTR: 0})
    second = paused_trial(
        3,
        {0: 0.5, 1: 0.6, 2: 0.7},
        3,
        **{CONFIG_ATTR: 0, PROMOTED_FROM_ATTR: 0},
    )
    third = frozen_trial(
        7,
        {0: 0.5, 1: 0.6, 2: 0.7, 3: 0.8},
        state=TrialState.COMPLETE,
        **{CONFIG_ATTR: 0, PROMOTED_FROM_ATTR: 3},
    )
    other = paused_trial(1, {0: 0.4}, 1)
    configs = configurations([third, other, first, second])
    assert [c.number for c in configs] == [0, 1]
    done, waiting = configs
    assert done.state is ConfigState.COMPLETE and done.chain == "0 -> 3 -> 7"
    assert dict(done.values) == {1: 0.5, 2: 0.6, 3: 0.7, 4: 0.8}
    assert done.epochs == 4 and done.value == 0.8
    assert waiting.state is ConfigState.PAUSED and waiting.state_text() == "paused at epoch 1"
    assert values_at(configs, 1) == {0: 0.5, 1: 0.4}
    assert values_at(configs, 3) == {0: 0.7}
    counts = count_configurations(configs)
    assert counts["complete"] == 1 and counts["paused"] == 1 and sum(counts.values()) == 2


def test_states_stopped_budget_failed_and_retried() -> None:
    trials = [
        frozen_trial(0, {0: 0.1}, **{OUTCOME_ATTR: "stalled"}),
        frozen_trial(1, {0: 0.2, 1: 0.1}, **{OUTCOME_ATTR: "diverged"}),
        frozen_trial(2, {0: 0.3}),  # pruned by Optuna's pruner: no marker
        paused_trial(3, {0: 0.9}, 1, **{PAUSE_REASON_ATTR: "budget"}),
        frozen_trial(4, {0: 0.5}, state=TrialState.FAIL),
        # trial 5 retries trial 4 (its process died) and completes
        frozen_trial(5, {0: 0.5, 1: 0.7}, state=TrialState.COMPLETE, **{CONFIG_ATTR: 4}),
        frozen_trial(6, {0: 0.2}, state=TrialState.FAIL),
        frozen_trial(8, {0: 0.2}, baseline="constant 0.1", state=TrialState.COMPLETE),
    ]
    by = {c.number: c for c in configurations(trials)}
    assert {n: str(c.state) for n, c in by.items()} == {
        0: "stalled",
        1: "diverged",
        2: "pruned",
        3: "budget",
        4: "complete",
        6: "failed",
        8: "complete",
    }
    assert by[4].chain == "4 -> 5" and by[4].value == 0.7
    assert by[3].state_text() == "paused at epoch 1 (epoch budget spent)"
    assert by[8].baseline == "constant 0.1" and not by[8].tuned
    assert 8 not in values_at(by.values(), 1)  # baselines are not ranked with the search
