"""Configurations, not trial segments: the read side's unit of a multi-fidelity study.

Under ASHA (:mod:`sweeper.search.promotion`) one configuration is a chain of Optuna trials: a
first trial paused at a rung (PRUNED, ``paused_at_epoch``), a continuation promoted from it, and
so on, plus the retry copies of attempts whose process died. They share one ``config`` number.
This module folds a study's trials into one :class:`Configuration` each, with the state a person
means (complete, paused at epoch k and resumable, stopped by a rule, failed, running, waiting) and
its validation accuracy after every epoch it trained, each epoch counted once.

No Keras, no store: it reads frozen trials.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from sweeper.search import promotion as promo
from sweeper.search.trial_record import TrialRecord


class ConfigState(enum.StrEnum):
    """Where a configuration stands."""

    COMPLETE = "complete"  # trained its full length
    PAUSED = "paused"  # at a rung, its checkpoint kept: a promotion continues it
    BUDGET = "budget"  # paused because the epoch budget ran out: a larger budget continues it
    PRUNED = "pruned"  # stopped by Optuna's pruner
    STALLED = "stalled"  # stopped: it learned nothing
    DIVERGED = "diverged"  # stopped: its loss was not finite
    FAILED = "failed"  # an error in its configuration
    RUNNING = "running"
    WAITING = "waiting"  # queued (a baseline, a promotion, a requeued trial)


STOPPED = (ConfigState.PRUNED, ConfigState.STALLED, ConfigState.DIVERGED)
RESUMABLE = (ConfigState.PAUSED, ConfigState.BUDGET)


@dataclass(frozen=True)
class Configuration:
    """One configuration of a study: its chain of trials and what it reached."""

    number: int  # the number of its chain's first trial
    trials: tuple[FrozenTrial, ...]  # every trial of the chain, by number
    state: ConfigState
    values: Mapping[int, float]  # epochs trained -> validation accuracy after them

    @property
    def last(self) -> FrozenTrial:
        """The chain's latest trial (the one that says where it stands)."""
        return self.trials[-1]

    @property
    def first(self) -> FrozenTrial:
        return self.trials[0]

    @property
    def epochs(self) -> int:
        """Epochs it trained (the highest epoch with a value)."""
        return max(self.values, default=0)

    @property
    def value(self) -> float | None:
        """Its validation accuracy where it stands: the final value when complete, else after
        its last trained epoch (None before any)."""
        if self.state is ConfigState.COMPLETE and self.last.value is not None:
            return float(self.last.value)
        return self.values.get(self.epochs)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.first.params)

    @cached_property
    def record(self) -> TrialRecord:
        """The attributes of its first trial (what it was queued as: baseline, reference)."""
        return TrialRecord.of(self.first)

    @property
    def baseline(self) -> str | None:
        return self.record.baseline or None

    @property
    def reference(self) -> bool:
        return bool(self.record.reference)

    @property
    def tuned(self) -> bool:
        """A searched configuration: neither a baseline nor the reference configuration."""
        return self.baseline is None and not self.reference

    @property
    def chain(self) -> str:
        """Its trial numbers, ``3 -> 11 -> 20``."""
        return " -> ".join(str(t.number) for t in self.trials)

    def state_text(self) -> str:
        """``complete``, ``paused at epoch 3``, ``stalled``, … in words."""
        if self.state in RESUMABLE:
            why = " (epoch budget spent)" if self.state is ConfigState.BUDGET else ""
            return f"paused at epoch {self.epochs}{why}"
        return str(self.state)


def state_of(
    state: TrialState, record: TrialRecord, number: int, continued: set[int]
) -> ConfigState:
    """Where a configuration stands, from its latest trial: its Optuna ``state``, its
    attributes' ``record`` and ``number``, and the numbers of the trials a later trial
    ``continued``."""
    if state == TrialState.COMPLETE:
        return ConfigState.COMPLETE
    if state == TrialState.RUNNING:
        return ConfigState.RUNNING
    if state == TrialState.WAITING:
        return ConfigState.WAITING
    if state == TrialState.FAIL:
        return ConfigState.FAILED
    if record.paused_at is not None and number not in continued:
        if record.pause_reason == "budget":
            return ConfigState.BUDGET
        return ConfigState.PAUSED
    outcome = record.outcome
    if outcome == "stalled":
        return ConfigState.STALLED
    if outcome == "diverged":
        return ConfigState.DIVERGED
    return ConfigState.PRUNED


def latest(chain: Iterable[tuple[int, TrialState]]) -> int:
    """Of a chain's (number, state) pairs, the number of the trial that says where it stands:
    the latest one that did not fail (a retry replaces a failed attempt), else the latest."""
    return max(chain, key=lambda ns: (ns[1] != TrialState.FAIL, ns[0]))[0]


def configurations(trials: Iterable[FrozenTrial]) -> list[Configuration]:
    """Every configuration of a study's trials, by number. A retried failed attempt and a
    continuation belong to the configuration they continue; an epoch's value reported by
    several trials of a chain (a continuation carries its parent's) counts once."""
    chains: dict[int, list[FrozenTrial]] = defaultdict(list)
    trials = list(trials)
    for t in trials:
        chains[promo.config_of(t)].append(t)
    continued = promo.promoted(trials)
    out = []
    for number in sorted(chains):
        chain = sorted(chains[number], key=lambda t: t.number)
        values: dict[int, float] = {}
        for t in chain:
            for step, value in t.intermediate_values.items():
                values.setdefault(int(step) + 1, float(value))
        which = latest((t.number, t.state) for t in chain)
        last = next(t for t in chain if t.number == which)
        chain.remove(last)
        chain.append(last)  # the one that says where it stands goes last
        state = state_of(last.state, TrialRecord.of(last), last.number, continued)
        out.append(Configuration(number, tuple(chain), state, values))
    return out


def count_configurations(configs: Iterable[Configuration]) -> dict[str, int]:
    """Configurations by state (every :class:`ConfigState`, zeros included)."""
    counts = {str(s): 0 for s in ConfigState}
    for c in configs:
        counts[str(c.state)] += 1
    return counts


def values_at(configs: Iterable[Configuration], epochs: int) -> dict[int, float]:
    """Per tuned configuration that trained ``epochs`` epochs, its value after them."""
    return {c.number: c.values[epochs] for c in configs if c.tuned and epochs in c.values}


def counts_text(counts: Mapping[str, int]) -> str:
    """Configurations by state in words: ``9 complete, 13 paused (resumable), 2 stopped (1
    stalled, 1 diverged), 0 failed``, then running, waiting and budget-paused ones if any."""
    paused = counts.get("paused", 0)
    stopped = {s: counts.get(str(s), 0) for s in STOPPED}
    n_stopped = sum(stopped.values())
    detail = ", ".join(f"{n} {s}" for s, n in stopped.items() if n)
    parts = [
        f"{counts.get('complete', 0)} complete",
        f"{paused} paused (resumable)",
        f"{n_stopped} stopped" + (f" ({detail})" if detail else ""),
        f"{counts.get('failed', 0)} failed",
    ]
    if counts.get("budget"):
        parts.append(f"{counts['budget']} paused for the epoch budget")
    for key in ("running", "waiting"):
        if counts.get(key):
            parts.append(f"{counts[key]} {key}")
    return ", ".join(parts)
