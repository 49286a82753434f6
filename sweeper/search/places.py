"""A configuration's place in its study: however many workers ask at once, no more configurations
start than the study's target, so a study ends with exactly its target of finished ones.

The target (``n_trials``) counts configurations. A worker that counted the finished and running
ones and started a new configuration while the count was below the target could meet another
worker counting at the same moment: both saw room, both started one, and the study ended with one
configuration more. So a new configuration takes a *place* first: a row of ``sweeper_places``
(:mod:`sweeper.store.place_claims`), unique per (study, place), ``place`` one of ``0 ..
target - 1``, claimed before its trial is taken and bound to the configuration (the number of its
first trial) right after. Of two workers claiming the last place one wins; the other starts no
new configuration.

Which configurations hold a place: those bound to one, and those that began without one (a
finished trial, or one with its ``config`` attribute, in a store written before places existed),
which take one of the target's places without a row. Every later trial of a configuration holds
its place already: a continuation of a paused trial, a retry of a trial whose process died, a
trial put back in the queue; any worker takes those without a claim, so a worker that finds no
place still continues them. A queued trial of a new configuration (a baseline, the reference, a
trial put back before it was given its place) needs a place as a new trial does.

:class:`PlacedStudy` is a worker's study: its :meth:`~PlacedStudy.ask` (called by
``study.optimize`` and by the packed loop) takes the oldest queued trial this worker may run,
claiming a place for one that needs it, else a new trial under a claimed place, else raises
:class:`NoPlace` before any trial is taken or created.

No place leaks. A bound place belongs to a configuration that finishes, or whose trial is retried
or queued again and then finishes. A claim whose process died before binding it is taken over by
the next worker that needs a place once it is older than
:data:`~sweeper.store.store.CLAIM_GRACE` seconds, as a stale promotion claim is
(:func:`sweeper.search.promotion.stale_claims`); a trial that process had taken goes back to the
queue after the heartbeat's grace period (:func:`sweeper.search.recovery.unowned`) and claims a
place when it is taken again. No Keras here.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper import faults
from sweeper.search import promotion as promo
from sweeper.search.folds import Fold
from sweeper.search.outcomes import FINISHED, finished_count
from sweeper.search.recovery import requeue
from sweeper.search.trial_record import CONFIG_ATTR, WORKER_ATTR
from sweeper.store import optuna_ids
from sweeper.store.place_claims import (
    PlaceClaim,
    PlaceReader,
    bind_place,
    claim_place,
    forget_bound_places,
    release_place,
    take_over_place,
)
from sweeper.store.store import CLAIM_GRACE, Store
from sweeper.store.tables import utcnow

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

log = logging.getLogger(__name__)


class NoPlace(Exception):
    """Nothing this worker may take now: every place of the study's target is claimed and no
    queued trial holds one (raised by :meth:`PlacedStudy.ask` before a trial is taken)."""


def _add_began(out: set[int], t: FrozenTrial) -> None:
    if t.state in FINISHED or CONFIG_ATTR in t.user_attrs:
        out.add(promo.config_of(t))


_began: Fold[set[int]] = Fold(set, _add_began, set.copy)


def _add_queued(out: list[FrozenTrial], t: FrozenTrial) -> None:
    if t.state == TrialState.WAITING:
        out.append(t)


_queued: Fold[list[FrozenTrial]] = Fold(list, _add_queued, list.copy)  # only unfinished ones


def began(trials: Sequence[FrozenTrial]) -> set[int]:
    """Configurations that began training: a trial of theirs finished, or carries the ``config``
    attribute (set when an attempt samples it; a continuation is created with it)."""
    return _began(trials)


@dataclass(frozen=True)
class Occupancy:
    """The places of one study's target and what holds them, read at one moment."""

    target: int
    claims: tuple[PlaceClaim, ...]
    began: frozenset[int]  # configurations that began training
    queued: tuple[FrozenTrial, ...]  # WAITING trials, oldest first
    cutoff: datetime  # an unbound claim made before it is stale

    @functools.cached_property
    def bound(self) -> frozenset[int]:
        """Configurations bound to a place."""
        return frozenset(c.config for c in self.claims if c.config is not None)

    def holds(self, trial: FrozenTrial) -> bool:
        """Whether ``trial``'s configuration holds a place (a worker takes it without a claim)."""
        config = promo.config_of(trial)
        return config in self.bound or config in self.began

    @property
    def limit(self) -> int:
        """How many places may have a row: the target less the configurations that began
        without one (in a store written before places existed)."""
        return self.target - len(self.began - self.bound)

    def free_count(self) -> int:
        """How many places a new claim may take: as many as the limit leaves."""
        return max(0, self.limit - len(self.claims))

    def free_places(self) -> Iterator[int]:
        """The places a new claim may take, lowest first: the lowest numbers not claimed, as many
        as the limit leaves. Every worker tries the same numbers, so two claims meet on one.
        Lazily: a claim usually takes the first."""
        n = self.free_count()
        taken = {c.place for c in self.claims}
        place = 0
        while n > 0:
            if place not in taken:
                yield place
                n -= 1
            place += 1

    def stale(self) -> list[PlaceClaim]:
        """Unbound claims older than the grace period (their process died before taking its
        trial), to take over; none while the claims exceed the limit (a target lowered since)."""
        if len(self.claims) > self.limit:
            return []
        return [c for c in self.claims if c.config is None and c.claimed_at < self.cutoff]

    def room(self) -> bool:
        """Whether a new configuration may start: a free place, or a stale claim to take over."""
        return bool(self.free_count() or self.stale())

    def takeable(self) -> bool:
        """Whether a worker may take a trial now: a queued one that holds a place, or room."""
        return any(self.holds(t) for t in self.queued) or self.room()

    def room_to_queue(self) -> bool:
        """Whether a new configuration queued now would find a place: the places left outnumber
        the queued trials that still need one."""
        needing = sum(1 for t in self.queued if not self.holds(t))
        return self.free_count() + len(self.stale()) > needing


def occupancy(places: PlaceReader, target: int, trials: list[FrozenTrial]) -> Occupancy:
    """The study's places under ``target``, from ``trials`` read just before: the claims are
    read after them, so a configuration seen beginning has its bound place among them."""
    claims = tuple(places.read())
    queued = sorted(_queued(trials), key=lambda t: t.number)
    return Occupancy(
        target=target,
        claims=claims,
        began=frozenset(began(trials)),
        queued=tuple(queued),
        cutoff=utcnow() - timedelta(seconds=CLAIM_GRACE),
    )


@dataclass(frozen=True)
class Claimant:
    """What a worker's study needs to claim places: the store, the target, the worker."""

    store: Store
    target: int
    worker: str  # host:pid, written with each claim
    # no shared checkpoint store: a queued trial whose checkpoint is on another host is taken
    # last (after a new configuration), so that its own host continues it (sweeper.search.places)
    local_checkpoints: bool = False


@dataclass(frozen=True)
class _Claim:
    place: int
    token: str


class PlacedStudy(optuna.Study):
    """A worker's study: :meth:`ask` takes a trial only where the study has a place for it."""

    def __init__(
        self,
        study_name: str,
        storage: optuna.storages.BaseStorage,
        sampler: optuna.samplers.BaseSampler | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
        *,
        claimant: Claimant,
    ) -> None:
        super().__init__(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
        self.claimant = claimant
        self._trial_list = optuna_ids.TrialList(self)
        self._places = PlaceReader(claimant.store, study_name)

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        """Optuna's ``get_trials``; without a copy, from the worker's own list, read by what
        changed (:class:`~sweeper.store.optuna_ids.TrialList`): a worker asks several times
        per trial, and the study may hold thousands."""
        if deepcopy:
            return super().get_trials(deepcopy=True, states=states)
        trials = self._trial_list.read()
        return trials if states is None else [t for t in trials if t.state in states]

    def occupancy(self, trials: list[FrozenTrial]) -> Occupancy:
        return occupancy(self._places, self.claimant.target, trials)

    def ask(self, fixed_distributions: dict[str, BaseDistribution] | None = None) -> optuna.Trial:
        """The next trial this worker may run: the oldest queued one it may take (one that needs
        a place only with a place claimed for it), else a new one under a claimed place.
        :class:`NoPlace` when there is none."""
        if fixed_distributions:
            raise ValueError("a sweeper study's trials sample their own parameters")
        return optuna_ids.trial_of(self, self.take())

    def take(self) -> int:
        """Take a trial as :meth:`ask` says: its storage id, RUNNING, its place held."""
        trials = self.get_trials(deepcopy=False)
        now = self.occupancy(trials)
        near, far = self._by_host(now.queued, trials)
        claim: _Claim | None = None
        claimed = False  # a claim was tried (once: the rest of the queue is taken without one)
        try:
            for t in near:
                holds = now.holds(t)
                if not holds and claim is None:
                    if claimed:
                        continue
                    claimed = True
                    claim = self._claim(now)
                    if claim is None:
                        continue  # no place: only queued trials that hold one
                if not optuna_ids.take_queued(self, t):
                    continue  # another worker took it a moment ago
                trial_id = optuna_ids.trial_id(t)
                if not holds:
                    assert claim is not None
                    config = promo.config_of(t)
                    if config in self._bound():  # given its place, then put back, meanwhile
                        self._release(claim)
                    else:
                        self._bind(claim, config, trial_id)
                    claim = None
                return trial_id
            if claim is None and not claimed:
                claim = self._claim(now)
            if claim is None:
                for t in far:  # nothing else to do here: continue it, from epoch 0 (said then)
                    if now.holds(t) and optuna_ids.take_queued(self, t):
                        return optuna_ids.trial_id(t)
                raise NoPlace(
                    f"study {self.study_name}: every place of its {self.claimant.target} is taken"
                )
            trial_id = optuna_ids.new_trial_id(self)
            self._bind(claim, optuna_ids.number_of_id(self, trial_id), trial_id)
            claim = None
            return trial_id
        finally:
            if claim is not None:  # an error between the claim and its trial: give it back
                self._release(claim)

    def _by_host(
        self, queued: Sequence[FrozenTrial], trials: list[FrozenTrial]
    ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """The queued trials this worker takes in order, and those it leaves to the host that
        holds their checkpoint (only without a shared checkpoint store): a continuation, retry
        or requeued trial whose epochs were trained on another host. Taken here, it would
        restart from epoch 0; its host continues it from where it stopped."""
        if not self.claimant.local_checkpoints or not queued:
            return list(queued), []
        here = self.claimant.worker.rpartition(":")[0]
        hosts = checkpoint_hosts(trials)
        near: list[FrozenTrial] = []
        far: list[FrozenTrial] = []
        for t in queued:
            host = hosts.get(promo.config_of(t))
            (far if host and host != here else near).append(t)
        return near, far

    def _claim(self, now: Occupancy) -> _Claim | None:
        """Claim a free place, else take over a stale claim; None when neither is left."""
        c, token = self.claimant, uuid.uuid4().hex
        for place in now.free_places():
            if claim_place(c.store, self.study_name, place, token, c.worker):
                faults.point("after-place")
                return _Claim(place, token)
        for stale in now.stale():
            if take_over_place(
                c.store,
                self.study_name,
                stale.place,
                stale_token=stale.token,
                token=token,
                worker=c.worker,
                claimed_before=now.cutoff,
            ):
                log.info(
                    "place %d of study %s: its claim, left by a process that died, is taken over",
                    stale.place,
                    self.study_name,
                )
                return _Claim(stale.place, token)
        return None

    def _bind(self, claim: _Claim, config: int, trial_id: int) -> None:
        """Bind ``claim`` to the configuration of the trial just taken. A claim taken over
        meanwhile (this process stalled past the grace period) is replaced by another, or the
        trial goes back to the queue and :class:`NoPlace` is raised."""
        store, name = self.claimant.store, self.study_name
        if bind_place(store, name, claim.place, claim.token, config):
            return
        again = self._claim(self.occupancy(self.get_trials(deepcopy=False)))
        if again is not None:
            if bind_place(store, name, again.place, again.token, config):
                return
            self._release(again)
        requeue(self, trial_id, "found no place in the study")
        raise NoPlace(f"study {name}: the place claimed for configuration {config} was lost")

    def _bound(self) -> set[int]:
        """Configurations bound to a place now."""
        return {c.config for c in self._places.read() if c.config is not None}

    def _release(self, claim: _Claim) -> None:
        try:
            release_place(self.claimant.store, self.study_name, claim.place, claim.token)
        except Exception:  # the store failing is why: the claim goes stale and is taken over
            log.debug("place %d of study %s not released", claim.place, self.study_name)


def checkpoint_hosts(trials: Iterable[FrozenTrial]) -> dict[int, str]:
    """Per configuration, the host whose checkpoint folder holds its epochs: that of the newest
    of its trials a worker stamped (a configuration's trials share one folder). A configuration
    no worker ran yet is not in it."""
    newest: dict[int, FrozenTrial] = {}
    for t in trials:
        if t.user_attrs.get(WORKER_ATTR):
            config = promo.config_of(t)
            if config not in newest or t.number > newest[config].number:
                newest[config] = t
    hosts = {c: str(t.user_attrs[WORKER_ATTR]).rpartition(":")[0] for c, t in newest.items()}
    return {c: h for c, h in hosts.items() if h}


def room(study: optuna.Study, trials: list[FrozenTrial], target: int) -> bool:
    """Whether a worker of ``study`` may take a trial now (see :meth:`Occupancy.takeable`); for
    a study without places, whether its finished and running trials leave room in ``target``."""
    if isinstance(study, PlacedStudy):
        return study.occupancy(trials).takeable()
    running = sum(1 for t in trials if t.state == TrialState.RUNNING)
    return finished_count(trials) + running < target


def room_to_queue(study: optuna.Study, trials: list[FrozenTrial], target: int) -> bool:
    """Whether a new configuration queued now would find a place (see
    :meth:`Occupancy.room_to_queue`); for a study without places, whether the finished, running
    and queued trials leave room in ``target``."""
    if isinstance(study, PlacedStudy):
        return study.occupancy(trials).room_to_queue()
    taken = sum(1 for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING))
    return finished_count(trials) + taken < target


def forget_leftover_places(study: optuna.Study, store: Store) -> None:
    """A study without trials holds no place: bound places under its name are those of a
    deleted study of the same name, and go (else the new study would find its places taken)."""
    if study.get_trials(deepcopy=False):
        return
    gone = forget_bound_places(store, study.study_name)
    if gone:
        log.info(
            "study %s: %d places of a deleted study of its name forgotten", study.study_name, gone
        )
