"""A worker's coordination reads what changed, not the whole study (docs/benchmarks.md §13), and
gives the same answers as reading everything: the trial list (optuna_ids.TrialList), the place
claims (place_claims.PlaceReader) and the folds over trials (search.folds.Fold, used by the
counts, the rungs and the places). Real SQLite stores, two "workers" writing one study."""

from __future__ import annotations

import random
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeper.search import promotion as promo
from sweeper.search.folds import Fold
from sweeper.search.outcomes import count_states, finished_count, superseded
from sweeper.search.places import began
from sweeper.search.trial_record import PAUSE_REASON_ATTR, PAUSED_ATTR, PROMOTED_FROM_ATTR
from sweeper.store.optuna_ids import TrialList
from sweeper.store.place_claims import (
    PlaceReader,
    bind_place,
    claim_place,
    place_claims,
    release_place,
    take_over_place,
)
from sweeper.store.store import Store
from sweeper.store.tables import utcnow

X = {"x": FloatDistribution(0.0, 1.0)}


@pytest.fixture(autouse=True)
def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _studies(tmp_path: Path) -> tuple[optuna.Study, optuna.Study, Store]:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(url)
    assert store.engine is not None
    one = optuna.create_study(study_name="s", storage=store.optuna_storage(heartbeat=False))
    other = optuna.load_study(study_name="s", storage=Store(url).optuna_storage(heartbeat=False))
    return one, other, store


def _step(rng: random.Random, study: optuna.Study) -> None:
    """One thing a worker does to the study: a trial that completes, pauses (PRUNED with the
    pause attributes, sometimes for the budget), continues a paused one, fails, or is queued."""
    kind = rng.choice(["complete", "pause", "continue", "fail", "queue", "prune", "run"])
    trials = study.get_trials(deepcopy=False)
    if kind == "queue":
        study.enqueue_trial({"x": rng.random()})
        return
    trial = study.ask(X)
    epochs = rng.randint(0, 3)
    for step in range(epochs):
        trial.report(rng.random(), step)
    if kind == "complete":
        study.tell(trial, rng.random())
    elif kind == "pause":
        trial.set_user_attr(PAUSED_ATTR, max(1, epochs))
        if rng.random() < 0.3:
            trial.set_user_attr(PAUSE_REASON_ATTR, "budget")
        study.tell(trial, state=TrialState.PRUNED)
    elif kind == "continue":
        paused = [t for t in trials if promo.is_paused(t)]
        if paused:
            trial.set_user_attr(PROMOTED_FROM_ATTR, rng.choice(paused).number)
        study.tell(trial, rng.random())
    elif kind == "fail":
        study.tell(trial, state=TrialState.FAIL)
    elif kind == "prune":
        study.tell(trial, state=TrialState.PRUNED)
    # "run": left RUNNING


def _same(a: list[FrozenTrial], b: list[FrozenTrial]) -> None:
    assert [(t.number, t.state, t.user_attrs, t.intermediate_values) for t in a] == [
        (t.number, t.state, t.user_attrs, t.intermediate_values) for t in b
    ]


def test_the_trial_list_and_the_folds_agree_with_reading_everything(tmp_path: Path) -> None:
    one, other, _store = _studies(tmp_path)
    listed = TrialList(one)
    rng = random.Random(7)
    found = 0
    for i in range(120):
        _step(rng, one if i % 3 else other)  # the other worker writes too
        if i % 7 == 0:  # a queued trial taken and finished by the other worker
            waiting = other.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if waiting:
                other.tell(other.ask(X), 0.5)
        mine = listed.read()
        everything = one.get_trials(deepcopy=False)
        _same(mine, everything)
        fresh = optuna.load_study(study_name="s", storage=one._storage).get_trials(deepcopy=True)
        # the folds on the incremental list = the same rules computed afresh on a deep copy
        assert count_states(mine) == count_states(fresh)
        assert finished_count(mine) == finished_count(fresh)
        assert promo.promoted(mine) == promo.promoted(fresh)
        assert superseded(mine) == superseded(fresh)
        assert began(mine) == began(fresh)
        for rung in (1, 2, 3):
            assert promo.rung_values(mine, rung) == promo.rung_values(fresh, rung)
        for final in (False, True):
            a = promo.next_promotion(mine, [1, 2], 3, final=final)
            b = promo.next_promotion(fresh, [1, 2], 3, final=final)
            assert (a and (a.parent.number, a.epochs_done, a.reason)) == (
                b and (b.parent.number, b.epochs_done, b.reason)
            )
            found += a is not None
    states = {t.state for t in one.get_trials(deepcopy=False)}
    assert {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING} <= states
    assert count_states(one.get_trials(deepcopy=False))["promoted"] > 0
    assert found > 0  # promotions were chosen, the same ones


def test_a_fold_starts_again_on_another_list_and_never_changes_what_it_returned() -> None:
    calls: list[int] = []

    def add(out: list[int], t: FrozenTrial) -> None:
        calls.append(t.number)
        out.append(t.number)

    fold: Fold[list[int]] = Fold(list, add, list.copy)

    def trial(number: int, state: TrialState) -> FrozenTrial:
        t = optuna.trial.create_trial(state=state, value=0.0 if state.is_finished() else None)
        t.number = number
        return t

    a = [trial(0, TrialState.COMPLETE), trial(1, TrialState.COMPLETE), trial(2, TrialState.RUNNING)]
    first = fold(a)
    assert first == [0, 1, 2] and calls == [0, 1, 2]
    first.append(99)  # the caller's copy: the kept state is not touched
    calls.clear()
    a[2] = trial(2, TrialState.COMPLETE)
    assert fold([*a, trial(3, TrialState.WAITING)]) == [0, 1, 2, 3]
    assert calls == [2, 3]  # only what changed: the two finished ones were kept
    calls.clear()
    b = [trial(0, TrialState.COMPLETE)]  # another study's list
    assert fold(b) == [0] and calls == [0]


def test_the_place_reader_agrees_with_reading_every_claim(tmp_path: Path) -> None:
    _one, _other, store = _studies(tmp_path)
    reader = PlaceReader(store, "s")
    rng = random.Random(3)
    tokens: dict[int, str] = {}
    for i in range(200):
        held = {c.place for c in place_claims(store, "s")}
        lowest = min(p for p in range(60) if p not in held)
        place = lowest if rng.random() < 0.6 else rng.randrange(60)  # as workers claim
        action = rng.choice(["claim", "bind", "bind", "release", "take_over"])
        if action != "claim" and tokens:
            place = rng.choice(sorted(tokens))  # one of this test's claims
        if action == "claim" and claim_place(store, "s", place, f"t{i}", "w"):
            tokens[place] = f"t{i}"
        elif action == "bind" and place in tokens:
            bind_place(store, "s", place, tokens[place], config=1000 + place)
        elif action == "release" and place in tokens:
            if release_place(store, "s", place, tokens[place]):
                del tokens[place]
        elif (
            action == "take_over"
            and place in tokens
            and take_over_place(
                store,
                "s",
                place,
                stale_token=tokens[place],
                token=f"o{i}",
                worker="w2",
                claimed_before=utcnow(),
            )
        ):
            tokens[place] = f"o{i}"
        assert reader.read() == place_claims(store, "s")
    bound = {c.place for c in place_claims(store, "s") if c.config is not None}
    prefix = next(p for p in range(61) if p not in bound)
    assert prefix > 10  # bound places from 0 on: the part read once
