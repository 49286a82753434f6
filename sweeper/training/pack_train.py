"""Train K schedules at once to their end (:func:`train_packed`): a pack (:mod:`sweeper.training.packing`)
with a ``decide`` hook per copy, for benchmarks and tests; the study's trial loop drives a
:class:`~sweeper.training.packing.Pack` itself (:mod:`sweeper.search.pack_loop`).
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.pack_copies import ModelBuilder, PackedCopy
from sweeper.training.packing import Pack
from sweeper.training.train_trial import EpochRecord, TrainSettings, TrialStatus, reset_keras

if TYPE_CHECKING:
    from sweeper.training.data import Dataset
    from sweeper.training.schedule_base import Schedule

log = logging.getLogger(__name__)


class CopyStatus(enum.StrEnum):
    """How a copy's training ended: a trial's outcomes (``TrialStatus``), and ``PRUNED``."""

    COMPLETE = "complete"
    DIVERGED = "diverged"
    PAUSED = "paused"
    STALLED = "stalled"
    PRUNED = "pruned"


# what a ``decide`` hook answers after a copy's epoch: None (go on) or (status, reason); the
# status is a CopyStatus or a TrialStatus (the same words)
CopyDecision = tuple[CopyStatus | TrialStatus, str] | None


@dataclass
class CopyResult:
    """The outcome of one copy of a pack, as ``TrialResult`` is a trial's."""

    index: int
    status: CopyStatus
    records: list[EpochRecord] = field(default_factory=list)
    reason: str | None = None

    @property
    def seconds(self) -> float:
        """The copy's share of the pack's time (see ``EpochRecord.seconds``)."""
        return sum(r.seconds for r in self.records)

    @property
    def value(self) -> float | None:
        """Validation accuracy after the last epoch of a complete copy, else None."""
        if self.status is not CopyStatus.COMPLETE or not self.records:
            return None
        return self.records[-1].val_accuracy


def _per_copy(value: Any, n: int, what: str) -> list[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n:
            raise ValueError(f"{len(value)} {what} for {n} schedules")
        return list(value)
    return [value] * n


def train_packed(
    dataset: Dataset,
    schedules: Sequence[Schedule],
    optimizers: OptimizerSpec | Sequence[OptimizerSpec] | None = None,
    settings: TrainSettings | None = None,
    *,
    seeds: int | Sequence[int] | None = None,
    model: str | ModelBuilder | None = None,
    on_epoch: Callable[[int, EpochRecord], None] | None = None,
    decide: Callable[[int, EpochRecord], CopyDecision] | None = None,
    shuffle: bool = True,
    stop: str = "rebuild",
    verbose: int = 0,
) -> list[CopyResult]:
    """Train one copy of ``settings.model`` per schedule, all at once, for ``settings.epochs``.

    Copy k trains under ``schedules[k]`` with ``optimizers[k]`` (one spec for all, or one per
    copy; default SGD), seeded by ``seeds[k]`` (default: ``settings.seed`` for every copy, as
    every trial of a study starts alike). After every epoch, for every copy trained in it:
    ``on_epoch(k, record)``, then, unless its loss is not finite (the copy ends ``DIVERGED``),
    ``decide(k, record)``, which may stop copy k (``(CopyStatus.PRUNED, "pruned at epoch 2")``,
    a paused or stalled copy, or an early complete one) while the others go on. A copy that
    trained ``settings.epochs`` epochs ends ``COMPLETE``. Returns one result per copy, in order.

    ``decide`` answers, it does not raise: an exception raised by a hook ends the whole pack.
    A stop asked by Ctrl-C raises :class:`~sweeper.interrupts.SweepInterrupted` (every epoch
    recorded so far was handed to ``on_epoch``).
    """
    settings = settings or TrainSettings()
    n = len(schedules)
    if n == 0:
        return []
    specs = _per_copy(optimizers or OptimizerSpec(), n, "optimizers")
    seed_list = _per_copy(settings.seed if seeds is None else seeds, n, "seeds")
    reset_keras(settings.seed)
    pack = Pack(dataset, settings, model=model, shuffle=shuffle, stop=stop, verbose=verbose)
    for k, (schedule, spec, seed) in enumerate(zip(schedules, specs, seed_list, strict=True)):
        pack.add(schedule, spec, seed=int(seed), index=k)
    results: dict[int, CopyResult] = {}

    def end(copy: PackedCopy, status: CopyStatus, reason: str | None) -> None:
        results[copy.index] = CopyResult(copy.index, status, list(copy.records), reason)
        pack.stop(copy)

    while pack.live:
        for copy, record in pack.train_epoch():
            if on_epoch is not None:
                on_epoch(copy.index, record)
            if not math.isfinite(record.loss):
                reason = f"diverged at epoch {record.epoch + 1}, lr={record.lr:.4g}"
                log.info("copy %d %s", copy.index, reason)
                end(copy, CopyStatus.DIVERGED, reason)
                continue
            decision = decide(copy.index, record) if decide is not None else None
            if decision is not None:
                end(copy, CopyStatus(str(decision[0])), decision[1])
            elif copy.epoch >= settings.epochs:
                end(copy, CopyStatus.COMPLETE, None)
    return [results[k] for k in range(n)]
