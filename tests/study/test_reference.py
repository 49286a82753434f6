"""The reference configuration (``[sampler] reference``): cosine from the top of the searched
initial rate, queued once before the first tuned trial and trained its full length."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweeper.errors import ConfigError
from sweeper.search import promotion as promo
from sweeper.search import reference
from sweeper.search.run_options import RunOptions
from sweeper.search.runner import tune
from sweeper.search.trial_record import (
    OUTCOME_ATTR,
    PAUSED_ATTR,
    REFERENCE_ATTR,
    REFERENCE_RATE_ATTR,
)
from sweeper.studyfile.config import parse_study

TEXT = """
[study]
name = "r"
seed = 0

[data]
dataset = "digits"
subset = 400

[train]
model = "mnist-cnn"
batch_size = 64
epochs = 2

[pruner]
type = "asha"
stall_factor = 0

[space]
schedules = ["constant", "cosine"]
initial_lr = { low = 0.02, high = 0.3, log = true }
"""


def spec_of(*overrides: str, text: str = TEXT):  # type: ignore[no-untyped-def]
    return parse_study(text, "r.toml", overrides=list(overrides))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ['sampler.reference="step"'],
            "[sampler] reference: 'step' is not in [space] schedules (constant, cosine); name one "
            'of them, or "none"',
        ),
        (['sampler.reference=""'], "[sampler] reference: must be a schedule family"),
        (
            ['sampler.type="grid"', 'sampler.reference="cosine"', "space.initial_lr=[0.1, 0.3]"],
            '[sampler] reference: a grid tries every point: set it to "none"',
        ),
    ],
)
def test_a_reference_the_space_cannot_hold_is_one_line(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        spec_of(*overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_default_reference_is_cosine_and_skipped_where_the_space_has_none() -> None:
    assert spec_of().sampler.reference == "cosine"
    constant_only = spec_of('space.schedules=["constant"]')  # no error: the default is skipped
    assert reference.reference_params(constant_only.space, "cosine") is None
    assert spec_of('sampler.reference="none"').sampler.reference == "none"


@pytest.mark.parametrize(
    ("overrides", "ranges", "params"),
    [
        ([], None, {"schedule": "cosine", "initial_lr": 0.3}),  # the declared top
        ([], {"sgd": (0.05, 0.2)}, {"schedule": "cosine", "initial_lr": 0.2}),  # range test
        (["space.initial_lr=[0.01, 0.1, 0.05]"], None, {"schedule": "cosine", "initial_lr": 0.1}),
        (["space.initial_lr=0.07"], None, {"schedule": "cosine"}),  # pinned: not a param
        (['space.initial_lr="auto"'], None, None),  # not measured yet: no top to start from
        (
            ['space.optimizer=["adam", "sgd"]'],
            {"adam": (1e-4, 1e-2), "sgd": (0.05, 0.2)},
            {"schedule": "cosine", "optimizer": "adam", "initial_lr": 1e-2},
        ),
    ],
)
def test_the_reference_starts_from_the_top_of_the_searched_rate(
    overrides: list[str], ranges: dict[str, tuple[float, float]] | None, params: object
) -> None:
    found = reference.reference_params(spec_of(*overrides).space, "cosine", ranges)
    assert (found[0] if found else None) == params


def run(tmp_path: Path, n_trials: int, *overrides: str) -> list[optuna.trial.FrozenTrial]:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    tune(
        spec_of(*overrides),
        RunOptions(storage=url, checkpoint_dir=str(tmp_path / "ckpt"), n_trials=n_trials),
    )
    return optuna.load_study(study_name="r", storage=url).get_trials()


def test_the_reference_trains_first_in_full_once_and_competes(tmp_path: Path) -> None:
    trials = run(tmp_path, 3)
    first = trials[0]
    assert first.params == {"schedule": "cosine", "initial_lr": 0.3}
    assert first.user_attrs[REFERENCE_ATTR].startswith("cosine from initial_lr=0.3")
    # the first configuration at a rung is never in its best third: without the reference it
    # pauses after epoch 1; the reference has no rung and trains both epochs at once
    assert first.state == TrialState.COMPLETE and PAUSED_ATTR not in first.user_attrs
    assert sorted(first.intermediate_values) == [0, 1]
    assert any(promo.is_paused(t) for t in trials[1:])  # the rung still decides for the rest
    # a rerun with a larger target queues no second one
    trials = run(tmp_path, 5)
    assert sum(REFERENCE_ATTR in t.user_attrs for t in trials) == 1


def test_without_a_reference_the_first_trial_is_sampled_and_pauses(tmp_path: Path) -> None:
    (first, *_) = run(tmp_path, 2, 'sampler.reference="none"')
    assert REFERENCE_ATTR not in first.user_attrs
    assert first.params != {"schedule": "cosine", "initial_lr": 0.3}
    assert promo.is_paused(first)


def test_a_continued_reference_is_still_the_reference() -> None:
    # a reference paused because the epoch budget ran out continues with no rung either
    parent = optuna.trial.create_trial(
        state=TrialState.PRUNED,
        params={"initial_lr": 0.3},
        distributions={"initial_lr": optuna.distributions.FloatDistribution(0.02, 0.3, log=True)},
        user_attrs={REFERENCE_ATTR: "cosine from ...", PAUSED_ATTR: 1},
        intermediate_values={0: 0.5},
    )
    child = promo.child_of(parent, 1)
    assert child.user_attrs[REFERENCE_ATTR] == "cosine from ..."
    plain = promo.child_of(optuna.trial.create_trial(state=TrialState.PRUNED, value=None), 1)
    assert REFERENCE_ATTR not in plain.user_attrs


# -- a reference whose rate is too high steps down ---------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "ranges", "rates"),
    [
        ([], None, [0.3, 0.1, 0.1 / 3, 0.02]),  # a third each time, then the bottom
        ([], {"sgd": (0.05, 0.2)}, [0.2, 0.2 / 3, 0.05]),  # the range test's range
        (["space.initial_lr=[0.01, 0.1, 0.05]"], None, [0.1, 0.05, 0.01]),  # the next lower
        (["space.initial_lr=0.07"], None, [None]),  # pinned: nothing lower to try
    ],
)
def test_the_reference_steps_down_by_a_third_to_the_bottom(
    overrides: list[str], ranges: dict[str, tuple[float, float]] | None, rates: list[float | None]
) -> None:
    space = spec_of(*overrides).space
    found = reference.reference_params(space, "cosine", ranges)
    assert found is not None
    rate = found[0].get("initial_lr")
    tried = [rate]
    while rate is not None and (lower := reference.next_rate(space, "sgd", rate, ranges)):
        tried.append(lower)
        rate = lower
    assert tried == pytest.approx(rates, rel=1e-3) if rates != [None] else tried == [None]
    assert reference.is_last(space, "sgd", tried[-1], ranges)
    assert all(not reference.is_last(space, "sgd", r, ranges) for r in tried[:-1])


def test_a_failed_reference_queues_the_next_rate_once() -> None:
    space = spec_of().space
    study = optuna.create_study(direction="maximize")
    failed = optuna.trial.create_trial(
        state=TrialState.PRUNED,
        params={"schedule": "cosine", "initial_lr": 0.3},
        distributions={
            "schedule": optuna.distributions.CategoricalDistribution(["constant", "cosine"]),
            "initial_lr": optuna.distributions.FloatDistribution(0.02, 0.3, log=True),
        },
        user_attrs={REFERENCE_ATTR: "cosine from ...", REFERENCE_RATE_ATTR: 0.3},
    )
    study.add_trial(failed)
    assert reference.step_down(study, failed, space, None, room=True, outcome="diverged") == 0.1
    # the same trial again (a retry after a crash between queueing and telling): nothing new
    assert reference.step_down(study, failed, space, None, room=True, outcome="diverged") is None
    # no room left in the study's target: nothing queued
    assert reference.step_down(study, failed, space, None, room=False, outcome="stalled") is None
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1
    assert waiting[0].user_attrs[REFERENCE_RATE_ATTR] == pytest.approx(0.1)
    assert "0.3 diverged" in waiting[0].user_attrs[REFERENCE_ATTR]


# digits with batch 8: over 100 updates per epoch, so the stall check judges after the first epoch
STALLING = [
    "data.subset=1200",
    "train.batch_size=8",
    "train.epochs=3",
    "pruner.stall_factor=1.5",
]


def references(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if REFERENCE_ATTR in t.user_attrs]


@pytest.mark.slow
def test_a_diverging_reference_costs_one_epoch_per_rate_and_one_trains_in_full(
    tmp_path: Path,
) -> None:
    # 10 diverges on any network; 1e-5 learns nothing in an epoch, but as the last rate of the
    # list it is never stopped for stalling: the study trains one reference of cosine in full
    trials = run(tmp_path, 3, *STALLING, "space.initial_lr=[0.00001, 10.0]")
    first, second = references(trials)
    assert first.params["initial_lr"] == 10.0 and second.params["initial_lr"] == 0.00001
    assert first.user_attrs[OUTCOME_ATTR] in ("diverged", "stalled")
    assert len(first.intermediate_values) == 1  # one epoch showed it fails
    assert second.state == TrialState.COMPLETE and sorted(second.intermediate_values) == [0, 1, 2]
    assert second.number == first.number + 1  # queued before any tuned trial was sampled


@pytest.mark.slow
def test_a_reference_steps_down_until_a_rate_trains(tmp_path: Path) -> None:
    trials = run(tmp_path, 6, *STALLING, "space.initial_lr={ low = 0.01, high = 10.0, log = true }")
    refs = references(trials)
    rates = [t.params["initial_lr"] for t in refs]
    assert rates[0] == 10.0 and len(refs) >= 2
    assert rates == pytest.approx([10.0 / 3**k for k in range(len(refs))], rel=1e-3)
    *failed, trained = refs
    for t in failed:  # each rate that failed cost the one epoch that showed it
        assert t.user_attrs[OUTCOME_ATTR] in ("diverged", "stalled")
        assert len(t.intermediate_values) == 1
    assert trained.state == TrialState.COMPLETE and len(trained.intermediate_values) == 3
    assert [t.number for t in refs] == list(range(len(refs)))  # before any tuned trial


@pytest.mark.slow
def test_a_reference_with_no_room_left_is_not_queued_again(tmp_path: Path) -> None:
    trials = run(tmp_path, 1, *STALLING, "space.initial_lr=[0.00001, 10.0]")
    assert len(trials) == 1 and trials[0].state == TrialState.PRUNED
