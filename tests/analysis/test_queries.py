"""Tests for sweeper.analysis.queries: reading a store without writing, status, best trials, importance."""

from __future__ import annotations

import math
import random
import sqlite3
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import asha_trials
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeper.analysis import queries as an
from sweeper.analysis import store_status, study_data
from sweeper.errors import (
    StorageError,
    StoreNotFoundError,
    StudyNotFoundError,
    SweeperError,
    TooFewTrialsError,
)
from sweeper.search.configurations import Configuration, configurations
from sweeper.store.store import Store

optuna.logging.set_verbosity(optuna.logging.WARNING)

FAMILY = CategoricalDistribution(["constant", "step", "cosine"])
LR = FloatDistribution(1e-3, 0.5, log=True)
RATE = FloatDistribution(0.1, 0.9)
EVERY = FloatDistribution(1.0, 4.0)


def trial(
    family: str,
    value: float | None,
    *,
    state: TrialState = TrialState.COMPLETE,
    lr: float = 0.1,
    rate: float = 0.5,
    every: float = 2.0,
    baseline: str | None = None,
    attrs: dict[str, Any] | None = None,
    system_attrs: dict[str, Any] | None = None,
    intermediate: dict[int, float] | None = None,
) -> FrozenTrial:
    params: dict[str, Any] = {"schedule": family, "initial_lr": lr}
    dists: dict[str, Any] = {"schedule": FAMILY, "initial_lr": LR}
    schedule: dict[str, Any] = {"family": family, "initial_lr": lr}
    if family == "step":
        params.update(decay_rate=rate, drop_every=every)
        dists.update(decay_rate=RATE, drop_every=EVERY)
        schedule.update(decay_rate=rate, drop_every=every, steps_per_epoch=10)
    user = {"schedule": schedule, "optimizer": "sgd", "steps_per_epoch": 10, **(attrs or {})}
    if baseline:
        user["baseline"] = baseline
    return optuna.create_trial(
        state=state,
        value=value,
        params=params,
        distributions=dists,
        user_attrs=user,
        system_attrs=system_attrs or {},
        intermediate_values=intermediate or ({0: value / 2, 1: value} if value else {}),
    )


def store_with(path: Path, trials: list[FrozenTrial], name: str = "s", **kw: Any) -> str:
    url = f"sqlite:///{path}"
    storage = Store(url).optuna_storage(heartbeat=False)
    kw.setdefault("direction", "maximize")
    study = optuna.create_study(storage=storage, study_name=name, **kw)
    study.set_user_attr("steps_per_epoch", 10)
    study.set_user_attr("epochs", 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.add_trials(trials)
    storage.engine.dispose()
    return url


def numbered(trials: list[FrozenTrial], direction: str = "maximize") -> list[FrozenTrial]:
    """The trials as an in-memory study holds them: numbered from 0, with trial ids."""
    study = optuna.create_study(direction=direction)
    study.add_trials(trials)
    return study.trials


def data_of(trials: list[FrozenTrial], direction: str = "maximize") -> study_data.StudyData:
    attrs = {"steps_per_epoch": 10, "epochs": 2}
    return study_data.StudyData("s", "memory", direction, attrs, numbered(trials, direction))


# -- opening a store ------------------------------------------------------------------------------
def test_missing_store_is_an_error_and_no_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    for call in (
        lambda: store_status.status(f"sqlite:///{path}"),
        lambda: an.load(f"sqlite:///{path}", "x"),
    ):
        with pytest.raises(StoreNotFoundError, match="does not exist"):
            call()
    assert not path.exists()


def test_a_file_without_optuna_tables_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StorageError, match="not a sweeper store"):
        store_status.status(f"sqlite:///{path}")


def test_unknown_study_lists_the_studies(tmp_path: Path) -> None:
    url = store_with(tmp_path / "s.db", [trial("constant", 0.5)], name="alpha")
    with pytest.raises(StudyNotFoundError, match=r"no study 'beta'.*its studies: alpha"):
        an.load(url, "beta")


def test_reading_does_not_write(tmp_path: Path) -> None:
    url = store_with(tmp_path / "s.db", [trial("constant", 0.5)])  # Optuna's tables only
    before = (tmp_path / "s.db").read_bytes()
    store_status.status(url)
    an.load(url, "s")
    assert an.read_epochs(url, "s") == []
    assert (tmp_path / "s.db").read_bytes() == before


# -- bulk reading matches Optuna's storage -------------------------------------------------------
def test_read_trials_equal_optunas_own(tmp_path: Path) -> None:
    rng = random.Random(1)
    trials = [
        trial(rng.choice(["constant", "step", "cosine"]), rng.random(), lr=rng.uniform(0.01, 0.4))
        for _ in range(30)
    ]
    trials.append(trial("step", None, state=TrialState.FAIL, attrs={"traceback": "boom"}))
    trials.append(
        trial("cosine", None, state=TrialState.RUNNING, intermediate={0: math.inf, 1: -math.inf})
    )
    trials.append(trial("constant", 0.3, state=TrialState.PRUNED, intermediate={0: math.nan}))
    trials.append(
        optuna.create_trial(
            value=0.2,
            params={"n": 3, "flag": True},
            distributions={
                "n": IntDistribution(1, 8, log=True),
                "flag": CategoricalDistribution([False, True]),
            },
        )
    )
    url = store_with(tmp_path / "s.db", trials)
    expected = optuna.load_study(
        study_name="s", storage=Store(url).optuna_storage(heartbeat=False)
    ).get_trials(deepcopy=False)
    data = an.load(url, "s")
    assert len(data.trials) == len(expected)
    for got, want in zip(data.trials, expected, strict=True):
        assert got.number == want.number and got.state == want.state
        assert got.params == want.params and got.distributions == want.distributions
        assert got.user_attrs == want.user_attrs and got.system_attrs == want.system_attrs
        assert got.values == want.values
        assert got.datetime_start == want.datetime_start
        assert got.datetime_complete == want.datetime_complete
        assert str(got.intermediate_values) == str(want.intermediate_values)  # nan != nan
    assert data.steps_per_epoch == 10 and data.epochs == 2 and data.maximize


# -- status ---------------------------------------------------------------------------------------
def test_status_counts_best_and_running_workers(tmp_path: Path) -> None:
    trials = [
        trial("constant", 0.5),
        trial("step", 0.9),
        trial("cosine", 0.7, state=TrialState.PRUNED),
        trial("step", None, state=TrialState.FAIL),  # number 3, retried below
        trial("step", None, state=TrialState.FAIL),
        trial("step", 0.6, system_attrs={"retry_history": [3]}),
        trial("cosine", None, state=TrialState.RUNNING, attrs={"worker": "hostA:12"}),
        trial("cosine", None, state=TrialState.WAITING),
    ]
    url = store_with(tmp_path / "s.db", trials, name="one")
    other = [trial("constant", 0.3), trial("constant", 0.1)]
    storage = Store(url).optuna_storage(heartbeat=False)
    low = optuna.create_study(storage=storage, study_name="two", direction="minimize")
    low.add_trials(other)
    running = optuna.load_study(study_name="one", storage=storage).get_trials(
        states=(TrialState.RUNNING,)
    )
    storage.record_heartbeat(running[0]._trial_id)
    storage.engine.dispose()

    one, two = store_status.status(url)
    assert one.name == "one" and one.direction == "maximize"
    assert one.counts == {
        "complete": 3,
        "pruned": 1,
        "failed": 1,
        "running": 1,
        "waiting": 1,
        "retried": 1,
    }
    assert one.n_trials == len(trials)
    assert (one.best_value, one.best_number) == (0.9, 1)
    assert one.last_activity is not None
    assert abs(one.last_activity - datetime.now()) < timedelta(minutes=5)
    (r,) = one.running
    assert (r.number, r.worker, r.stale) == (6, "hostA:12", False)
    assert r.heartbeat is not None
    assert two.direction == "minimize" and (two.best_value, two.best_number) == (0.1, 1)


def test_status_of_an_empty_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    Store(url).optuna_storage(heartbeat=False).engine.dispose()
    assert store_status.status(url) == []


# -- trials in words, best trials -----------------------------------------------------------------
def test_trial_descriptions() -> None:
    t = trial("step", 0.8, lr=0.2, rate=0.25, every=3.0, baseline="tutorial")
    assert an.family_of(t) == "step" and an.baseline_of(t) == "tutorial"
    described = "step(initial_lr=0.2, decay_rate=0.25, drop_every=3, steps_per_epoch=10)"
    assert an.describe(t) == described
    # a store written before the parameters took the study file's names reads the same
    schedule = dict(t.user_attrs["schedule"])
    schedule["drop"], schedule["epochs_drop"] = (
        schedule.pop("decay_rate"),
        schedule.pop("drop_every"),
    )
    old = trial("step", 0.8, lr=0.2, rate=0.25, every=3.0, attrs={"schedule": schedule})
    assert an.describe(old) == described
    diverged = trial("constant", 0.1, state=TrialState.PRUNED, attrs={"outcome": "diverged"})
    assert an.outcome_of(diverged) == "diverged"
    assert an.outcome_of(trial("step", None, state=TrialState.FAIL)) == "failed"
    adam = trial("constant", 0.5, attrs={"optimizer": "adam"})
    assert an.describe(adam).endswith(" + adam")


def test_best_trials_and_baseline_gain() -> None:
    data = data_of(
        [
            trial("constant", 0.60, baseline="b1"),
            trial("step", 0.70, baseline="b2"),
            trial("cosine", 0.20, state=TrialState.PRUNED, baseline="b3"),
            trial("step", 0.90),
            trial("cosine", 0.80),
            trial("constant", 0.50),
        ]
    )
    best = an.best_trials(data, top=3)
    assert [t.number for t in best.top] == [3, 4, 1]
    assert [t.number for t in best.baselines] == [1, 0, 2]  # complete by rank, then the others
    assert best.best_tuned is not None and best.best_tuned.number == 3
    assert best.best_baseline is not None and best.best_baseline.number == 1
    assert best.gain == pytest.approx(0.2)


def test_best_trials_when_minimizing() -> None:
    data = data_of([trial("constant", 0.6), trial("step", 0.2), trial("cosine", 0.4)], "minimize")
    assert [t.number for t in an.best_trials(data, 2).top] == [1, 2]


def test_counts_add_diverged() -> None:
    data = data_of(
        [
            trial("constant", 0.6),
            trial("constant", 0.1, state=TrialState.PRUNED, attrs={"outcome": "diverged"}),
            trial("constant", 0.2, state=TrialState.PRUNED),
        ]
    )
    c = an.counts(data)
    assert (c["complete"], c["pruned"], c["diverged"]) == (1, 2, 1)


# -- copies for Optuna's functions ----------------------------------------------------------------
def test_admissible_widens_a_distribution_to_hold_a_baseline_value() -> None:
    t = trial("step", 0.5, lr=0.1)
    t.params["initial_lr"] = 1e-4  # stored like this by a baseline enqueued below the range
    t.params["decay_rate"] = 0.95
    fixed = study_data.admissible(t)
    assert fixed.distributions["initial_lr"] == FloatDistribution(1e-4, 0.5, log=True)
    assert fixed.distributions["decay_rate"] == FloatDistribution(0.1, 0.95)
    assert fixed.distributions["schedule"] == FAMILY
    assert study_data.admissible(trial("step", 0.5)).distributions["initial_lr"] == LR


def test_copy_study_is_a_read_only_view_keeping_numbers() -> None:
    trials = numbered([trial("constant", 0.1 * i) for i in range(1, 6)], "minimize")
    picked = [trials[4], trials[1]]
    copy = study_data.copy_study(picked, "minimize")
    assert [t.number for t in copy.get_trials(states=(TrialState.COMPLETE,))] == [1, 4]
    assert copy.best_trial.number == 1 and copy.direction.name == "MINIMIZE"
    assert copy.get_trials(deepcopy=False)[0] is picked[1]
    with pytest.raises(NotImplementedError, match="read-only"):
        copy.set_user_attr("x", 1)


# -- importance -----------------------------------------------------------------------------------
def importance_trials(n: int, seed: int = 0) -> list[FrozenTrial]:
    """The value depends on initial_lr strongly, on decay_rate a little, not on drop_every."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        family = ["step", "constant"][i % 2]
        lr = math.exp(rng.uniform(math.log(1e-3), math.log(0.5)))
        rate = rng.uniform(0.1, 0.9)
        value = 1 - (math.log10(lr) + 1) ** 2 / 4 + (0.05 * rate if family == "step" else 0)
        out.append(
            trial(family, value + rng.gauss(0, 0.005), lr=lr, rate=rate, every=rng.uniform(1, 4))
        )
    return out


@pytest.mark.parametrize("evaluator", an.EVALUATORS)
def test_importances_overall_and_per_family(evaluator: str) -> None:
    trials = importance_trials(60)
    trials += [trial("step", 0.99, lr=0.002, baseline="tutorial")]  # left out
    report = an.importances(data_of(trials), evaluator, max_trials=40)
    assert report.evaluator == evaluator and report.baselines_excluded == 1
    assert report.epoch == 2 and report.configurations == 60
    assert next(iter(report.overall.values)) == "initial_lr"
    assert report.overall.n_available == 60 and report.overall.n_trials == 40
    assert sum(report.overall.values.values()) == pytest.approx(1.0)
    (step,) = report.families
    assert step.scope == "step" and set(step.values) == {"initial_lr", "decay_rate", "drop_every"}
    assert next(iter(step.values)) == "initial_lr"
    assert report.skipped == {"constant": "only one searched parameter (initial_lr)"}


def test_importances_need_enough_tuned_configurations_and_say_how_to_add_them() -> None:
    trials = [trial("constant", 0.5, baseline=f"b{i}") for i in range(6)] + importance_trials(3)
    with pytest.raises(TooFewTrialsError) as caught:
        an.importances(data_of(trials))
    assert str(caught.value) == (
        "importance needs at least 4 tuned configurations (baselines and the reference left out) "
        "that trained the same number of epochs; study 's' has at most 3 (epochs: 1 (3), 2 (3)): "
        "add 1 or more configurations with `sweeper tune STUDY_FILE --n-trials 10`"
    )
    # the default study, its 9 trials its target: a larger --n-trials, not a bare `sweeper tune`
    attrs = {"epochs": 2, "n_trials": 9, "budget_epochs": 100}
    digits = study_data.StudyData("digits", "memory", "maximize", attrs, numbered(trials))
    with pytest.raises(TooFewTrialsError, match=r"`sweeper tune --n-trials 10` \(and a larger"):
        an.importances(digits)
    # baselines only: the reference configuration is queued before the first tuned one
    baselines = [trial("constant", 0.5, baseline=f"b{i}") for i in range(3)]
    with pytest.raises(TooFewTrialsError, match=r"add 4 or more .* --n-trials 8`$"):
        an.importances(data_of(baselines))


def test_small_family_is_skipped_with_its_reason() -> None:
    trials = importance_trials(12)
    trials += [trial("cosine", 0.5, lr=0.05), trial("cosine", 0.6, lr=0.1)]
    report = an.importances(data_of(trials))
    assert report.skipped["cosine"] == "2 configurations, 4 needed"


def test_unknown_evaluator() -> None:
    with pytest.raises(SweeperError, match="unknown importance evaluator 'gini'"):
        an.importances(data_of(importance_trials(10)), "gini")


def test_status_counts_configurations_as_the_trials_say(tmp_path: Path) -> None:
    """The status's aggregate count of configurations (no trial built) equals the
    configurations folded from the trials themselves."""
    from sweeper.analysis.store_status import status
    from sweeper.search.configurations import configurations, count_configurations
    from sweeper.testing import build_synthetic_store

    url = build_synthetic_store(tmp_path / "s.db", 300, seed=3)
    (found,) = status(url)
    data = an.load(url, found.name)
    expected = count_configurations(configurations(data.trials))
    assert found.configs == expected
    assert sum(expected.values()) < len(data.trials) or not any(
        t.user_attrs.get("promoted_from") is not None for t in data.trials
    )


# -- importance over configurations at an epoch count (a multi-fidelity study) ---------------------
def optuna_importance(
    trials: list[FrozenTrial], evaluator: str, params: list[str] | None = None
) -> dict[str, float]:
    """What Optuna's own evaluator (same settings, same seed) says of ``trials``."""
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    return optuna.importance.get_param_importances(
        study, evaluator=an.make_evaluator(evaluator, 0), params=params
    )


def built_at(configs: list[Configuration], epoch: int) -> list[FrozenTrial]:
    """By hand: per configuration, a COMPLETE trial with its value after ``epoch`` epochs."""
    return [
        optuna.create_trial(
            state=TrialState.COMPLETE,
            value=c.values[epoch],
            params=c.params,
            distributions=c.first.distributions,
        )
        for c in configs
        if epoch in c.values
    ]


@pytest.mark.parametrize("evaluator", an.EVALUATORS)
def test_importance_at_a_rung_is_optunas_on_complete_trials_carrying_those_values(
    evaluator: str,
) -> None:
    data = data_of(asha_trials(24))
    tuned = [c for c in configurations(data.trials) if c.tuned]
    for epoch in (1, 4):
        report = an.importances(data, evaluator, at_epoch=epoch)
        built = built_at(tuned, epoch)
        assert (report.epoch, report.configurations) == (epoch, len(built))
        assert report.overall.values == pytest.approx(optuna_importance(built, evaluator))
    report = an.importances(data, evaluator, at_epoch=1)
    step = built_at([c for c in tuned if c.params["schedule"] == "step"], 1)
    (family,) = report.families
    params = ["decay_rate", "drop_every", "initial_lr"]
    assert family.scope == "step" and family.n_available == len(step) == 12
    assert family.values == pytest.approx(optuna_importance(step, evaluator, params))


def test_a_configuration_continued_twice_counts_once() -> None:
    data = data_of(asha_trials())
    (chain,) = [c for c in configurations(data.trials) if len(c.trials) == 3]
    assert chain.chain == "2 -> 18 -> 22"
    at_1 = an.at_epoch_trials(data, 1)
    assert [t.number for t in at_1] == list(range(2, 18))  # 16 configurations, not 21 segments
    (mine,) = [t for t in at_1 if t.number == chain.number]
    assert mine.value == data.trials[2].intermediate_values[0] == chain.values[1]
    assert all(t.state == TrialState.COMPLETE for t in at_1)
    assert an.importance_epochs(data) == {1: 16, 2: 4, 3: 4, 4: 4, 5: 1, 6: 1, 7: 1, 8: 1}
    assert an.importances(data, at_epoch=1).overall.n_available == 16


def test_an_asha_study_is_ranked_at_the_deepest_epoch_with_enough_configurations() -> None:
    data = data_of(asha_trials())
    # one complete tuned trial: ranking complete trials only cannot work here
    assert [t.number for t in data.complete() if not an.baseline_of(t)] == [22]
    report = an.importances(data)
    assert report.heading == "importance at epoch 4, 4 configurations"
    assert report.baselines_excluded == 2 and report.overall.n_trials == 4
    assert {"schedule", "initial_lr"} <= set(report.overall.values)
    assert sum(report.overall.values.values()) == pytest.approx(1.0)
    assert report.skipped == {
        "step": "3 configurations, 4 needed",
        "constant": "1 configuration, 4 needed",
    }
    first = an.importances(data, "fanova", at_epoch=1)
    assert next(iter(first.overall.values)) == "initial_lr"


def test_at_epoch_without_enough_configurations_names_the_epochs_that_have_them() -> None:
    data = data_of(asha_trials())
    enough = "epochs with enough: 1 (16), 2 (4), 3 (4), 4 (4)"
    for epoch, what in (
        (8, "at epoch 8 only 1 configuration"),
        (9, "no tuned configuration trained 9 epochs"),
    ):
        with pytest.raises(TooFewTrialsError) as caught:
            an.importances(data, at_epoch=epoch)
        assert str(caught.value) == f"{what}; {enough}"


@pytest.mark.parametrize("evaluator", an.EVALUATORS)
def test_with_no_pruner_the_last_epoch_is_the_importance_over_complete_trials(
    evaluator: str,
) -> None:
    trials = [*importance_trials(30), trial("step", 0.99, lr=0.002, baseline="tutorial")]
    data = data_of(trials)
    complete = [t for t in data.complete() if not an.baseline_of(t)]  # what was ranked before
    report = an.importances(data, evaluator)
    assert report.epoch == data.epochs == 2 and report.configurations == len(complete) == 30
    assert report.overall.values == pytest.approx(optuna_importance(complete, evaluator))
    step = [t for t in complete if t.params["schedule"] == "step"]
    params = ["decay_rate", "drop_every", "initial_lr"]
    assert report.families[0].values == pytest.approx(optuna_importance(step, evaluator, params))


def test_the_reference_configuration_is_left_out_like_the_baselines() -> None:
    trials = importance_trials(8)
    trials[0].set_user_attr("reference", "cosine(initial_lr=0.5)")
    report = an.importances(data_of(trials))
    assert report.configurations == 7 and report.baselines_excluded == 1
