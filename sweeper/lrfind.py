"""Leslie Smith's learning-rate range test: how large a rate can this model take?

A fresh, seeded copy of the study's model trains on the study's training data while the rate
grows exponentially, one step at a time, from ``start`` to ``end``. Each batch's loss is recorded
(``train_on_batch``, so it is the loss of that batch, not a running mean) and smoothed with an
exponentially weighted average with bias correction (fastai's ``lr_find``). The test stops early
when the smoothed loss exceeds ``diverge_factor`` times its minimum, or a loss is not finite.

Reading the curve (:func:`analyse`):

* ``min_loss_lr``: the rate at the minimum of the smoothed loss, the largest rate that still
  lowered the loss; past it the loss climbs;
* ``steepest_lr``: the rate where the smoothed loss falls fastest per decade of rate, looked for
  before the minimum only (skipping the first few steps, whose average rests on few batches);
* ``diverged_lr``: the rate at which the test stopped, or None if it ran all its steps.

The suggested range is ``low = steepest_lr / 10`` to ``high = min_loss_lr``: from a tenth of the
rate where learning is fastest (safely stable) to the largest rate that still helped. The rule
guarantees ``low < high < diverged_lr`` (``low`` drops to ``high / 10`` if needed).

The test's model is discarded (``keras.backend.clear_session()``): nothing of it reaches a trial.
Results are stored in ``sweeper_lr_finds`` so a study can reuse them (:func:`suggest_range`).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

import numpy as np
import sqlalchemy as sa

from sweeper.config import Choices, Fixed, Range, SpaceSpec
from sweeper.errors import SweeperError
from sweeper.optimizers import OptimizerSpec
from sweeper.store import Store
from sweeper.tables import Base, LrFindRow

if TYPE_CHECKING:
    from sweeper.config import StudySpec

log = logging.getLogger(__name__)

DEFAULT_START = 1e-7
DEFAULT_END = 10.0
DEFAULT_STEPS = 200
DEFAULT_BETA = 0.98
DEFAULT_DIVERGE_FACTOR = 4.0
MIN_STEPS = 10
WARMUP_STEPS = 10  # batches whose mean loss is the starting loss of the rebound rule
REBOUND = 0.5  # stop once the smoothed loss has given back this much of its drop
MIN_DROP = 0.02  # ... provided it had dropped by this fraction of the starting loss


class LrFindError(SweeperError):
    """A range test cannot run as asked (bad bounds, unknown optimizer for the study)."""

    exit_code = 2


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


# --------------------------------------------------------------------------------------------
# Curve analysis (pure NumPy)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The range test
# --------------------------------------------------------------------------------------------


def _rebounded(value: float, best: float, initial: float) -> bool:
    """Whether the smoothed loss has climbed back over half of its drop from the start.

    A small network without normalisation often does not blow up at too large a rate: it dies,
    its loss returning to that of a constant guess, which is rarely ``diverge_factor`` times
    its best. The drop must first be clear (``MIN_DROP`` of the starting loss), so noise on the
    flat start of the curve never stops the test.
    """
    drop = initial - best
    return math.isfinite(drop) and drop > MIN_DROP * initial and value > best + REBOUND * drop


def _check_bounds(start: float, end: float, steps: int) -> None:
    if not (math.isfinite(start) and math.isfinite(end) and 0 < start < end):
        raise LrFindError(f"the range test needs 0 < start < end, got start={start!r}, end={end!r}")
    if steps < MIN_STEPS:
        raise LrFindError(f"the range test needs steps >= {MIN_STEPS}, got {steps!r}")


def range_test(
    x: np.ndarray,
    y: np.ndarray,
    *,
    model: str,
    num_classes: int,
    optimizer: OptimizerSpec,
    start: float = DEFAULT_START,
    end: float = DEFAULT_END,
    steps: int = DEFAULT_STEPS,
    batch_size: int = 64,
    seed: int = 0,
    beta: float = DEFAULT_BETA,
    diverge_factor: float = DEFAULT_DIVERGE_FACTOR,
    jit_compile: bool | str = "auto",
    model_dir: str | None = None,
) -> LrFindResult:
    """Run the range test on arrays ``x`` (N, H, W, C) and ``y`` (N,) class indices.

    Batches of ``batch_size`` are drawn from a seeded shuffle, reshuffled after every pass over
    the data, for as many passes as ``steps`` needs (a last short batch is left out).
    """
    _check_bounds(start, end, steps)
    from sweeper.backend import load_keras

    load_keras()
    import keras

    from sweeper.models import build_model
    from sweeper.training import reset_keras

    n = len(y)
    batch = max(1, min(int(batch_size), n))
    growth = growth_factor(start, end, steps)
    reset_keras(seed)
    rng = np.random.default_rng(seed)
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    diverged_lr: float | None = None
    try:
        net = build_model(model, tuple(int(d) for d in x.shape[1:]), num_classes, model_dir)
        schedule = keras.optimizers.schedules.ExponentialDecay(
            start, decay_steps=1, decay_rate=growth
        )
        opt = optimizer.build(schedule)
        net.compile(optimizer=opt, loss="sparse_categorical_crossentropy", jit_compile=jit_compile)
        order = rng.permutation(n)
        pos = 0
        avg = 0.0
        best = initial = math.inf
        for step in range(steps):
            if pos + batch > n:
                order, pos = rng.permutation(n), 0
            idx = order[pos : pos + batch]
            pos += batch
            lr = start * growth**step
            if step in (0, 1, steps - 1):  # the rate the optimizer applies in this update
                applied = float(keras.ops.convert_to_numpy(opt.learning_rate))
                if not math.isclose(applied, lr, rel_tol=1e-3):
                    raise RuntimeError(
                        f"the optimizer applies {applied!r} at step {step}, not {lr!r}"
                    )
            loss = float(np.asarray(net.train_on_batch(x[idx], y[idx])).reshape(-1)[0])
            if not math.isfinite(loss):
                diverged_lr = lr
                break
            avg = beta * avg + (1.0 - beta) * loss
            value = avg / (1.0 - beta ** (step + 1))
            lrs.append(lr)
            losses.append(loss)
            smoothed.append(value)
            best = min(best, value)
            if step + 1 == WARMUP_STEPS:
                initial = float(np.mean(losses))
            if value > diverge_factor * best or _rebounded(value, best, initial):
                diverged_lr = lr
                break
    finally:
        net = opt = schedule = None  # drop the test's model before clearing the session
        reset_keras()
    if not lrs:
        raise LrFindError(
            f"the loss was not finite at the first step (lr={start:g}); start from a lower rate"
        )
    result = analyse(lrs, smoothed, diverged_lr)
    log.info(
        "range test %s: %d steps, steepest %.3g, min loss %.3g, stopped at %s",
        optimizer.describe(),
        len(lrs),
        result.steepest_lr,
        result.min_loss_lr,
        "-" if diverged_lr is None else f"{diverged_lr:.3g}",
    )
    return LrFindResult(
        lrs=tuple(lrs),
        losses=tuple(losses),
        smoothed=tuple(smoothed),
        steepest_lr=result.steepest_lr,
        min_loss_lr=result.min_loss_lr,
        diverged_lr=diverged_lr,
        low=result.low,
        high=result.high,
        optimizer=optimizer.describe(),
        model=model,
        batch_size=batch,
        start=start,
        end=end,
        steps=steps,
    )


def study_optimizers(space: SpaceSpec) -> list[OptimizerSpec]:
    """The optimizers a study trains with: the pinned one, or each choice when searched.

    SGD takes the pinned momentum and Nesterov setting; when those are searched, the range test
    uses the smallest momentum searched and no Nesterov.
    """
    opt_dim = space.dims["optimizer"]
    if isinstance(opt_dim, Fixed):
        names = [opt_dim.value]
    else:
        assert isinstance(opt_dim, Choices)
        names = list(opt_dim.values)
    momentum_dim = space.dims["momentum"]
    if isinstance(momentum_dim, Fixed):
        momentum = float(momentum_dim.value)
    elif isinstance(momentum_dim, Range):
        momentum = float(momentum_dim.low)
    else:
        assert isinstance(momentum_dim, Choices)
        momentum = float(min(momentum_dim.values))
    nesterov_dim = space.dims["nesterov"]
    nesterov = bool(nesterov_dim.value) if isinstance(nesterov_dim, Fixed) else False
    out = []
    for name in names:
        if name == "sgd":
            out.append(OptimizerSpec("sgd", momentum, nesterov and momentum > 0))
        else:
            out.append(OptimizerSpec(str(name)))
    return out


def lr_find(
    spec: StudySpec,
    optimizer: OptimizerSpec,
    *,
    start: float = DEFAULT_START,
    end: float = DEFAULT_END,
    steps: int = DEFAULT_STEPS,
    beta: float = DEFAULT_BETA,
    diverge_factor: float = DEFAULT_DIVERGE_FACTOR,
) -> LrFindResult:
    """The range test of ``spec``'s model, batch size and seed on its training split."""
    from sweeper.data import load_dataset

    _check_bounds(start, end, steps)
    dataset = load_dataset(spec.data)
    result = range_test(
        dataset.x_train,
        dataset.y_train,
        model=spec.train.model,
        model_dir=spec.train.model_dir,
        num_classes=dataset.num_classes,
        optimizer=optimizer,
        start=start,
        end=end,
        steps=steps,
        batch_size=spec.train.batch_size,
        seed=spec.seed,
        beta=beta,
        diverge_factor=diverge_factor,
        jit_compile=spec.train.jit_compile,
    )
    return replace(result, dataset=repr(spec.data))


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------


def _tables(store: Store) -> None:
    Base.metadata.create_all(store.engine, tables=[cast(sa.Table, LrFindRow.__table__)])


def union_range(results: Sequence[LrFindResult]) -> tuple[float, float]:
    """One initial_lr range for every optimizer tested: the union of their suggested ranges."""
    return min(r.low for r in results), max(r.high for r in results)


def save_lr_find(
    store: Store, result: LrFindResult, study_name: str, study_hash: str
) -> LrFindResult:
    """Store ``result`` for the study; returns it with its row id, name and hash."""
    _tables(store)
    with store.session() as s:
        row = LrFindRow(
            study_name=study_name,
            study_hash=study_hash,
            dataset=result.dataset,
            model=result.model,
            optimizer=result.optimizer,
            batch_size=result.batch_size,
            start=result.start,
            end=result.end,
            steps=result.steps,
            lrs=json.dumps(list(result.lrs)),
            losses=json.dumps(list(result.losses)),
            smoothed=json.dumps(list(result.smoothed)),
            steepest_lr=result.steepest_lr,
            min_loss_lr=result.min_loss_lr,
            diverged_lr=result.diverged_lr,
            low=result.low,
            high=result.high,
        )
        s.add(row)
        s.flush()
        row_id, created = int(row.id), row.created_at
    return replace(
        result, study_name=study_name, study_hash=study_hash, id=row_id, created_at=created
    )


def _from_row(row: LrFindRow) -> LrFindResult:
    return LrFindResult(
        lrs=tuple(json.loads(row.lrs)),
        losses=tuple(json.loads(row.losses)),
        smoothed=tuple(json.loads(row.smoothed)),
        steepest_lr=row.steepest_lr,
        min_loss_lr=row.min_loss_lr,
        diverged_lr=row.diverged_lr,
        low=row.low,
        high=row.high,
        optimizer=row.optimizer,
        model=row.model,
        dataset=row.dataset,
        batch_size=row.batch_size,
        start=row.start,
        end=row.end,
        steps=row.steps,
        study_name=row.study_name,
        study_hash=row.study_hash,
        id=row.id,
        created_at=row.created_at,
    )


def latest_lr_find(
    store: Store, study_name: str, study_hash: str, optimizer: OptimizerSpec | str
) -> LrFindResult | None:
    """The newest stored range test of this study definition and optimizer, if any."""
    name = optimizer.describe() if isinstance(optimizer, OptimizerSpec) else optimizer
    _tables(store)
    with store.session() as s:
        row = s.scalars(
            sa.select(LrFindRow)
            .where(
                LrFindRow.study_name == study_name,
                LrFindRow.study_hash == study_hash,
                LrFindRow.optimizer == name,
            )
            .order_by(LrFindRow.id.desc())
            .limit(1)
        ).first()
        return None if row is None else _from_row(row)


def suggest_range(
    spec: StudySpec, optimizer: OptimizerSpec, store: Store, study_name: str
) -> tuple[float, float]:
    """The suggested initial-rate range: the stored one, or a new range test (stored)."""
    stored = latest_lr_find(store, study_name, spec.hash, optimizer)
    if stored is not None:
        log.info("reusing range test #%s for %s", stored.id, optimizer.describe())
        return stored.suggested
    result = lr_find(spec, optimizer)
    return save_lr_find(store, result, study_name, spec.hash).suggested


# --------------------------------------------------------------------------------------------
# Plot: data, then drawing
# --------------------------------------------------------------------------------------------


class LrFindPlot(NamedTuple):
    title: str
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    steepest_lr: float
    min_loss_lr: float
    diverged_lr: float | None
    low: float
    high: float
    y_limits: tuple[float, float]


def plot_data(result: LrFindResult) -> LrFindPlot:
    """What :func:`draw` shows for one range test; the y axis ignores the final blow-up."""
    lrs = np.asarray(result.lrs, dtype=np.float64)
    losses = np.asarray(result.losses, dtype=np.float64)
    smoothed = np.asarray(result.smoothed, dtype=np.float64)
    start = float(np.median(losses[: min(len(losses), 10)]))
    lowest = float(min(losses.min(), smoothed.min()))
    span = max(start - lowest, 0.05 * abs(start), 1e-6)
    y_limits = (max(0.0, lowest - 0.08 * span), max(start, lowest) + 0.3 * span)
    title = (
        f"LR range test: {result.optimizer}, {result.model}, batch {result.batch_size}, "
        f"{len(lrs)} steps"
    )
    return LrFindPlot(
        title=title,
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        steepest_lr=result.steepest_lr,
        min_loss_lr=result.min_loss_lr,
        diverged_lr=result.diverged_lr,
        low=result.low,
        high=result.high,
        y_limits=y_limits,
    )


def check_plot_path(path: str | Path) -> Path:
    """``path`` as a Path; LrFindError unless its folder exists (checked before any training)."""
    out = Path(path)
    if not out.expanduser().absolute().parent.is_dir():
        raise LrFindError(f"cannot write the plot {str(out)!r}: its folder does not exist")
    return out


def draw(plots: Sequence[LrFindPlot], path: str | Path) -> Path:
    """Draw one panel per range test into a PNG (or any format matplotlib knows) at ``path``."""
    out = check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(plots), 1, figsize=(9, 4.6 * len(plots)), squeeze=False, constrained_layout=True
    )
    for ax, p in zip(axes[:, 0], plots, strict=True):
        ax.axvspan(
            p.low,
            p.high,
            color="tab:green",
            alpha=0.12,
            label=f"suggested {p.low:.2g} - {p.high:.2g}",
        )
        ax.plot(p.lrs, p.losses, color="0.6", linewidth=0.8, alpha=0.8, label="batch loss")
        ax.plot(p.lrs, p.smoothed, color="tab:blue", linewidth=2, label="smoothed loss")
        ax.axvline(
            p.steepest_lr, color="tab:orange", linestyle="--", label=f"steepest {p.steepest_lr:.2g}"
        )
        ax.axvline(
            p.min_loss_lr, color="tab:red", linestyle="--", label=f"min loss {p.min_loss_lr:.2g}"
        )
        if p.diverged_lr is not None:
            ax.axvline(
                p.diverged_lr, color="black", linestyle=":", label=f"stopped {p.diverged_lr:.2g}"
            )
        ax.set_xscale("log")
        ax.set_ylim(*p.y_limits)
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        ax.set_title(p.title, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def lr_ranges(spec: StudySpec, store: Store, name: str) -> dict[str, tuple[float, float]]:
    """Bounds of an ``initial_lr = "auto"`` dimension per optimizer ({} when not automatic).

    The LR range test runs once per study and optimizer; its result is stored, so every worker
    and every resumed run uses the same bounds.
    """
    from sweeper.config import Auto

    if not isinstance(spec.space.dims["initial_lr"], Auto):
        return {}
    return {opt.name: suggest_range(spec, opt, store, name) for opt in study_optimizers(spec.space)}
