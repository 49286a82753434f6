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

The curve analysis lives in :mod:`sweeper.training.lr_curve`, the stored results in
:mod:`sweeper.store.lrfind_store` and the figure in :mod:`sweeper.analysis.lrfind_plot`; this module runs tests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeper.errors import LrFindError
from sweeper.store.lrfind_store import latest_lr_find, save_lr_find
from sweeper.store.store import Store
from sweeper.studyfile.dimensions import Choices, Fixed, Range
from sweeper.studyfile.study_spec import SpaceSpec
from sweeper.training.lr_curve import (
    DEFAULT_BETA,
    DEFAULT_END,
    DEFAULT_START,
    DEFAULT_STEPS,
    LrFindResult,
    analyse,
    growth_factor,
)
from sweeper.training.optimizers import OptimizerSpec

if TYPE_CHECKING:
    from sweeper.studyfile.study_spec import StudySpec

log = logging.getLogger(__name__)

DEFAULT_DIVERGE_FACTOR = 4.0
MIN_STEPS = 10
WARMUP_STEPS = 10  # batches whose mean loss is the starting loss of the rebound rule
REBOUND = 0.5  # stop once the smoothed loss has given back this much of its drop
MIN_DROP = 0.02  # ... provided it had dropped by this fraction of the starting loss


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
    from sweeper.training.backend import load_keras

    load_keras()
    import keras

    from sweeper.training.models import build_model
    from sweeper.training.train_trial import reset_keras

    n = len(y)
    batch = max(1, min(int(batch_size), n))
    growth = growth_factor(start, end, steps)
    reset_keras(seed)
    curve = _Curve(beta, diverge_factor)
    try:
        net = build_model(model, tuple(int(d) for d in x.shape[1:]), num_classes, model_dir)
        schedule = keras.optimizers.schedules.ExponentialDecay(
            start, decay_steps=1, decay_rate=growth
        )
        opt = optimizer.build(schedule)
        net.compile(optimizer=opt, loss="sparse_categorical_crossentropy", jit_compile=jit_compile)
        batches = _batches(np.random.default_rng(seed), n, batch)
        diverged_lr = _sweep(net, x, y, batches, curve, start=start, growth=growth, steps=steps)
    finally:
        net = opt = schedule = None  # drop the test's model before clearing the session
        reset_keras()
    return _result(
        curve, diverged_lr, optimizer, model=model, batch=batch, start=start, end=end, steps=steps
    )


def _sweep(
    net: Any,
    x: np.ndarray,
    y: np.ndarray,
    batches: Iterator[np.ndarray],
    curve: _Curve,
    *,
    start: float,
    growth: float,
    steps: int,
) -> float | None:
    """Train ``net`` one batch per rate, each ``growth`` times the last; the rate at which the
    loss diverged (None: it never did)."""
    import keras

    for step in range(steps):
        idx = next(batches)
        lr = start * growth**step
        if step in (0, 1, steps - 1):  # the rate the optimizer applies in this update
            rate = keras.ops.convert_to_numpy(net.optimizer.learning_rate)
            _check_applied(float(rate), lr, step)
        loss = float(np.asarray(net.train_on_batch(x[idx], y[idx])).reshape(-1)[0])
        if not curve.add(lr, loss):
            return lr
    return None


def _batches(rng: np.random.Generator, n: int, batch: int) -> Iterator[np.ndarray]:
    """Positions of ``batch`` examples out of ``n`` from a seeded shuffle, reshuffled after every
    pass over the data (a last short batch is left out)."""
    order = rng.permutation(n)
    pos = 0
    while True:
        if pos + batch > n:
            order, pos = rng.permutation(n), 0
        yield order[pos : pos + batch]
        pos += batch


def _check_applied(applied: float, lr: float, step: int) -> None:
    if not math.isclose(applied, lr, rel_tol=1e-3):
        raise RuntimeError(f"the optimizer applies {applied!r} at step {step}, not {lr!r}")


@dataclass
class _Curve:
    """The losses of a range test as it runs: raw and smoothed (a bias-corrected exponential
    moving average), and whether the test goes on."""

    beta: float
    diverge_factor: float
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    avg: float = 0.0
    best: float = math.inf
    initial: float = math.inf  # the mean loss of the first WARMUP_STEPS steps

    def add(self, lr: float, loss: float) -> bool:
        """Record the loss of the next step; False when the test stops there: the loss is not
        finite, has grown ``diverge_factor`` times its best, or has rebounded."""
        if not math.isfinite(loss):
            return False
        step = len(self.lrs)
        self.avg = self.beta * self.avg + (1.0 - self.beta) * loss
        value = self.avg / (1.0 - self.beta ** (step + 1))
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(value)
        self.best = min(self.best, value)
        if step + 1 == WARMUP_STEPS:
            self.initial = float(np.mean(self.losses))
        return not (
            value > self.diverge_factor * self.best or _rebounded(value, self.best, self.initial)
        )


def _result(
    curve: _Curve,
    diverged_lr: float | None,
    optimizer: OptimizerSpec,
    *,
    model: str,
    batch: int,
    start: float,
    end: float,
    steps: int,
) -> LrFindResult:
    """The range test's result from its curve; an LrFindError when no step had a finite loss."""
    lrs = curve.lrs
    if not lrs:
        raise LrFindError(
            f"the loss was not finite at the first step (lr={start:g}); start from a lower rate"
        )
    result = analyse(lrs, curve.smoothed, diverged_lr)
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
        losses=tuple(curve.losses),
        smoothed=tuple(curve.smoothed),
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
    from sweeper.training.data import load_dataset
    from sweeper.training.models import check_model_module

    _check_bounds(start, end, steps)
    check_model_module(spec.train.model, spec.train.model_dir)  # before the backend starts
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


def lr_ranges(spec: StudySpec, store: Store, name: str) -> dict[str, tuple[float, float]]:
    """Bounds of an ``initial_lr = "auto"`` dimension per optimizer ({} when not automatic).

    The LR range test runs once per study and optimizer; its result is stored, so every worker
    and every resumed run uses the same bounds.
    """
    from sweeper.studyfile.dimensions import Auto

    dim = spec.space.dims["initial_lr"]
    if not isinstance(dim, Auto):
        return {}
    ranges = {}
    for opt in study_optimizers(spec.space):
        suggested = suggest_range(spec, opt, store, name)
        ranges[opt.name] = suggested if dim.within is None else narrow(suggested, dim.within, opt)
    return ranges


def narrow(
    suggested: tuple[float, float], declared: Range, optimizer: OptimizerSpec
) -> tuple[float, float]:
    """The part of the ``declared`` range inside the ``suggested`` one; the declared range
    (with a warning) when they do not meet."""
    low, high = max(suggested[0], declared.low), min(suggested[1], declared.high)
    if low < high:
        log.info(
            "initial_lr for %s: the range test narrows [%.3g, %.3g] to [%.3g, %.3g]",
            optimizer.describe(), declared.low, declared.high, low, high,
        )  # fmt: skip
        return low, high
    log.warning(
        "initial_lr for %s: the range test suggests [%.3g, %.3g], outside the declared "
        "[%.3g, %.3g]; the whole declared range is searched",
        optimizer.describe(), suggested[0], suggested[1], declared.low, declared.high,
    )  # fmt: skip
    return declared.low, declared.high


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
