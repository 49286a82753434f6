"""Multi-fidelity search that continues configurations instead of restarting them.

Asynchronous successive halving (ASHA; Li et al., MLSys 2020) over epochs, written here because
Optuna's pruners only decide *stop or go on* at the moment a trial reaches a rung: a trial that
is not among the best then is lost, even when it later would be. Here it is *paused* instead,
with its training state kept, and may be *promoted* later:

* rungs are epoch counts ``min_resource * factor**k`` below the study's ``epochs``; with
  ``[pruner] brackets = N`` a configuration in bracket ``b`` (:func:`bracket_of`, Hyperband's
  shares) is compared only at the rungs from the ``b``-th on, so some train their full length
  (a hedge against rungs that favour schedules which anneal early);
* a trial reaching a rung goes on at once when its validation accuracy is among the best
  ``1/factor`` of every configuration that reached that rung (at least ``factor`` of them); with
  ``[pruner] compare = "annealed"`` only of those whose rate has fallen no further than its own
  by then (:func:`peers`): a cosine decay one epoch into nine is not judged against a decay that
  has already cut its rate tenfold;
  otherwise it ends PRUNED, marked paused (``paused_at_epoch``), its checkpoint kept;
* whenever a worker is about to start a trial, the best paused trial that has since entered the
  top ``1/factor`` of its rung is promoted first (highest rung first; once the study's target
  leaves no room for new configurations, the top ``ceil(n/factor)``, so the best ones always
  finish): a new Optuna trial with
  the same parameters, the parent's intermediate values and a link to it
  (``promoted_from``, ``promoted_at_epoch``), which resumes from the parent's checkpoint and
  follows the same schedule curve, defined for the full ``epochs`` from the start.

One Optuna trial per segment, linked to its parent: every trial stays an ordinary finished or
running Optuna trial (PRUNED at its rung, then COMPLETE or PRUNED further on), so the optuna CLI,
optuna-dashboard and the samplers read the study as usual; a configuration is the chain of trials
sharing one ``config`` number (the first trial's). A promotion is claimed in the store
(:meth:`sweeper.store.store.Store.claim_promotion`) before its trial is created, so two workers never
promote the same trial; a claim whose trial was never created (its process died in between) is
created again by the next worker after :data:`~sweeper.store.store.CLAIM_GRACE` seconds (the
heartbeat grace period).

A trial paused because the study's epoch budget ran out (``pause_reason = "budget"``) is
continued first when a later run raises the budget.

No Keras here: it reads trials and decides.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper import faults
from sweeper.errors import ConfigError
from sweeper.search.folds import Fold
from sweeper.search.trial_record import (
    BASELINE_ATTR,
    CONFIG_ATTR,
    PAUSE_REASON_ATTR,
    PAUSED_ATTR,
    PROMOTED_AT_ATTR,
    PROMOTED_FROM_ATTR,
    REFERENCE_ATTR,
    SCHEDULE_ATTR,
    STEPS_PER_EPOCH_ATTR,
)
from sweeper.store.store import CLAIM_GRACE, Store

log = logging.getLogger(__name__)


def config_of(trial: FrozenTrial) -> int:
    """The configuration a trial belongs to: the number of its chain's first trial."""
    # one attribute, read for every trial of every promotion decision: read directly, without
    # building the whole TrialRecord
    value = trial.user_attrs.get(CONFIG_ATTR)
    if value is not None:
        return int(value)
    failed = trial.system_attrs.get("failed_trial")  # a retry copy of a trial run before
    return int(failed) if failed is not None else trial.number


def rungs(min_resource: int, factor: int, epochs: int) -> list[int]:
    """Epoch counts at which a configuration is compared: ``min_resource * factor**k < epochs``."""
    out = []
    r = max(1, min_resource)
    while r < epochs:
        out.append(r)
        r *= factor
    return out


def bracket_of(config: int, brackets: int, n_rungs: int, factor: int) -> int:
    """The bracket of configuration ``config``: how many of the first rungs it skips.

    Hyperband's shares (Li et al., JMLR 2018): with ``s_max`` the brackets beyond the first,
    bracket ``b`` gets ``ceil((s_max + 1) / (s + 1) * factor**s)`` configurations per round,
    ``s = s_max - b``. Configurations are spread over them by a low-discrepancy sequence of
    their number, so the split is the same on every worker and after every resume.
    """
    n = max(1, min(brackets, n_rungs + 1))
    if n == 1:
        return 0
    s_max = n - 1
    weights = [math.ceil((s_max + 1) / (s_max - b + 1) * factor ** (s_max - b)) for b in range(n)]
    u = (config * 0.6180339887498949) % 1.0 * sum(weights)
    for b, w in enumerate(weights):
        if u < w:
            return b
        u -= w
    return n - 1


def is_baseline(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get(BASELINE_ATTR))


def _add_parent(parents: set[int], t: FrozenTrial) -> None:
    if t.user_attrs.get(PROMOTED_FROM_ATTR) is not None:
        parents.add(int(t.user_attrs[PROMOTED_FROM_ATTR]))


_promoted: Fold[set[int]] = Fold(set, _add_parent, set.copy)


def promoted(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of the trials that a later trial continues."""
    return _promoted(trials)


def is_paused(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.PRUNED and trial.user_attrs.get(PAUSED_ATTR) is not None


def _rung_step(epochs_done: int) -> Callable[[dict[int, float], FrozenTrial], None]:
    step = epochs_done - 1

    def add(out: dict[int, float], t: FrozenTrial) -> None:
        if is_baseline(t):
            return
        value = t.intermediate_values.get(step)
        if value is None or not math.isfinite(value):
            return
        c = config_of(t)
        out[c] = max(out.get(c, -math.inf), float(value))

    return add


_rung_folds: dict[int, Fold[dict[int, float]]] = {}


def rung_values(trials: Sequence[FrozenTrial], epochs_done: int) -> dict[int, float]:
    """Per configuration, its validation accuracy after ``epochs_done`` epochs (if it got there).

    Read from the trials' intermediate values (step = 0-based epoch); a configuration whose
    chain holds the value twice (a child carries its parent's values) counts once. Baselines are
    reference points, not competitors: they are left out.
    """
    fold = _rung_folds.get(epochs_done)
    if fold is None:
        fold = _rung_folds[epochs_done] = Fold(dict, _rung_step(epochs_done), dict.copy)
    return fold(trials)


ANNEALED_SLACK = 0.1
"""``compare = "annealed"``: a configuration's peers at a rung are those with at least its share of
the rate left, less this much (so a constant rate and a cosine one epoch into nine are peers)."""


def rate_left(schedule: Mapping[str, object], steps_per_epoch: int, epochs_done: int) -> float:
    """The share of its highest rate so far that a stored schedule (``Schedule.to_dict``) applies
    in the first update after ``epochs_done`` epochs: 1 for a constant rate, near 0 for one that
    has annealed away."""
    from sweeper.training.schedules import from_dict

    rates = from_dict(schedule).curve(epochs_done * steps_per_epoch + 1)
    peak = float(rates.max())
    return float(rates[-1]) / peak if peak > 0 else 1.0


def _left_step(epochs_done: int) -> Callable[[dict[int, float], FrozenTrial], None]:
    def add(out: dict[int, float], t: FrozenTrial) -> None:
        c = config_of(t)
        schedule = t.user_attrs.get(SCHEDULE_ATTR)
        spe = t.user_attrs.get(STEPS_PER_EPOCH_ATTR)
        if c in out or is_baseline(t) or not isinstance(schedule, dict) or not spe:
            return
        try:
            out[c] = rate_left(schedule, int(spe), epochs_done)
        except ConfigError as exc:  # a schedule this version cannot rebuild: a peer of every one
            log.debug("trial %d: no rate left at epoch %d: %s", t.number, epochs_done, exc)

    return add


_left_folds: dict[int, Fold[dict[int, float]]] = {}


def rates_left(trials: Sequence[FrozenTrial], epochs_done: int) -> dict[int, float]:
    """Per configuration, :func:`rate_left` at the rung ``epochs_done`` (from the schedule its
    trials stored); baselines are left out, as in :func:`rung_values`."""
    fold = _left_folds.get(epochs_done)
    if fold is None:
        fold = _left_folds[epochs_done] = Fold(dict, _left_step(epochs_done), dict.copy)
    return fold(trials)


def peers(
    values: Mapping[int, float], left: Mapping[int, float], config: int, compare: str
) -> list[float]:
    """The rung values configuration ``config`` is compared with: every one (``compare =
    "all"``), or (``"annealed"``) those of the configurations with at least its share of the rate
    left, less :data:`ANNEALED_SLACK`: one whose rate has fallen further has had the easier
    comparison at this rung, so it does not count against it. A configuration whose schedule is
    not known has its full rate left."""
    if compare == "all":
        return list(values.values())
    mine = left.get(config, 1.0) - ANNEALED_SLACK
    return [v for c, v in values.items() if left.get(c, 1.0) >= mine]


def _add_paused(paused: dict[int, list[FrozenTrial]], t: FrozenTrial) -> None:
    if is_paused(t):
        # by the epochs it paused at; -1: paused because the epoch budget ran out
        budget = t.user_attrs.get(PAUSE_REASON_ATTR) == "budget"
        paused.setdefault(-1 if budget else int(t.user_attrs[PAUSED_ATTR]), []).append(t)


def _copy_paused(paused: dict[int, list[FrozenTrial]]) -> dict[int, list[FrozenTrial]]:
    return {r: list(ts) for r, ts in paused.items()}


# paused trials by the rung (epochs) they paused at, those the budget paused under -1
_paused: Fold[dict[int, list[FrozenTrial]]] = Fold(dict, _add_paused, _copy_paused)


def in_top(value: float, values: Sequence[float], factor: int, *, final: bool = False) -> bool:
    """Whether ``value`` is among the best ``len(values) // factor`` of ``values`` (which hold
    it): never while fewer than ``factor`` configurations reached the rung.

    ``final``: no new configuration will start (the study's target is taken), so nothing later
    can beat the ones paused now: the best ``ceil(len / factor)`` go on, at least one per rung,
    and a study always ends with its best configurations trained their full length.
    """
    k = -(-len(values) // factor) if final else len(values) // factor
    if k == 0:
        return False
    return value >= sorted(values, reverse=True)[k - 1]


@dataclass(frozen=True)
class Promotion:
    parent: FrozenTrial
    epochs_done: int
    reason: str  # "rung" | "budget"


def next_promotion(
    trials: Sequence[FrozenTrial],
    rung_list: Sequence[int],
    factor: int,
    claimed: Iterable[int] = (),
    *,
    final: bool = False,
    compare: str = "all",
) -> Promotion | None:
    """The paused trial to continue now, if any: budget-paused ones first, then the best paused
    trial that has entered the top ``1/factor`` of its rung (of its :func:`peers` there), highest
    rung first. Trials in ``claimed`` are being continued already."""
    taken = promoted(trials) | set(claimed)
    paused = _paused(trials)
    budget = [t for t in paused.get(-1, ()) if t.number not in taken]
    if budget:
        first = min(budget, key=lambda t: t.number)
        return Promotion(first, int(first.user_attrs[PAUSED_ATTR]), "budget")
    for r in sorted(rung_list, reverse=True):
        values = rung_values(trials, r)
        waiting = [t for t in paused.get(r, ()) if t.number not in taken and config_of(t) in values]
        if compare == "all":
            # the best paused one at the rung; when it is not in the top, none below it is
            best = max(waiting, key=lambda t: (values[config_of(t)], -t.number), default=None)
            waiting = [] if best is None else [best]
        else:  # each has peers of its own: the best that is in the top of its peers
            waiting.sort(key=lambda t: (-values[config_of(t)], t.number))
        left = rates_left(trials, r) if compare != "all" else {}
        for t in waiting:
            c = config_of(t)
            if in_top(values[c], peers(values, left, c, compare), factor, final=final):
                return Promotion(t, r, "rung")
    return None


def _reference_of(parent: FrozenTrial) -> dict[str, object]:
    """The reference marker a continuation keeps (it trains on with no rung either)."""
    ref = parent.user_attrs.get(REFERENCE_ATTR)
    return {} if ref is None else {REFERENCE_ATTR: ref}


def child_of(parent: FrozenTrial, epochs_done: int) -> FrozenTrial:
    """The WAITING trial that continues ``parent``: same parameters, its reported values."""
    return optuna.trial.create_trial(
        state=TrialState.WAITING,
        params=parent.params,
        distributions=parent.distributions,
        user_attrs={
            CONFIG_ATTR: config_of(parent),
            PROMOTED_FROM_ATTR: parent.number,
            PROMOTED_AT_ATTR: epochs_done,
            **_reference_of(parent),
        },
        intermediate_values={
            s: v for s, v in parent.intermediate_values.items() if s < epochs_done
        },
    )


def stale_claims(
    claims: Iterable[tuple[int, datetime]],
    trials: Sequence[FrozenTrial],
    now: datetime,
) -> list[int]:
    """Parents claimed more than :data:`CLAIM_GRACE` ago whose child trial does not exist."""
    have = promoted(trials)
    cutoff = now - timedelta(seconds=CLAIM_GRACE)
    return [p for p, at in claims if p not in have and at < cutoff]


def promote(
    study: optuna.Study,
    store: Store,
    rung_list: Sequence[int],
    factor: int,
    *,
    final: bool = False,
    compare: str = "all",
) -> int | None:
    """Continue one paused trial, if one has earned it: claim it, then create its child
    (``final``: no new configuration will start; see :func:`in_top`; ``compare``: see
    :func:`peers`).

    Returns the parent's number, or None. Claims left without a child by a process that died
    are completed here first.
    """
    name = study.study_name
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    claims = store.promotion_claims(name)
    for parent_number in stale_claims(claims, trials, store.now()):
        parent = by_number.get(parent_number)
        if parent is not None and is_paused(parent) and store.renew_claim(name, parent_number):
            study.add_trial(child_of(parent, int(parent.user_attrs[PAUSED_ATTR])))
            log.info("trial %d: its claimed promotion is created again", parent_number)
    claimed = {p for p, _ in claims}
    while (
        choice := next_promotion(trials, rung_list, factor, claimed, final=final, compare=compare)
    ) is not None:
        if store.claim_promotion(name, choice.parent.number):
            faults.point("after-claim")
            study.add_trial(child_of(choice.parent, choice.epochs_done))
            return choice.parent.number
        claimed.add(choice.parent.number)  # another worker took it a moment ago
    return None
