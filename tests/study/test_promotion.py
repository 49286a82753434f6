"""Multi-fidelity search, epoch budgets, stalled trials and baselines: the rules on synthetic
trials, then real training on small digits studies in real SQLite stores."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from sweeper.errors import ConfigError
from sweeper.search import promotion as promo
from sweeper.search.outcomes import count_states, finished_count
from sweeper.search.run_options import RunOptions
from sweeper.search.runner import tune
from sweeper.search.trial_record import PAUSED_ATTR, PROMOTED_FROM_ATTR
from sweeper.store import store as store_mod
from sweeper.store.store import Store
from sweeper.studyfile.config import parse_study
from sweeper.training import train_trial as training
from sweeper.training.schedules import from_dict

# --------------------------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("min_resource", "factor", "epochs", "expected"),
    [(1, 3, 9, [1, 3]), (1, 2, 4, [1, 2]), (1, 3, 10, [1, 3, 9]), (2, 3, 2, []), (1, 3, 1, [])],
)
def test_rungs_lie_below_the_full_length(
    min_resource: int, factor: int, epochs: int, expected: list[int]
) -> None:
    assert promo.rungs(min_resource, factor, epochs) == expected


def test_in_top_needs_factor_configurations_and_takes_the_best_share() -> None:
    assert not promo.in_top(0.9, [0.9, 0.1], 3)  # two of three needed
    assert promo.in_top(0.9, [0.9, 0.8, 0.7], 3)
    assert not promo.in_top(0.8, [0.9, 0.8, 0.7], 3)
    assert promo.in_top(0.8, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], 3)  # best 2 of 6
    assert promo.in_top(0.8, [0.8, 0.8, 0.1], 3)  # a tie with the cut is in


def test_rung_values_count_a_configuration_once_and_leave_baselines_out(
    frozen: Callable[..., FrozenTrial], paused: Callable[..., FrozenTrial]
) -> None:
    trials = [
        paused(0, {0: 0.5}, 1),
        frozen(1, {0: 0.5, 1: 0.7}, state=TrialState.COMPLETE, config=0, promoted_from=0),
        frozen(2, {0: 0.9}, state=TrialState.COMPLETE, baseline="b"),
        frozen(3, {0: math.nan}),
        frozen(4, {}),
    ]
    assert promo.rung_values(trials, 1) == {0: 0.5}
    assert promo.rung_values(trials, 2) == {0: 0.7}


def test_next_promotion_takes_the_best_paused_trial_once_it_is_in_the_top(
    frozen: Callable[..., FrozenTrial], paused: Callable[..., FrozenTrial]
) -> None:
    trials = [paused(0, {0: 0.6}, 1), paused(1, {0: 0.4}, 1)]
    assert promo.next_promotion(trials, [1, 3], 3) is None  # two of three: nobody yet
    trials.append(paused(2, {0: 0.5}, 1))
    choice = promo.next_promotion(trials, [1, 3], 3)
    assert choice is not None and (choice.parent.number, choice.epochs_done) == (0, 1)
    # claimed, or continued by a child: not again; the next best is not in the top
    assert promo.next_promotion(trials, [1, 3], 3, claimed=[0]) is None
    child = frozen(3, {0: 0.6}, state=TrialState.RUNNING, config=0, promoted_from=0)
    assert promo.next_promotion([*trials, child], [1, 3], 3) is None


def test_next_promotion_prefers_higher_rungs_and_budget_pauses(
    paused: Callable[..., FrozenTrial],
) -> None:
    low = [paused(i, {0: 0.5 + i / 100}, 1) for i in range(3)]
    high = [paused(10 + i, {0: 0.9, 2: 0.7 + i / 100}, 3) for i in range(3)]
    choice = promo.next_promotion(low + high, [1, 3], 3)
    assert choice is not None and choice.parent.number == 12 and choice.epochs_done == 3
    budget = paused(20, {0: 0.1, 1: 0.1}, 2, pause_reason="budget")
    choice = promo.next_promotion([*low, *high, budget], [1, 3], 3)
    assert choice is not None and (choice.parent.number, choice.reason) == (20, "budget")


SPE = 10  # steps per epoch of the schedules below: 9 epochs
COSINE = {"family": "cosine", "initial_lr": 0.25, "decay_steps": 90.0}
FAST = {"family": "exponential", "initial_lr": 0.3, "decay_steps": 10.0, "decay_rate": 0.1}
CONSTANT = {"family": "constant", "initial_lr": 0.05}
WARMUP = {"family": "cosine", "initial_lr": 0.25, "decay_steps": 60.0, "warmup_steps": 30.0}


def test_the_rate_left_at_a_rung_is_the_share_of_the_highest_rate_so_far() -> None:
    assert promo.rate_left(CONSTANT, SPE, 1) == 1.0
    assert promo.rate_left(FAST, SPE, 1) == pytest.approx(0.1)  # a tenth after one epoch
    assert promo.rate_left(FAST, SPE, 3) == pytest.approx(0.001)
    cosine = from_dict(COSINE)
    assert promo.rate_left(COSINE, SPE, 1) == pytest.approx(cosine.lr_at(10) / 0.25)
    assert 0.95 < promo.rate_left(COSINE, SPE, 1) < 1.0
    assert promo.rate_left(WARMUP, SPE, 1) == 1.0  # still warming up: at its highest so far


def _with(schedule: dict[str, Any], trial: FrozenTrial) -> FrozenTrial:
    trial.user_attrs.update({"schedule": schedule, "steps_per_epoch": SPE})
    return trial


def test_annealed_compares_a_configuration_with_those_annealed_no_further(
    frozen: Callable[..., FrozenTrial], paused: Callable[..., FrozenTrial]
) -> None:
    """Schedules that have cut their rate tenfold lead the first rung; a cosine one epoch into
    nine is judged against the rates that have fallen no further, where it is the best."""
    trials = [
        _with(FAST, frozen(0, {0: 0.93}, state=TrialState.RUNNING)),
        _with(FAST, frozen(1, {0: 0.92}, state=TrialState.RUNNING)),
        _with(FAST, paused(2, {0: 0.91}, 1)),
        _with(COSINE, paused(3, {0: 0.80}, 1)),
        _with(CONSTANT, paused(4, {0: 0.70}, 1)),
        _with(CONSTANT, paused(5, {0: 0.60}, 1)),
    ]
    values, left = promo.rung_values(trials, 1), promo.rates_left(trials, 1)
    assert left[0] == pytest.approx(0.1) and left[4] == 1.0
    assert sorted(promo.peers(values, left, 3, "all")) == sorted(values.values())
    assert sorted(promo.peers(values, left, 3, "annealed")) == [0.6, 0.7, 0.8]
    assert promo.peers(values, left, 2, "annealed") == list(values.values())  # every one
    # all six compared: the best two are the running fast decays, nobody paused is promoted
    assert promo.next_promotion(trials, [1, 3], 3) is None
    choice = promo.next_promotion(trials, [1, 3], 3, compare="annealed")
    assert choice is not None and (choice.parent.number, choice.epochs_done) == (3, 1)
    # once it is taken, no other paused one is in the top of its peers
    assert promo.next_promotion(trials, [1, 3], 3, claimed=[3], compare="annealed") is None


def test_a_schedule_that_cannot_be_rebuilt_is_a_peer_of_every_configuration(
    paused: Callable[..., FrozenTrial],
) -> None:
    trials = [
        _with({"family": "no-such-family"}, paused(0, {0: 0.5}, 1)),
        _with(CONSTANT, paused(1, {0: 0.4}, 1)),
        paused(2, {0: 0.3}, 1),  # no schedule stored (an older store)
    ]
    left = promo.rates_left(trials, 1)
    assert left == {1: 1.0}
    values = promo.rung_values(trials, 1)
    assert sorted(promo.peers(values, left, 1, "annealed")) == [0.3, 0.4, 0.5]


def test_a_child_carries_the_parents_parameters_values_and_link(
    paused: Callable[..., FrozenTrial],
) -> None:
    parent = paused(4, {0: 0.5, 1: 0.6, 2: 0.7}, 2)
    child = promo.child_of(parent, 2)
    assert child.state == TrialState.WAITING
    assert child.params == parent.params and child.distributions == parent.distributions
    assert child.intermediate_values == {0: 0.5, 1: 0.6}
    assert child.user_attrs == {"config": 4, "promoted_from": 4, "promoted_at_epoch": 2}


def test_counts_show_paused_and_promoted_and_count_each_configuration_once(
    frozen: Callable[..., FrozenTrial], paused: Callable[..., FrozenTrial]
) -> None:
    trials = [
        paused(0, {0: 0.6}, 1),  # promoted: its child carries on
        paused(1, {0: 0.4}, 1),
        frozen(2, {0: 0.1}, outcome="stalled"),
        frozen(3, {0: 0.6, 1: 0.8}, state=TrialState.COMPLETE, config=0, promoted_from=0),
    ]
    counts = count_states(trials)
    assert (counts["complete"], counts["pruned"], counts["paused"], counts["promoted"]) == (
        1,
        1,
        1,
        1,
    )
    assert finished_count(trials) == 3


def test_a_stale_claim_is_one_whose_trial_never_came(
    monkeypatch: pytest.MonkeyPatch,
    frozen: Callable[..., FrozenTrial],
    paused: Callable[..., FrozenTrial],
) -> None:
    from datetime import datetime, timedelta

    now = datetime(2026, 1, 1, 12)
    old, fresh = now - timedelta(seconds=store_mod.CLAIM_GRACE + 1), now
    trials = [paused(0, {0: 0.5}, 1), paused(1, {0: 0.5}, 1), frozen(2, {}, promoted_from=1)]
    assert promo.stale_claims([(0, old), (1, old), (5, fresh)], trials, now) == [0]


# --------------------------------------------------------------------------------------------
# the store: ledger and claims
# --------------------------------------------------------------------------------------------


def record(epoch: int, acc: float) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "step": epoch + 1,
        "lr": 0.1,
        "seconds": 0.1,
        "loss": 1.0,
        "accuracy": acc,
        "val_loss": 1.0,
        "val_accuracy": acc,
    }


def test_the_ledger_counts_every_epoch_trained_and_keeps_training_order(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'l.db'}")
    assert store.epochs_spent("s") == 0 and store.ledger("s") == []
    store.add_epoch("s", 1, 0, record(0, 0.5))
    store.add_epoch("s", 2, 1, record(0, 0.6))
    store.add_epoch("s", 1, 0, record(0, 0.55))  # trained again after a crash: spent twice
    store.add_epoch("other", 3, 0, record(0, 0.9))
    store.copy_epochs("s", 1, 4, 2, below=1)  # copied rows are not training
    assert store.epochs_spent("s") == 3
    assert [r["val_accuracy"] for r in store.ledger("s")] == [0.5, 0.6, 0.55]
    assert len(store.epochs("s")) == 3  # one row per (trial, epoch): 1, 2 and the copy


def test_an_old_store_without_a_ledger_reads_as_nothing_spent(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = Store(f"sqlite:///{db}")
    store.add_epoch("s", 1, 0, record(0, 0.5))
    store.close()
    import sqlite3

    with sqlite3.connect(db) as con:
        con.execute("DROP TABLE sweeper_ledger")
    assert Store(f"sqlite:///{db}").epochs_spent("s") == 0


def test_a_promotion_is_claimed_once_and_a_stale_claim_taken_over_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    assert store.claim_promotion("s", 3)
    assert not store.claim_promotion("s", 3)
    assert store.claim_promotion("t", 3)  # another study
    assert not store.renew_claim("s", 3)  # not stale yet
    monkeypatch.setattr(store_mod, "CLAIM_GRACE", -1.0)
    assert store.renew_claim("s", 3)
    assert [p for p, _ in store.promotion_claims("s")] == [3]


def test_promote_creates_one_child_and_finishes_a_claim_whose_process_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, paused: Callable[..., FrozenTrial]
) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    store = Store(url)
    study = optuna.create_study(
        study_name="s", storage=store.optuna_storage(), direction="maximize"
    )
    for t in (paused(0, {0: 0.6}, 1), paused(1, {0: 0.4}, 1), paused(2, {0: 0.5}, 1)):
        study.add_trial(t)
    assert promo.promote(study, store, [1], 3) == 0
    assert promo.promote(study, store, [1], 3) is None  # claimed and created: not twice
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs["promoted_from"] for t in waiting] == [0]
    # a worker claimed the best trial and died before creating its child
    study.add_trial(paused(9, {0: 0.9}, 1))
    best = study.get_trials()[-1].number
    assert store.claim_promotion("s", best)
    assert promo.promote(study, store, [1], 3) is None  # its claim is fresh: left alone
    monkeypatch.setattr(promo, "CLAIM_GRACE", -1.0)
    monkeypatch.setattr(store_mod, "CLAIM_GRACE", -1.0)
    promo.promote(study, store, [1], 3)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert sorted(t.user_attrs["promoted_from"] for t in waiting) == [0, best]


# --------------------------------------------------------------------------------------------
# study files
# --------------------------------------------------------------------------------------------

BASE = """\
[study]
name = "p"
seed = 0
n_trials = 10

[data]
dataset = "digits"
subset = 400

[train]
model = "mnist-cnn"
batch_size = 64
epochs = 2

[sampler]
type = "random"

[space]
schedules = ["constant"]
initial_lr = { low = 0.02, high = 0.3, log = true }
"""


def test_the_default_strategy_is_asha_with_the_stall_check() -> None:
    spec = parse_study(BASE, "p.toml")
    assert (spec.pruner.kind, spec.pruner.reduction_factor, spec.pruner.stall_factor) == (
        "asha",
        3,
        1.5,
    )
    assert spec.budget_epochs is None
    spec = parse_study(BASE, "p.toml", overrides=["study.budget_epochs=40"])
    assert spec.budget_epochs == 40


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("study.budget_epochs=0", "[study] budget_epochs: must be an integer >= 1, got 0"),
        ("study.budget_epochs=2.5", "[study] budget_epochs: must be an integer >= 1, got 2.5"),
        ("pruner.stall_factor=-1", "[pruner] stall_factor: must lie in [0, 10]"),
        ("pruner.type=ashaa", "'ashaa' is not one of asha, median"),
        ("pruner.brackets=0", "[pruner] brackets: must be an integer >= 1, got 0"),
        ("pruner.compare=some", "'some' is not one of all, annealed"),
    ],
)
def test_bad_budget_and_stall_settings_are_refused(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_study(BASE, "p.toml", overrides=[override])
    assert message in str(info.value)


def test_brackets_belong_to_asha_alone() -> None:
    with pytest.raises(ConfigError) as info:
        parse_study(BASE, "p.toml", overrides=["pruner.type=median", "pruner.brackets=3"])
    assert str(info.value).endswith(
        "[pruner] brackets: only type = \"asha\" has brackets (type = 'median' here)"
    )
    assert parse_study(BASE, "p.toml", overrides=["pruner.brackets=3"]).pruner.brackets == 3


def test_compare_belongs_to_asha_alone() -> None:
    with pytest.raises(ConfigError) as info:
        parse_study(BASE, "p.toml", overrides=["pruner.type=median", "pruner.compare=annealed"])
    assert str(info.value).endswith(
        "[pruner] compare: only type = \"asha\" compares at rungs (type = 'median' here)"
    )
    spec = parse_study(BASE, "p.toml", overrides=["pruner.compare=annealed"])
    assert spec.pruner.compare == "annealed"
    assert parse_study(BASE, "p.toml").pruner.compare == "all"


# --------------------------------------------------------------------------------------------
# real training
# --------------------------------------------------------------------------------------------


def study_text(extra: str = "", *, epochs: int = 2, initial_lr: str = "") -> str:
    text = BASE.replace("epochs = 2", f"epochs = {epochs}")
    if initial_lr:
        text = text.replace("initial_lr = { low = 0.02, high = 0.3, log = true }", initial_lr)
    return text + textwrap.dedent(extra)


def run_tune(tmp_path: Path, text: str, **kw: Any) -> tuple[Any, list[FrozenTrial], Store]:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    spec = parse_study(text, str(tmp_path / "p.toml"))
    summary = tune(spec, RunOptions(storage=url, checkpoint_dir=str(tmp_path / "ckpt"), **kw))
    trials = optuna.load_study(study_name="p", storage=url).get_trials()
    return summary, trials, Store(url)


def test_a_trial_at_chance_level_stops_after_its_first_epoch(tmp_path: Path) -> None:
    text = study_text(epochs=3, initial_lr='initial_lr = 1e-7\n[pruner]\ntype = "median"\n')
    # all the digits at batch 16: 72 updates in the first epoch (judged from 50 on)
    text = text.replace("subset = 400\n", "").replace("batch_size = 64", "batch_size = 16")
    summary, trials, store = run_tune(tmp_path, text, n_trials=1)
    (t,) = trials
    assert t.state == TrialState.PRUNED
    assert t.user_attrs["outcome"] == "stalled"
    assert "after epoch 1, chance is 0.100" in t.user_attrs["reason"]
    assert [r["epoch"] for r in store.epochs("p")] == [0]
    assert summary.epochs_spent == 1


def test_with_no_pruner_a_chance_level_trial_trains_its_full_length(tmp_path: Path) -> None:
    text = study_text(epochs=2, initial_lr='initial_lr = 1e-7\n[pruner]\ntype = "none"\n')
    text = text.replace("subset = 400\n", "").replace("batch_size = 64", "batch_size = 16")
    _, (t,), store = run_tune(tmp_path, text, n_trials=1)
    assert t.state == TrialState.COMPLETE and len(store.epochs("p")) == 2


def test_baselines_are_never_pruned_nor_stopped(tmp_path: Path) -> None:
    text = study_text(
        """
        [pruner]
        type = "median"
        n_startup_trials = 0
        n_warmup_steps = 0

        [[baselines]]
        name = "good"
        schedule = "constant"
        initial_lr = 0.2

        [[baselines]]
        name = "hopeless"
        schedule = "constant"
        initial_lr = 1e-7
        """,
        epochs=3,
    )
    summary, trials, store = run_tune(tmp_path, text, n_trials=2)
    by_name = {t.user_attrs["baseline"]: t for t in trials}
    # the median pruner (no start-up, no warm-up) and the stall check would both stop "hopeless"
    assert by_name["hopeless"].state == TrialState.COMPLETE
    assert by_name["hopeless"].value is not None and by_name["hopeless"].value < 0.2
    assert by_name["hopeless"].intermediate_values.keys() == {0, 1, 2}
    rows = [r for r in store.epochs("p") if r["trial_number"] == by_name["hopeless"].number]
    assert len(rows) == 3
    assert summary.best_baseline == "good" and summary.tuned_complete == 0


def test_a_promoted_trial_resumes_with_identical_weights_and_the_same_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int, list[np.ndarray], int]] = []
    make_backup = training._make_backup

    def watched_backup(keras: Any, backup_dir: str) -> Any:
        inner = make_backup(keras, backup_dir)

        class Watched(type(inner)):  # type: ignore[misc]
            def snapshot(self, phase: str, epoch: int) -> None:
                weights = [np.array(w) for w in self.model.get_weights()]
                step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
                seen.append((phase, epoch, weights, step))

            def on_train_begin(self, logs: Any = None) -> None:
                super().on_train_begin(logs)
                self.snapshot("begin", -1)

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                super().on_epoch_end(epoch, logs)
                self.snapshot("end", epoch)

        inner.__class__ = Watched
        return inner

    monkeypatch.setattr(training, "_make_backup", watched_backup)
    text = study_text(
        """
        [pruner]
        type = "asha"
        min_resource = 1
        reduction_factor = 2
        stall_factor = 0
        """,
        epochs=2,
    )
    url = f"sqlite:///{tmp_path / 'p.db'}"
    spec = parse_study(text, str(tmp_path / "p.toml"))
    study = optuna.create_study(study_name="p", storage=url, direction="maximize")
    study.enqueue_trial({"initial_lr": 0.25})  # trial 0: good, paused alone at rung 1
    study.enqueue_trial({"initial_lr": 0.021})  # trial 1: worse, paused; trial 0 promoted
    summary = tune(
        spec,
        RunOptions(
            storage=url, checkpoint_dir=str(tmp_path / "ckpt"), budget_epochs=3, n_trials=10
        ),
    )
    trials = {t.number: t for t in optuna.load_study(study_name="p", storage=url).get_trials()}
    assert summary.epochs_spent == 3
    assert trials[0].user_attrs[PAUSED_ATTR] == 1
    assert trials[1].user_attrs[PAUSED_ATTR] == 1
    child = trials[2]
    assert child.user_attrs["promoted_from"] == 0 and child.user_attrs["promoted_at_epoch"] == 1
    assert child.state == TrialState.COMPLETE and child.params == trials[0].params
    assert child.user_attrs["resumed_from_epoch"] == 1
    assert child.intermediate_values.keys() == {0, 1}
    # trained: trial 0's epoch 0, trial 1's epoch 0, then the child's epoch 1 from trial 0's state
    ends = [s for s in seen if s[0] == "end"]
    begins = [s for s in seen if s[0] == "begin"]
    assert [(e[1], e[3]) for e in ends] == [(0, ends[0][3]), (0, ends[0][3]), (1, 2 * ends[0][3])]
    parent_end, child_begin = ends[0], begins[2]
    assert child_begin[3] == parent_end[3]  # optimizer step restored
    for a, b in zip(parent_end[2], child_begin[2], strict=True):
        np.testing.assert_array_equal(a, b)  # identical weights
    # one curve, defined for both epochs from the start, across parent and child
    schedule = from_dict(child.user_attrs["schedule"])
    assert child.user_attrs["schedule"] == trials[0].user_attrs["schedule"]
    rows = {r["epoch"]: r for r in Store(url).epochs("p") if r["trial_number"] == 2}
    assert sorted(rows) == [0, 1]  # the parent's epoch copied, the child's own
    for r in rows.values():
        assert r["lr"] == pytest.approx(schedule.lr_at(r["step"] - 1), rel=1e-6)
    assert not (tmp_path / "ckpt" / "p" / "trial-0").exists()  # finished: checkpoint gone
    assert (tmp_path / "ckpt" / "p" / "trial-1").exists()  # paused: kept for later


def test_a_budget_paused_trial_continues_when_the_budget_is_raised(tmp_path: Path) -> None:
    text = study_text('[pruner]\ntype = "none"\n', epochs=3)
    summary, trials, _ = run_tune(tmp_path, text, budget_epochs=2, n_trials=1)
    assert summary.epochs_spent == 2 and count_states(trials)["paused"] == 1
    assert trials[0].user_attrs["pause_reason"] == "budget"
    from click.testing import CliRunner

    from sweeper.cli.commands import main

    shown = CliRunner().invoke(main, ["status", "--storage", f"sqlite:///{tmp_path / 'p.db'}"])
    assert shown.exit_code == 0 and "2 of 2 epochs trained" in shown.output, shown.output
    summary, trials, _ = run_tune(tmp_path, text, budget_epochs=10, n_trials=1)
    assert summary.epochs_spent == 3  # the third epoch only: it went on from its checkpoint
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.COMPLETE]
    assert trials[1].user_attrs["promoted_from"] == 0


# --------------------------------------------------------------------------------------------
# the budget holds across SIGKILL, reruns and workers (real processes)
# --------------------------------------------------------------------------------------------


def _cmd(tmp_path: Path, *extra: str) -> list[str]:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    return [sys.executable, "-m", "sweeper", "tune", "p.toml", "--storage", url, *extra]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPER_STORAGE", "SWEEPER_KILL_AT")}
    return {**env, "SWEEPER_HEARTBEAT_GRACE": "3", **extra}


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-claim"])  # a kill inside a trial: test_reliability
def test_the_budget_holds_across_a_sigkill_and_a_rerun(point: str, tmp_path: Path) -> None:
    asha = '[pruner]\ntype = "asha"\nreduction_factor = 2\nstall_factor = 0\n'
    (tmp_path / "p.toml").write_text(study_text(asha, epochs=2))
    cmd = _cmd(tmp_path, "--budget-epochs", "7", "--n-trials", "50")
    study = optuna.create_study(
        study_name="p", storage=f"sqlite:///{tmp_path / 'p.db'}", direction="maximize"
    )
    for lr in (0.25, 0.021):  # the second is worse: the first is promoted before the third
        study.enqueue_trial({"initial_lr": lr})
    run = dict(cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    killed = subprocess.run(cmd, env=_env(SWEEPER_KILL_AT=point), **run)  # type: ignore[call-overload]
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = subprocess.run(cmd, env=_env(), **run)  # type: ignore[call-overload]
    assert again.returncode == 0, again.stderr
    assert "epochs trained: 7 of a budget of 7" in again.stdout, again.stdout
    assert "the epoch budget is spent" in again.stdout
    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    assert store.epochs_spent("p") == 7
    trials = optuna.load_study(study_name="p", storage=store.url).get_trials()
    states = {t.state for t in trials}
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    children = [t for t in trials if t.user_attrs.get("promoted_from") is not None]
    parents = [t.user_attrs["promoted_from"] for t in children]
    assert children and len(parents) == len(set(parents))  # never two continuations of one


@pytest.mark.slow
def test_two_workers_spend_at_most_the_budget_plus_one_epoch_each(tmp_path: Path) -> None:
    asha = '[pruner]\ntype = "asha"\nreduction_factor = 2\nstall_factor = 0\n'
    (tmp_path / "p.toml").write_text(study_text(asha, epochs=3))
    cmd = _cmd(tmp_path, "--budget-epochs", "10", "--n-trials", "50", "--workers", "2")
    done = subprocess.run(
        cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    spent = Store(f"sqlite:///{tmp_path / 'p.db'}").epochs_spent("p")
    assert 10 <= spent <= 12, done.stdout
    assert f"epochs trained: {spent} of a budget of 10" in done.stdout


def test_a_tiny_first_epoch_is_not_judged_at_chance_level(tmp_path: Path) -> None:
    # 400 digits at batch 64: a few updates per epoch, fewer than 50 in all three epochs
    text = study_text(epochs=3, initial_lr='initial_lr = 1e-7\n[pruner]\ntype = "median"\n')
    _, (t,), store = run_tune(tmp_path, text, n_trials=1)
    assert t.state == TrialState.COMPLETE and len(store.epochs("p")) == 3


def test_once_no_new_configuration_will_start_the_best_paused_one_goes_on(
    paused: Callable[..., FrozenTrial],
) -> None:
    assert not promo.in_top(0.9, [0.9, 0.1], 3)
    assert promo.in_top(0.9, [0.9, 0.1], 3, final=True)  # ceil(2 / 3) = 1
    assert not promo.in_top(0.1, [0.9, 0.1], 3, final=True)
    trials = [paused(0, {0: 0.6}, 1), paused(1, {0: 0.4}, 1)]
    assert promo.next_promotion(trials, [1], 3) is None
    choice = promo.next_promotion(trials, [1], 3, final=True)
    assert choice is not None and choice.parent.number == 0


def test_a_small_asha_study_still_trains_its_best_configuration_in_full(tmp_path: Path) -> None:
    # two configurations, factor 3: neither is ever in the best third of three, yet the study
    # must end with its best configuration complete, not with everything paused
    text = study_text('[pruner]\ntype = "asha"\nstall_factor = 0\n', epochs=2)
    summary, trials, _ = run_tune(tmp_path, text, n_trials=2)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 1 and summary.best_value is not None
    assert finished_count(trials) == 2
    ranked = sorted(trials, key=lambda t: t.intermediate_values[0], reverse=True)
    assert promo.config_of(complete[0]) == promo.config_of(ranked[0])  # the best at rung 1


def test_an_annealed_comparison_reads_the_schedules_real_trials_store(tmp_path: Path) -> None:
    # constant rates, and exponential decays that cut the rate to a tenth every half epoch
    text = study_text(
        '[pruner]\ntype = "asha"\nstall_factor = 0\ncompare = "annealed"\n', epochs=2
    ).replace(
        'schedules = ["constant"]',
        'schedules = ["constant", "exponential"]\ndecay_rate = 0.1\ndrop_every = 0.5\n'
        "staircase = false",
    )
    summary, trials, _ = run_tune(tmp_path, text, n_trials=6)
    assert summary.best_value is not None and finished_count(trials) == 6
    assert any(t.state == TrialState.COMPLETE for t in trials)
    left = promo.rates_left(trials, 1)
    assert set(left) == {promo.config_of(t) for t in trials}  # each one's schedule is known
    for t in trials:  # a constant rate has it all left after one epoch, the decays 1/100
        expected = 1.0 if t.params["schedule"] == "constant" else 0.01
        assert left[promo.config_of(t)] == pytest.approx(expected, rel=0.05)
    values = promo.rung_values(trials, 1)
    for t in trials:
        reason = str(t.user_attrs.get("reason", ""))
        if promo.is_paused(t) and "at this rung" in reason:
            peers = promo.peers(values, left, promo.config_of(t), "annealed")
            assert int(reason.split(" of ")[-1].split()[0]) <= len(peers)  # fewer then, not more


def test_brackets_take_hyperbands_shares_the_same_on_every_call() -> None:
    # factor 3, rungs at 1 and 3 epochs: Hyperband's 9, 5 and 3 configurations per round
    counts = Counter(promo.bracket_of(c, 3, 2, 3) for c in range(1700))
    assert [round(counts[b] / 100) for b in range(3)] == [9, 5, 3]
    # spread, not in blocks: any 8 consecutive configurations meet every bracket
    seq = [promo.bracket_of(c, 3, 2, 3) for c in range(1700)]
    assert all(set(seq[i : i + 8]) == {0, 1, 2} for i in range(len(seq) - 8))
    assert {promo.bracket_of(c, 1, 2, 3) for c in range(50)} == {0}  # one bracket: ASHA
    assert max(promo.bracket_of(c, 9, 1, 3) for c in range(50)) == 1  # at most rungs + 1


def test_a_configuration_in_the_last_bracket_trains_its_length_without_rungs(
    tmp_path: Path,
) -> None:
    text = study_text('[pruner]\ntype = "asha"\nstall_factor = 0\nbrackets = 2\n', epochs=2)
    _, trials, _ = run_tune(tmp_path, text, n_trials=6)
    brackets = {t.number: promo.bracket_of(promo.config_of(t), 2, 1, 3) for t in trials}
    assert set(brackets.values()) == {0, 1}
    for t in trials:
        if brackets[t.number] == 1:  # no rung: never paused, trained both epochs at once
            assert t.state == TrialState.COMPLETE and PAUSED_ATTR not in t.user_attrs
            assert PROMOTED_FROM_ATTR not in t.user_attrs
    first_bracket = [t for t in trials if brackets[t.number] == 0]
    assert any(promo.is_paused(t) for t in first_bracket)  # its rung at 1 epoch still decides
