"""Folds over a study's trials that remember the finished ones: a worker's per-trial
coordination (how many configurations finished, which trials were continued or retried, the
values at a rung, which configurations began) reads every trial of the study, and at 10,000
trials walking them all several times per trial is most of its time (docs/benchmarks.md §13).

A trial that finished never changes again (Optuna refuses to update it), and a study's trials
come in number order with the finished ones as the same objects from one read to the next
(Optuna's cached storage, :class:`sweeper.store.optuna_ids.TrialList`). So a :class:`Fold` keeps
its state over the longest run of finished trials from the first, and each call folds only the
trials after it: the newly finished ones into the kept state, the rest (running, queued) into a
copy. Given another list (another study, or trials read anew), it notices that the last trial
it kept is not where it was and starts again from the first trial. Hand-written because the
coordination rules are sweeper's own; Optuna caches the rows, not what is derived from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from optuna.trial import FrozenTrial

S = TypeVar("S")


class Fold(Generic[S]):
    """``fold(trials)``: ``start()`` stepped through ``trials`` by ``step(state, trial)``,
    remembering the finished prefix; ``copy(state)`` must give a state ``step`` may change
    without changing the kept one."""

    def __init__(
        self,
        start: Callable[[], S],
        step: Callable[[S, FrozenTrial], None],
        copy: Callable[[S], S],
    ) -> None:
        self._start, self._step, self._copy = start, step, copy
        self._state = start()
        self._done = 0  # trials folded into the kept state: a finished prefix
        self._last: FrozenTrial | None = None  # the last of them, to recognise the list

    def __call__(self, trials: Sequence[FrozenTrial]) -> S:
        done = self._done
        if done and (done > len(trials) or trials[done - 1] is not self._last):
            self._state, done = self._start(), 0  # another list: fold it from the first
        while done < len(trials) and trials[done].state.is_finished():
            self._step(self._state, trials[done])
            done += 1
        self._done = done
        self._last = trials[done - 1] if done else None
        if done == len(trials):
            return self._copy(self._state)
        state = self._copy(self._state)
        for trial in trials[done:]:
            self._step(state, trial)
        return state
