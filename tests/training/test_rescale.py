"""A tuned schedule rebuilt for another run (``Schedule.rescaled``, ``Horizon``) and handed over
(``sweeper.training.handover.Tuned``): what each rescaling rule promises, for every family.

The rules are checked as properties over random tuned and target runs (seeded draws):

* ``fraction``: the rate at each share of the new run is the tuned rate at that share of the
  tuned run, to within one step of a change (one epoch for step decay, whose drops fall on
  epochs); each warm-up end and decay end falls at its share;
* ``epochs``: the schedule is what the study's own rebuild (``from_dimensions``) gives at the
  new length and data size: intervals stated in epochs stay in epochs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sweeper.errors import ConfigError, RescaleError
from sweeper.training.handover import DEFAULT_RULE, Tuned, steps_for
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.schedule_base import RESCALE_RULES, Horizon, Schedule
from sweeper.training.schedules import FAMILIES, from_dimensions

# every family with the dimensions a study gives it (intervals in epochs)
DIMS: dict[str, dict[str, Any]] = {
    "constant": {"initial_lr": 0.1},
    "time": {"initial_lr": 0.1, "time_decay": 3e-3},
    "step": {"initial_lr": 0.1, "decay_rate": 0.5, "drop_every": 1.5},
    "exponential": {"initial_lr": 0.1, "decay_rate": 0.4, "drop_every": 1.3},
    "piecewise": {"initial_lr": 0.1, "decay_rate": 0.3, "drop_every": 1.7},
    "polynomial": {"initial_lr": 0.1, "power": 2.0, "end_lr_factor": 0.01},
    "inverse_time": {"initial_lr": 0.1, "decay_rate": 0.6, "drop_every": 0.8},
    "cosine": {"initial_lr": 0.1, "alpha": 0.05, "warmup_epochs": 1.0},
    "cosine_restarts": {"initial_lr": 0.1, "restart_epochs": 1.2, "t_mul": 2.0, "m_mul": 0.8},
    "linear": {"initial_lr": 0.1, "warmup_epochs": 1.0, "end_lr_factor": 0.0},
    "wsd": {"initial_lr": 0.1, "warmup_epochs": 1.0, "cooldown_fraction": 0.3},
    "one_cycle": {"initial_lr": 0.1, "pct_start": 0.3},
    "rex": {"initial_lr": 0.1},
    "shape": {
        "initial_lr": 0.1,
        "warmup_fraction": 0.1,
        "stable_fraction": 0.3,
        "decay_exponent": 1.5,
        "final_lr_ratio": 0.02,
    },
}
DRAWS = 6  # random (tuned run, target run) pairs per family and rule


def runs(seed: int) -> tuple[int, int, int, int]:
    """A tuned run (steps per epoch, epochs) and a target run: shorter or up to 9x longer, on
    fewer or more data."""
    rng = np.random.default_rng(seed)
    spe0, epochs0 = int(rng.integers(8, 40)), int(rng.integers(3, 10))
    spe1 = max(2, int(spe0 * rng.uniform(0.5, 2.5)))
    epochs1 = max(2, int(epochs0 * rng.choice([0.67, 1.0, 3.0, 9.0])))
    return spe0, epochs0, spe1, epochs1


CASES = [(family, seed) for family in DIMS for seed in range(DRAWS)]


def test_every_family_is_covered() -> None:
    assert set(DIMS) == set(FAMILIES)


def tuned_schedule(family: str, spe: int, epochs: int) -> Schedule:
    return from_dimensions(family, DIMS[family], steps_per_epoch=spe, epochs=epochs)


def curve_at_shares(schedule: Schedule, total: int, shares: np.ndarray) -> np.ndarray:
    return schedule.rates(np.floor(shares * total))


def fraction_case(family: str, seed: int) -> tuple[Schedule, Schedule, Horizon]:
    """The tuned schedule of draw ``seed``, rebuilt under the fraction rule, and the runs."""
    spe0, epochs0, spe1, epochs1 = runs(seed)
    tuned = tuned_schedule(family, spe0, epochs0)
    horizon = Horizon(spe0, epochs0, spe1, epochs1, "fraction")
    return tuned, tuned.rescaled(horizon), horizon


@pytest.mark.parametrize(("family", "seed"), CASES)
def test_fraction_rule_keeps_the_rate_at_each_share_of_the_run(family: str, seed: int) -> None:
    tuned, new, horizon = fraction_case(family, seed)
    t0, t1 = horizon.tuned_steps, horizon.steps
    spe0, spe1 = horizon.tuned_spe, horizon.spe
    shares = np.linspace(0.0, 1.0, 401, endpoint=False)
    got = curve_at_shares(new, t1, shares)
    # the tuned rate around the same share: within one step of it on the tuned run (one epoch
    # for step decay, whose drops fall on epoch ends, rounded differently on each run)
    quantum = max(spe0, spe1 * t0 / t1) if family == "step" else max(1.0, t0 / t1)
    for share, value in zip(shares, got, strict=True):
        at = share * t0
        lo = max(0, math.floor(at - quantum - 1))
        hi = min(t0, math.ceil(at + quantum + 1))
        # the tuned curve at its steps and finely between them (a peak may fall between steps)
        window = tuned.rates(np.concatenate([np.linspace(lo, hi, 1024), np.arange(lo, hi + 1)]))
        assert window.min() * (1 - 1e-6) - 1e-15 <= value <= window.max() * (1 + 1e-6), (
            f"{family}: at {share:.3f} of the run the rate is {value!r}, tuned "
            f"{window.min()!r}..{window.max()!r} ({tuned.describe()} -> {new.describe()})"
        )


@pytest.mark.parametrize(("family", "seed"), CASES)
def test_fraction_rule_puts_warmup_and_decay_ends_at_their_share(family: str, seed: int) -> None:
    tuned, new, horizon = fraction_case(family, seed)
    t0, t1 = horizon.tuned_steps, horizon.steps
    warmup = getattr(tuned, "warmup_steps", 0.0)
    if family == "shape":  # its warm-up and hold are shares of its decay by definition
        assert (new.warmup_fraction, new.stable_fraction) == (  # type: ignore[attr-defined]
            tuned.warmup_fraction,  # type: ignore[attr-defined]
            tuned.stable_fraction,  # type: ignore[attr-defined]
        )
    elif warmup:
        assert new.warmup_steps / t1 == pytest.approx(warmup / t0)
    if family in ("linear", "wsd", "rex", "shape"):  # the decay ends at the run's last update
        assert new.decay_steps == t1 - 1
        assert new.lr_at(t1 - 1) == pytest.approx(tuned.lr_at(t0 - 1), abs=1e-12)
    if family in ("polynomial", "one_cycle"):
        assert getattr(new, "decay_steps", getattr(new, "total_steps", None)) == t1
    if family == "cosine":
        assert new.warmup_steps + new.decay_steps == pytest.approx(t1)  # type: ignore[attr-defined]
    if family == "wsd":  # the cooldown starts at its share
        assert new.decay_start / t1 == pytest.approx(tuned.decay_start / t0, abs=1 / t0)  # type: ignore[attr-defined]
    if family == "piecewise":  # each drop at its share, to a step
        for b0, b1 in zip(tuned.boundaries, new.boundaries, strict=True):  # type: ignore[attr-defined]
            assert abs((b1 + 1) / t1 - (b0 + 1) / t0) <= 0.5 / t1 + 1e-12


@pytest.mark.parametrize(("family", "seed"), CASES)
def test_epochs_rule_is_the_studys_own_rebuild_at_the_new_run(family: str, seed: int) -> None:
    spe0, epochs0, spe1, epochs1 = runs(seed)
    tuned = tuned_schedule(family, spe0, epochs0)
    horizon = Horizon(spe0, epochs0, spe1, epochs1, "epochs")
    try:
        rebuilt = tuned_schedule(family, spe1, epochs1)
    except ConfigError:  # a warm-up longer than the new run: the rule refuses it too
        with pytest.raises(RescaleError, match="does not fit"):
            tuned.rescaled(horizon)
        return
    new = tuned.rescaled(horizon)
    if family == "piecewise":
        # the drops the tuned run had, in epochs; none invented beyond it
        every = DIMS[family]["drop_every"]
        kept = [b for b in rebuilt.boundaries if b < new.boundaries[-1] + spe1]  # type: ignore[attr-defined]
        assert len(new.boundaries) == len(tuned.boundaries)  # type: ignore[attr-defined]
        for b_new, b_ref in zip(new.boundaries, kept, strict=False):  # type: ignore[attr-defined]
            assert abs(b_new - b_ref) <= 1, (every, new.boundaries, kept)  # type: ignore[attr-defined]
        return
    n = horizon.steps
    np.testing.assert_allclose(new.curve(n), rebuilt.curve(n), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("rule", RESCALE_RULES)
@pytest.mark.parametrize("family", sorted(DIMS))
def test_the_same_run_is_the_schedule_itself(family: str, rule: str) -> None:
    tuned = tuned_schedule(family, 17, 5)
    assert tuned.rescaled(Horizon(17, 5, 17, 5, rule)) is tuned


def test_time_decay_per_step_as_tuned_or_per_share_of_the_run() -> None:
    tuned = tuned_schedule("time", 10, 4)
    assert tuned.rescaled(Horizon(10, 4, 40, 4, "epochs")) == tuned  # its rate: per step
    new = tuned.rescaled(Horizon(10, 4, 40, 4, "fraction"))
    for epoch in range(4):
        assert new.lr_at(epoch * 40) == pytest.approx(tuned.lr_at(epoch * 10))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((10, 4, 10, 0, "fraction"), "epochs must be a whole number >= 1, got 0"),
        ((10, 4, 10, -3, "fraction"), "epochs must be a whole number >= 1, got -3"),
        ((10, 4, 10, 2.5, "fraction"), "epochs must be a whole number >= 1, got 2.5"),
        ((10, 4, 0, 4, "fraction"), "steps per epoch must be a whole number >= 1, got 0"),
        (
            (10, 4, 10, 4, "share"),
            "unknown rescaling rule 'share'; choose one of: fraction, epochs",
        ),
    ],
)
def test_bad_runs_are_one_line(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(RescaleError) as info:
        Horizon(*args)
    assert str(info.value) == message


def test_a_warmup_that_no_longer_fits_is_refused() -> None:
    tuned = tuned_schedule("linear", 10, 8)  # 1 warm-up epoch of 8
    with pytest.raises(RescaleError, match="warm-up of 10 steps does not fit a run of 10 steps"):
        tuned.rescaled(Horizon(10, 8, 10, 1, "epochs"))
    fitted = tuned.rescaled(Horizon(10, 8, 10, 1, "fraction"))
    assert fitted.warmup_steps == pytest.approx(10 / 8)  # type: ignore[attr-defined]


def test_steps_for_counts_the_short_last_batch() -> None:
    assert steps_for(1000, 64) == 16
    assert steps_for(1024, 64) == 16
    with pytest.raises(RescaleError, match="batch size must be a whole number >= 1, got 0"):
        steps_for(10, 0)


def test_tuned_hands_over_the_schedule_free_warmup_by_rule() -> None:
    tuned = Tuned(
        tuned_schedule("constant", 10, 10), OptimizerSpec("sgd_schedule_free", warmup=0.1), 10, 10
    )
    # 10 warm-up steps of 100: a share of the run, or one epoch
    frac = tuned.optimizer_spec_for(tuned.horizon(40, 10, "fraction"))
    assert round(frac.warmup * 400) == 40
    ep = tuned.optimizer_spec_for(tuned.horizon(40, 10, "epochs"))
    assert round(ep.warmup * 400) == 10
    assert tuned.horizon().rule == DEFAULT_RULE
    line = tuned.length_line(tuned.horizon(40, 10, "epochs"))
    assert line == (
        "constant over 40 epochs of 10 steps (tuned over 10 epochs of 10 steps, rule 'epochs'): "
        "sgd_schedule_free warm-up 10 steps"
    )


def test_length_line_says_what_changed() -> None:
    tuned = Tuned(tuned_schedule("cosine", 34, 9), OptimizerSpec(), 34, 9)
    line = tuned.length_line(tuned.horizon(27, None, "fraction"))
    assert line == (
        "cosine over 27 epochs of 34 steps (tuned over 9 epochs of 34 steps, rule 'fraction'): "
        "decay_steps 272 -> 816, warmup_steps 34 -> 102"
    )
    assert tuned.length_line(tuned.horizon()) == "cosine as tuned: 9 epochs of 34 steps"


def test_optimizer_spec_parses_what_it_describes() -> None:
    for spec in (
        OptimizerSpec(),
        OptimizerSpec("adam"),
        OptimizerSpec("sgd", momentum=0.9, nesterov=True),
        OptimizerSpec("sgd", momentum=0.85),
        OptimizerSpec("adamw_schedule_free", warmup=0.05),
    ):
        assert OptimizerSpec.parse(spec.describe()) == spec
    with pytest.raises(ConfigError, match="unknown optimizer 'lion'"):
        OptimizerSpec.parse("lion")
