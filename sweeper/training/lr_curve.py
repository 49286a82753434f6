"""The curve of a learning-rate range test (:mod:`sweeper.search.lrfind`) and its analysis, in plain
NumPy: the rate's growth per step, the smoothed loss, and the steepest-descent and lowest-loss
rates that give the suggested range (:class:`LrFindResult`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    pass

log = logging.getLogger("sweeper.search.lrfind")  # the range test's one logger


DEFAULT_START = 1e-7


DEFAULT_END = 10.0


DEFAULT_STEPS = 200


DEFAULT_BETA = 0.98


@dataclass(frozen=True)
class Analysis:
    steepest_lr: float
    min_loss_lr: float
    low: float
    high: float


@dataclass(frozen=True)
class LrFindResult:
    lrs: tuple[float, ...]  # rate applied in each recorded step
    losses: tuple[float, ...]  # that step's batch loss
    smoothed: tuple[float, ...]  # bias-corrected exponentially weighted average of the losses
    steepest_lr: float
    min_loss_lr: float
    diverged_lr: float | None  # rate at which the test stopped; None if it ran every step
    low: float
    high: float
    optimizer: str
    model: str = ""
    dataset: str = ""
    batch_size: int = 0
    start: float = DEFAULT_START
    end: float = DEFAULT_END
    steps: int = DEFAULT_STEPS
    study_name: str | None = None
    study_hash: str | None = None
    id: int | None = None
    created_at: datetime | None = field(default=None, compare=False)

    @property
    def suggested(self) -> tuple[float, float]:
        """The suggested range of initial rates, ``(steepest_lr / 10, min_loss_lr)``."""
        return self.low, self.high


def growth_factor(start: float, end: float, steps: int) -> float:
    """Per-step factor taking the rate from ``start`` (step 0) to ``end`` (step ``steps - 1``)."""
    return float((end / start) ** (1.0 / (steps - 1)))


def smooth(losses: Sequence[float], beta: float = DEFAULT_BETA) -> np.ndarray:
    """Exponentially weighted average of ``losses`` with bias correction (fastai style)."""
    out = np.empty(len(losses), dtype=np.float64)
    avg = 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1.0 - beta) * float(loss)
        out[i] = avg / (1.0 - beta ** (i + 1))
    return out


def analyse(
    lrs: Sequence[float], smoothed: Sequence[float], diverged_lr: float | None = None
) -> Analysis:
    """The steepest-descent and minimum-loss rates of a smoothed curve and the suggested range.

    The slope is taken of the smoothed loss against log10(rate), averaged over a few
    neighbouring steps, and only before the minimum; the first steps (up to 10, at most a
    quarter of those before the minimum) are skipped because their average rests on few batches.
    """
    lr = np.asarray(lrs, dtype=np.float64)
    sm = np.asarray(smoothed, dtype=np.float64)
    if len(lr) != len(sm) or len(lr) == 0:
        raise ValueError(f"need matching non-empty curves, got {len(lr)} rates, {len(sm)} losses")
    m = int(np.argmin(sm))
    min_loss_lr = float(lr[m])
    if m >= 2:
        slope = np.gradient(sm[: m + 1], np.log10(lr[: m + 1]))
        width = min(5, m)
        if width > 1:
            slope = np.convolve(slope, np.ones(width) / width, mode="same")
        skip = min(10, m // 4)
        steepest_lr = float(lr[skip + int(np.argmin(slope[skip : m + 1]))])
    else:
        log.warning("the loss is lowest at the start of the range test: lower its start rate")
        steepest_lr = float(lr[0])
    high = min_loss_lr
    if diverged_lr is not None and high >= diverged_lr:
        high = float(diverged_lr) / 2.0
    low = steepest_lr / 10.0
    if low >= high:
        low = high / 10.0
    return Analysis(steepest_lr=steepest_lr, min_loss_lr=min_loss_lr, low=low, high=high)
