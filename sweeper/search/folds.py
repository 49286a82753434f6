"""Folds over a study's trials that remember the finished ones: a worker's per-trial
coordination (how many configurations finished, which trials were continued or retried, the
values at a rung, which configurations began) reads every trial of the study, and at 10,000
trials walking them all several times per trial is most of its time (docs/benchmarks.md §13).

A trial that finished never changes again (Optuna refuses to update it), and a study's trials
come in number order with the finished ones as the same objects from one read to the next
(Optuna's cached storage, :class:`sweeper.store.optuna_ids.TrialList`). So a :class:`Fold` keeps
its state over the finished trials it has seen, and each call folds only the trials that are new
or were unfinished: the newly finished ones into the kept state, the rest (running, queued) into
a copy. Given another list (another study, or trials read anew), it notices that a trial it kept
is not where it was and starts again from the first trial. Hand-written because the
coordination rules are sweeper's own; Optuna caches the rows, not what is derived from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from optuna.trial import FrozenTrial

S = TypeVar("S")


class Fold(Generic[S]):
    """``fold(trials)``: ``start()`` stepped through ``trials`` by ``step(state, trial)``, in
    any order (the rules are sets, counts and maxima); ``copy(state)`` must give a state
    ``step`` may change without changing the kept one.

    The kept state holds every finished trial seen; the unfinished ones seen (running,
    queued) are remembered by position and folded into a copy at each call until they finish,
    when they join the kept state. So a call costs the trials that are new or unfinished,
    whatever the study's size; a trial queued for long does not hold the others back."""

    def __init__(
        self,
        start: Callable[[], S],
        step: Callable[[S, FrozenTrial], None],
        copy: Callable[[S], S],
    ) -> None:
        self._start, self._step, self._copy = start, step, copy
        self._reset()

    def _reset(self) -> None:
        self._state = self._start()
        self._seen = 0  # positions of the list looked at
        self._open: list[int] = []  # positions of the unfinished trials among them
        self._anchor: tuple[int, FrozenTrial] | None = None  # a finished trial kept, and where

    def _same_list(self, trials: Sequence[FrozenTrial]) -> bool:
        if self._seen > len(trials):
            return False
        if self._anchor is None:
            return self._seen == 0
        at, trial = self._anchor
        return trials[at] is trial

    def __call__(self, trials: Sequence[FrozenTrial]) -> S:
        if not self._same_list(trials):
            self._reset()  # another list (another study, or read anew): fold it all
        still_open = []
        for at in self._open:
            if trials[at].state.is_finished():
                self._step(self._state, trials[at])
                self._anchor = (at, trials[at])
            else:
                still_open.append(at)
        for at in range(self._seen, len(trials)):
            if trials[at].state.is_finished():
                self._step(self._state, trials[at])
                self._anchor = (at, trials[at])
            else:
                still_open.append(at)
        self._open, self._seen = still_open, len(trials)
        state = self._copy(self._state)
        for at in still_open:
            self._step(state, trials[at])
        return state
