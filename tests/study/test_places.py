"""Places of a study's target (sweeper.search.places, sweeper.store.place_claims): a new
configuration starts only in a place claimed in the store, so any number of workers ends a study
with exactly its target of configurations.

The claims in the store; what holds a place (:class:`Occupancy`); :class:`PlacedStudy` asked by
two "workers" of one process; a claim left by a killed process taken over; processes asking at
once on one SQLite file. Real workers: ``test_workers.py`` (``tune --workers 3`` on SQLite) and
``test_postgres.py`` (3 and 8 workers, and processes asking at once, on PostgreSQL).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from process_helpers import ask_concurrently, assert_exact_places

from sweeper.search import places
from sweeper.search.places import Claimant, NoPlace, Occupancy, PlacedStudy
from sweeper.search.promotion import config_of
from sweeper.search.recovery import requeue
from sweeper.store import optuna_ids
from sweeper.store.place_claims import (
    PlaceClaim,
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


def new_study(url: str, name: str = "s") -> optuna.Study:
    store = Store(url)
    study = optuna.create_study(study_name=name, storage=store.optuna_storage(heartbeat=False))
    assert store.engine is not None  # sweeper's tables, as `tune` makes them
    store.close()
    return study


def worker(url: str, target: int, who: str, name: str = "s") -> PlacedStudy:
    """One worker's study (its own store, as in its own process)."""
    store = Store(url)
    return PlacedStudy(
        study_name=name,
        storage=store.optuna_storage(heartbeat=False),
        sampler=optuna.samplers.RandomSampler(seed=len(who)),
        claimant=Claimant(store, target, who),
    )


def finish(study: optuna.Study, trial: optuna.Trial) -> None:
    trial.suggest_float("x", 0.0, 1.0)
    study.tell(trial, 0.5)


def claims_of(study: PlacedStudy) -> list[tuple[int, int | None]]:
    return [(c.place, c.config) for c in place_claims(study.claimant.store, study.study_name)]


# --------------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------------


def test_a_place_is_claimed_once_bound_by_its_claim_alone_and_a_stale_claim_taken_over_once(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    assert claim_place(store, "s", 0, "a", "host:1")
    assert not claim_place(store, "s", 0, "b", "host:2")  # two claims of one place: one wins
    assert claim_place(store, "t", 0, "b", "host:2")  # another study's place 0
    assert not bind_place(store, "s", 0, "b", 5)  # not b's claim
    before, after = utcnow() - timedelta(hours=1), utcnow() + timedelta(hours=1)
    take = {"stale_token": "a", "worker": "host:3"}
    assert not take_over_place(store, "s", 0, token="c", claimed_before=before, **take)  # fresh
    assert take_over_place(store, "s", 0, token="c", claimed_before=after, **take)
    assert not take_over_place(store, "s", 0, token="d", claimed_before=after, **take)  # once
    assert not bind_place(store, "s", 0, "a", 5)  # its claimant lost it
    assert bind_place(store, "s", 0, "c", 5)
    assert not bind_place(store, "s", 0, "c", 6)  # bound once
    bound = {"stale_token": "c", "worker": "host:4", "claimed_before": after}
    assert not take_over_place(store, "s", 0, token="e", **bound)  # a bound place stays
    assert not release_place(store, "s", 0, "c")
    assert claim_place(store, "s", 1, "f", "host:5")
    assert release_place(store, "s", 1, "f")  # unbound: given back
    assert [(c.place, c.config, c.token) for c in place_claims(store, "s")] == [(0, 5, "c")]


# --------------------------------------------------------------------------------------------
# what holds a place
# --------------------------------------------------------------------------------------------


def test_occupancy_counts_configurations_that_began_without_a_place_and_takes_the_lowest_free(
    frozen: Callable[..., FrozenTrial],
) -> None:
    now = datetime(2026, 1, 1, 12)
    old, fresh = now - timedelta(hours=1), now
    claims = (
        PlaceClaim(0, 1, "t0", old),  # configuration 1 holds place 0
        PlaceClaim(2, None, "t2", fresh),  # claimed a moment ago: its trial is being taken
        PlaceClaim(3, None, "t3", old),  # claimed long ago by a process that died
    )
    legacy = frozen(0, {0: 0.5}, state=TrialState.COMPLETE)  # began before places existed
    requeued = frozen(1, {}, state=TrialState.WAITING, requeued="was interrupted")
    baseline = frozen(7, {}, state=TrialState.WAITING, baseline="b")
    retry = frozen(8, {}, state=TrialState.WAITING)
    retry.system_attrs = {"failed_trial": 0}
    trials = [legacy, requeued, baseline, retry]
    occ = Occupancy(6, claims, frozenset(places.began(trials)), (requeued, baseline, retry), now)
    assert occ.bound == {1} and occ.began == {0}
    assert occ.limit == 5  # configuration 0 takes one of the 6 places without a row
    assert list(occ.free_places()) == [1, 4]  # 5 - 3 rows: the two lowest numbers not claimed
    assert [c.place for c in occ.stale()] == [3]
    assert occ.holds(requeued) and occ.holds(retry) and not occ.holds(baseline)
    assert occ.room() and occ.takeable() and occ.room_to_queue()  # 3 places for 1 baseline
    lowered = Occupancy(3, claims, occ.began, (baseline,), now)  # the target lowered to 3
    assert (
        list(lowered.free_places()) == [] and lowered.stale() == []
    )  # 3 rows exceed its limit of 2
    assert not lowered.room() and not lowered.takeable() and not lowered.room_to_queue()


# --------------------------------------------------------------------------------------------
# PlacedStudy: what a worker takes
# --------------------------------------------------------------------------------------------


def test_workers_start_no_more_configurations_than_places_and_still_take_those_that_hold_one(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    base = new_study(url)
    base.enqueue_trial({"x": 0.1}, user_attrs={"baseline": "b"})  # a new configuration, queued
    a, b = worker(url, 3, "host:1"), worker(url, 3, "host:2")
    first = a.ask()  # the queued baseline, in place 0
    assert first.number == 0 and claims_of(a) == [(0, 0)]
    second = b.ask()  # a new trial, in place 1
    assert second.number == 1 and claims_of(b) == [(0, 0), (1, 1)]
    requeue(b, optuna_ids.trial_id(second), "was interrupted")  # back in the queue
    again = a.ask()  # taken again: its configuration holds place 1 already
    assert again.number == 1 and len(claims_of(a)) == 2
    third = b.ask()
    assert third.number == 2 and claims_of(b) == [(0, 0), (1, 1), (2, 2)]
    for study in (a, b):
        with pytest.raises(NoPlace):
            study.ask()
        assert not places.room(study, study.get_trials(), 3)
    for study, trial in ((a, first), (a, again), (b, third)):
        finish(study, trial)
    assert len(a.get_trials()) == 3  # the refused asks created nothing
    # a retry of trial 1 (its process died): it holds its configuration's place
    b.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params={"x": 0.3},
            distributions=X,
            system_attrs={"failed_trial": 1},
        )
    )
    base.enqueue_trial({"x": 0.9}, user_attrs={"baseline": "late"})  # no place left for it
    assert places.room(b, b.get_trials(), 3)
    retry = b.ask()
    assert retry.number == 3 and config_of(optuna_ids.frozen(b, retry)) == 1
    with pytest.raises(NoPlace):
        a.ask()  # only the late baseline is queued, and it needs a place
    finish(b, retry)
    trials = a.get_trials()
    assert [t.state for t in trials][-1] == TrialState.WAITING  # left for a larger target
    assert len(claims_of(a)) == 3


def test_a_claim_left_by_a_killed_process_is_taken_over_after_the_grace_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    new_study(url)
    a = worker(url, 1, "host:1")
    # a process claimed the only place and was killed before it took its trial
    assert claim_place(a.claimant.store, "s", 0, "dead", "host:9")
    assert not places.room(a, a.get_trials(), 1)
    with pytest.raises(NoPlace):
        a.ask()  # the claim is fresh: its process may still take its trial
    monkeypatch.setattr(places, "CLAIM_GRACE", -1.0)
    assert places.room(a, a.get_trials(), 1)
    trial = a.ask()
    assert trial.number == 0 and claims_of(a) == [(0, 0)]
    with pytest.raises(NoPlace):
        a.ask()
    assert len(a.get_trials()) == 1


def test_a_queued_trial_given_its_place_and_put_back_meanwhile_takes_no_second_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    new_study(url).enqueue_trial({"x": 0.1}, user_attrs={"baseline": "b"})
    a, b = worker(url, 2, "host:1"), worker(url, 2, "host:2")
    take_queued, once = optuna_ids.take_queued, [True]

    def meanwhile(study: optuna.Study, trial: FrozenTrial) -> bool:
        if study is a and once and once.pop():
            taken = b.ask()  # b takes the baseline into a place of its own, and is stopped
            requeue(b, optuna_ids.trial_id(taken), "was interrupted")
        return take_queued(study, trial)

    monkeypatch.setattr(optuna_ids, "take_queued", meanwhile)
    first = a.ask()  # a claimed a place for the baseline before b took it
    assert first.number == 0 and claims_of(a) == [(1, 0)]  # its configuration's place only
    monkeypatch.undo()
    second = a.ask()  # so the target's other place is left for a new configuration
    assert second.number == 1 and claims_of(a) == [(0, 1), (1, 0)]


def test_a_trial_whose_claim_was_lost_goes_back_to_the_queue_and_takes_a_place_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    new_study(url)
    a = worker(url, 1, "host:1")
    # this process stalled past the grace period: its claim was taken over meanwhile
    monkeypatch.setattr(places, "bind_place", lambda *args: False)
    with pytest.raises(NoPlace):
        a.ask()
    (trial,) = a.get_trials()
    assert trial.state == TrialState.WAITING and claims_of(a) == []  # nothing held, nothing lost
    monkeypatch.undo()
    again = a.ask()  # the same trial, a new configuration: it claims the place now
    assert again.number == 0 and claims_of(a) == [(0, 0)] and len(a.get_trials()) == 1


def test_a_new_study_forgets_the_places_of_a_deleted_study_of_its_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = new_study(url)
    store = Store(url)
    for place in range(3):
        assert claim_place(store, "s", place, f"t{place}", "host:1")
    assert bind_place(store, "s", 0, "t0", 0) and bind_place(store, "s", 1, "t1", 1)
    places.forget_leftover_places(study, store)  # no trial: its bound places are another's
    assert [(c.place, c.config) for c in place_claims(store, "s")] == [(2, None)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.enqueue_trial({"x": 0.5})
    assert claim_place(store, "s", 0, "t", "host:1") and bind_place(store, "s", 0, "t", 0)
    places.forget_leftover_places(study, store)  # it has a trial: its places stay
    assert len(place_claims(store, "s")) == 2


# --------------------------------------------------------------------------------------------
# processes asking at once
# --------------------------------------------------------------------------------------------


def test_processes_asking_at_once_start_exactly_the_target_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'many.db'}"
    told = ask_concurrently(url, "many", processes=6, target=14)
    assert_exact_places(url, "many", 14, told)


# --------------------------------------------------------------------------------------------
# without a shared checkpoint store, a queued trial waits for the host of its checkpoint
# --------------------------------------------------------------------------------------------


def test_a_continuation_whose_checkpoint_is_elsewhere_is_left_to_its_host(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = new_study(url)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("worker", "machine-a:4242")
    trial.set_user_attr("paused_at_epoch", 1)
    study.tell(trial, state=TrialState.PRUNED)
    parent = study.get_trials()[0]
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=parent.params,
            distributions=parent.distributions,
            user_attrs={"config": 0, "promoted_from": 0, "promoted_at_epoch": 1},
        )
    )
    assert places.checkpoint_hosts(study.get_trials()) == {0: "machine-a"}

    def on(host: str, target: int, local: bool) -> PlacedStudy:
        s = worker(url, target, f"{host}:1")
        s.claimant = Claimant(s.claimant.store, target, f"{host}:1", local_checkpoints=local)
        return s

    # machine B with room for a new configuration starts one; machine A continues its own
    b = on("machine-b", 3, local=True)
    assert b.take() != optuna_ids.id_of_number(b, 1)
    a = on("machine-a", 3, local=True)
    assert a.take() == optuna_ids.id_of_number(a, 1)


def test_with_a_shared_store_or_nothing_else_to_do_any_host_continues_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = new_study(url)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("worker", "machine-a:4242")
    study.tell(trial, state=TrialState.PRUNED)
    parent = study.get_trials()[0]
    for _ in range(2):
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=parent.params,
                distributions=parent.distributions,
                user_attrs={"config": 0, "promoted_from": 0, "promoted_at_epoch": 1},
            )
        )
    shared = worker(url, 3, "machine-b:1")  # shared checkpoints: the queue in order
    assert shared.take() == optuna_ids.id_of_number(shared, 1)
    full = worker(url, 1, "machine-b:2")  # a target of 1, held by configuration 0: no new one
    full.claimant = Claimant(full.claimant.store, 1, "machine-b:2", local_checkpoints=True)
    assert full.take() == optuna_ids.id_of_number(full, 2)
