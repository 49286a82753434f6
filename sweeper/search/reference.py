"""The reference configuration (``[sampler] reference``): where it starts, and where it goes when
its rate is too high for the model.

The reference is one schedule family (cosine by default) from the top of the searched initial
rate, trained its full length with no rung, queued before the first tuned trial. The top of a
range is a good rate for some networks and diverges on others, so the reference does not assume
it: when it stalls at chance level or diverges (both are judged after its first epoch), the next
reference is queued at a lower rate — a third of it (:data:`STEP`), the next lower choice of a
list of rates — down to the bottom of the range. Each rate tried costs the one epoch that showed
it fails. The bottom of the range is never stopped for stalling (a low rate learns slowly, not
never): the study always trains one reference of that family in full, unless every rate
diverges.

Every reference carries the rate it tries
(:data:`~sweeper.search.trial_record.REFERENCE_RATE_ATTR`), so a process killed after queueing
the next one and before Optuna was told queues it only once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper.search.space import SCHEDULE_PARAM
from sweeper.search.trial_record import REFERENCE_ATTR, REFERENCE_RATE_ATTR, TrialRecord
from sweeper.studyfile.dimensions import Auto, Choices, Fixed
from sweeper.studyfile.study_spec import SpaceSpec
from sweeper.training.backend import CONSOLE

log = logging.getLogger(__name__)

STEP = 3.0  # a reference that stalls or diverges is tried again at 1/STEP of its rate


def _optimizer(space: SpaceSpec) -> str:
    opt_dim = space.dims["optimizer"]
    return str(opt_dim.values[0] if isinstance(opt_dim, Choices) else getattr(opt_dim, "value", ""))


def _bounds(
    space: SpaceSpec, optimizer: str, lr_ranges: Mapping[str, tuple[float, float]] | None
) -> tuple[float, float] | None:
    """The searched initial rate's range (the range test's narrowed one when there is one); None
    when the rate is pinned, or ``"auto"`` and not measured yet."""
    dim = space.dims["initial_lr"]
    measured = (lr_ranges or {}).get(optimizer)
    if isinstance(dim, Fixed):
        return None
    if isinstance(dim, Choices):
        return float(min(dim.values)), float(max(dim.values))
    if isinstance(dim, Auto):
        return measured
    return measured or (float(dim.low), float(dim.high))


def reference_params(
    space: SpaceSpec,
    family: str,
    lr_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[dict[str, Any], str] | None:
    """The Optuna params of the first reference configuration and its description: schedule
    ``family`` from the top of the searched initial rate (the range test's narrowed range when
    there is one, the declared one otherwise), the first optimizer choice when the optimizer is
    searched; every other dimension it uses is sampled as usual. None when the family is not in
    the space or the rate has no top to start from (an ``"auto"`` range not measured yet)."""
    if family not in space.families():
        return None
    params: dict[str, Any] = {}
    if isinstance(space.schedules, Choices):
        params[SCHEDULE_PARAM] = family
    optimizer = _optimizer(space)
    if isinstance(space.dims["optimizer"], Choices):
        params["optimizer"] = optimizer
    dim = space.dims["initial_lr"]
    if isinstance(dim, Fixed):
        return params, f"{family} from initial_lr={dim.value:.4g}, trained its full length"
    bounds = _bounds(space, optimizer, lr_ranges)
    if bounds is None:
        return None
    params["initial_lr"] = bounds[1]
    return params, (
        f"{family} from initial_lr={bounds[1]:.4g}, the top of the searched range, trained its "
        "full length"
    )


def next_rate(
    space: SpaceSpec,
    optimizer: str,
    rate: float,
    lr_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> float | None:
    """The rate the reference tries after ``rate`` failed: a third of it, or the bottom of the
    range once a third falls below it; the next lower value of a list of rates. None when
    ``rate`` is the bottom (or the rate is pinned): nothing lower to try."""
    dim = space.dims["initial_lr"]
    if isinstance(dim, Choices):
        lower = [float(v) for v in dim.values if float(v) < rate * (1 - 1e-9)]
        return max(lower) if lower else None
    bounds = _bounds(space, optimizer, lr_ranges)
    if bounds is None or rate <= bounds[0] * (1 + 1e-9):
        return None
    return max(float(f"{rate / STEP:.4g}"), bounds[0])  # 0.1, not 0.09999999999999999


def is_last(
    space: SpaceSpec,
    optimizer: str,
    rate: float | None,
    lr_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> bool:
    """Whether a reference at ``rate`` is the last one tried (nothing lower: it is never stopped
    for stalling, so the study trains one reference in full)."""
    return rate is None or next_rate(space, optimizer, rate, lr_ranges) is None


def step_down(
    study: optuna.Study,
    failed: FrozenTrial,
    space: SpaceSpec,
    lr_ranges: Mapping[str, tuple[float, float]] | None,
    *,
    room: bool,
    outcome: str,
) -> float | None:
    """``failed``, a reference, stalled or diverged (``outcome``): queue the next reference at
    the next lower rate, once, while the study's target has ``room``. The rate queued, or None."""
    rate = failed.params.get("initial_lr")
    if rate is None or not room:
        return None
    optimizer = str(failed.params.get("optimizer") or _optimizer(space))
    lower = next_rate(space, optimizer, float(rate), lr_ranges)
    if lower is None:
        return None
    trials = study.get_trials(deepcopy=False)
    if any(_tries(t, lower) for t in trials):
        return None  # queued already (by this trial before a crash, or by a retry of it)
    family = failed.params.get(SCHEDULE_PARAM) or next(iter(space.families()))
    params = {k: failed.params[k] for k in (SCHEDULE_PARAM, "optimizer") if k in failed.params}
    params["initial_lr"] = lower
    last = next_rate(space, optimizer, lower, lr_ranges) is None
    where = "the bottom of the searched range" if last else f"1/{STEP:g} of {float(rate):.4g}"
    described = (
        f"{family} from initial_lr={lower:.4g} ({where}; {float(rate):.4g} {outcome}), trained "
        "its full length"
    )
    study.enqueue_trial(params, user_attrs={REFERENCE_ATTR: described, REFERENCE_RATE_ATTR: lower})
    CONSOLE.info(
        "reference %s at initial_lr=%.4g %s: queued again at initial_lr=%.4g",
        family,
        float(rate),
        outcome,
        lower,
    )
    return lower


def _tries(trial: FrozenTrial, rate: float) -> bool:
    record = TrialRecord.of(trial)
    tried = record.reference_rate  # None when not a number
    return (
        record.reference is not None
        and tried is not None
        and math.isclose(tried, rate, rel_tol=1e-9)
        and trial.state != TrialState.FAIL
    )
