"""Tests for the schedule families (sweeper.training.families, found by sweeper.training.schedules):
NumPy curves, Keras-side schedules, conversions, validation."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sweeper.errors import ConfigError
from sweeper.training.families.constant import Constant
from sweeper.training.families.cosine import Cosine
from sweeper.training.families.cosine_restarts import CosineRestarts
from sweeper.training.families.exponential import Exponential
from sweeper.training.families.inverse_time import InverseTime
from sweeper.training.families.linear import Linear
from sweeper.training.families.one_cycle import OneCycle
from sweeper.training.families.piecewise import Piecewise
from sweeper.training.families.polynomial import Polynomial
from sweeper.training.families.rex import Rex
from sweeper.training.families.shape import Shape
from sweeper.training.families.step import StepDecay
from sweeper.training.families.time_decay import TimeDecay
from sweeper.training.families.wsd import WarmupStableDecay
from sweeper.training.schedule_base import Schedule
from sweeper.training.schedules import FAMILIES, family_names, from_dict, from_dimensions

N_STEPS = 2000
REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# Independent reference formulas: one scalar step at a time, plain `math`, as the tutorials write
# them. They take the parameters directly and never touch the module's NumPy code.
# --------------------------------------------------------------------------------------------


def ref_constant(step: int, *, initial_lr: float) -> float:
    return initial_lr


def ref_time(step: int, *, initial_lr: float, time_decay: float) -> float:
    return initial_lr / (1 + time_decay * step)


def ref_step(
    step: int, *, initial_lr: float, decay_rate: float, drop_every: float, steps_per_epoch: int
) -> float:
    epoch = step // steps_per_epoch
    return initial_lr * decay_rate ** math.floor((1 + epoch) / drop_every)


def ref_exponential(
    step: int, *, initial_lr: float, decay_steps: float, decay_rate: float, staircase: bool = False
) -> float:
    exponent = step / decay_steps
    if staircase:
        exponent = math.floor(exponent)
    return initial_lr * decay_rate**exponent


def ref_piecewise(
    step: int, *, initial_lr: float, boundaries: tuple[int, ...], values: tuple[float, ...]
) -> float:
    if step <= boundaries[0]:
        return values[0]
    for i in range(1, len(boundaries)):
        if boundaries[i - 1] < step <= boundaries[i]:
            return values[i]
    return values[-1]


def ref_polynomial(
    step: int, *, initial_lr: float, decay_steps: float, end_lr: float, power: float
) -> float:
    return (initial_lr - end_lr) * (1 - min(step, decay_steps) / decay_steps) ** power + end_lr


def ref_inverse_time(
    step: int, *, initial_lr: float, decay_steps: float, decay_rate: float, staircase: bool = False
) -> float:
    p = step / decay_steps
    if staircase:
        p = math.floor(p)
    return initial_lr / (1 + decay_rate * p)


def ref_cosine(
    step: int,
    *,
    initial_lr: float,
    decay_steps: float,
    alpha: float = 0.0,
    warmup_steps: float = 0.0,
) -> float:
    if step < warmup_steps:
        return initial_lr * step / warmup_steps
    t = min(step - warmup_steps, decay_steps)
    return initial_lr * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / decay_steps)) + alpha)


def ref_cosine_restarts(
    step: int,
    *,
    initial_lr: float,
    first_decay_steps: float,
    t_mul: float,
    m_mul: float,
    alpha: float = 0.0,
) -> float:
    # Walk the periods one by one: period i starts at `start` and lasts first * t_mul**i steps.
    i, start, length = 0, 0.0, float(first_decay_steps)
    while step >= start + length:
        start += length
        length *= t_mul
        i += 1
    f = (step - start) / length
    return initial_lr * ((1 - alpha) * 0.5 * m_mul**i * (1 + math.cos(math.pi * f)) + alpha)


def ref_linear(
    step: int, *, initial_lr: float, decay_steps: float, end_lr: float, warmup_steps: float = 0.0
) -> float:
    # warm up from 0, then a straight line from (warmup, lr0) to (decay_steps, end_lr)
    if step < warmup_steps:
        return initial_lr * step / warmup_steps
    if step >= decay_steps:
        return end_lr
    slope = (end_lr - initial_lr) / (decay_steps - warmup_steps)
    return initial_lr + slope * (step - warmup_steps)


def ref_wsd(
    step: int,
    *,
    initial_lr: float,
    decay_steps: float,
    decay_start: float,
    warmup_steps: float = 0.0,
    end_lr: float = 0.0,
    cooldown: str = "1-sqrt",
) -> float:
    # Hägele et al. 2024: warm-up, constant, then a cooldown over progress t in [0, 1]
    if step < warmup_steps:
        return initial_lr * step / warmup_steps
    if step < decay_start or step <= decay_steps == decay_start:  # (no cooldown: held)
        return initial_lr
    if step > decay_steps:
        return end_lr
    t = (step - decay_start) / (decay_steps - decay_start)
    f = {
        "linear": 1 - t,
        "cosine": 0.5 * (1 + math.cos(math.pi * t)),
        "1-sqrt": 1 - math.sqrt(t),
    }[cooldown]
    return end_lr + (initial_lr - end_lr) * f


def ref_one_cycle(
    step: int,
    *,
    initial_lr: float,
    total_steps: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> float:
    # PyTorch's OneCycleLR.get_lr, two phases, anneal_strategy="cos"
    def anneal_cos(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    low = initial_lr / div_factor
    phases = [
        (float(pct_start * total_steps) - 1, low, initial_lr),
        (total_steps - 1, initial_lr, low / final_div_factor),
    ]
    start_step = 0.0
    for i, (end_step, start_lr, end_lr) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            pct = min((step - start_step) / (end_step - start_step), 1.0)
            return anneal_cos(start_lr, end_lr, pct)
        start_step = end_step
    raise AssertionError  # pragma: no cover


def ref_rex(step: int, *, initial_lr: float, decay_steps: float) -> float:
    # Chen, Wolfe & Kyrillidis (MLSys 2022): lr0 (1 - z) / (1/2 + (1 - z) / 2), z = t / T
    z = min(step / decay_steps, 1.0)
    return initial_lr * (1 - z) / (0.5 + 0.5 * (1 - z))


def ref_shape(
    step: int,
    *,
    initial_lr: float,
    decay_steps: float,
    warmup_fraction: float = 0.0,
    stable_fraction: float = 0.0,
    decay_exponent: float = 1.0,
    final_lr_ratio: float = 0.0,
) -> float:
    warm_end = warmup_fraction * decay_steps
    hold_end = warm_end + stable_fraction * (decay_steps - warm_end)
    if step < warm_end:
        return initial_lr * step / warm_end
    if step < hold_end or (step <= decay_steps and hold_end == decay_steps):
        return initial_lr
    u = min((step - hold_end) / (decay_steps - hold_end), 1.0)
    end = final_lr_ratio * initial_lr
    return end + (initial_lr - end) * (1 - u) ** decay_exponent


REFERENCES = {
    "constant": ref_constant,
    "time": ref_time,
    "step": ref_step,
    "exponential": ref_exponential,
    "piecewise": ref_piecewise,
    "polynomial": ref_polynomial,
    "inverse_time": ref_inverse_time,
    "cosine": ref_cosine,
    "cosine_restarts": ref_cosine_restarts,
    "linear": ref_linear,
    "wsd": ref_wsd,
    "one_cycle": ref_one_cycle,
    "rex": ref_rex,
    "shape": ref_shape,
}


def reference_curve(family: str, params: dict[str, Any], n: int) -> np.ndarray:
    fn = REFERENCES[family]
    return np.array([fn(step, **params) for step in range(n)], dtype=np.float64)


# Parameter sets: the tutorials' settings plus others. Every decaying set changes within
# N_STEPS: its drops, boundaries, end of decay or restarts fall inside the range.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("constant", {"initial_lr": 0.1}),
    ("constant", {"initial_lr": 0.003}),
    ("constant", {"initial_lr": 1.0}),
    ("time", {"initial_lr": 0.1, "time_decay": 0.002}),
    ("time", {"initial_lr": 0.01, "time_decay": 1e-4}),
    ("time", {"initial_lr": 0.5, "time_decay": 0.05}),
    ("step", {"initial_lr": 0.1, "decay_rate": 0.5, "drop_every": 10.0, "steps_per_epoch": 50}),
    ("step", {"initial_lr": 0.1, "decay_rate": 0.5, "drop_every": 10.0, "steps_per_epoch": 100}),
    ("step", {"initial_lr": 0.01, "decay_rate": 0.8, "drop_every": 3.0, "steps_per_epoch": 64}),
    ("step", {"initial_lr": 0.05, "decay_rate": 0.25, "drop_every": 2.5, "steps_per_epoch": 37}),
    (
        "exponential",
        {"initial_lr": 0.001, "decay_steps": 500.0, "decay_rate": 0.98, "staircase": True},
    ),
    ("exponential", {"initial_lr": 0.1, "decay_steps": 100.0, "decay_rate": 0.96}),
    (
        "exponential",
        {"initial_lr": 0.01, "decay_steps": 250.0, "decay_rate": 0.5, "staircase": True},
    ),
    ("exponential", {"initial_lr": 0.05, "decay_steps": 300.0, "decay_rate": 0.9}),
    (
        "piecewise",
        {
            "initial_lr": 0.003,
            "boundaries": (1000, 2000, 3000),
            "values": (0.003, 0.002, 0.001, 0.0001),
        },
    ),
    (
        "piecewise",
        {"initial_lr": 0.1, "boundaries": (500, 1000, 1500), "values": (0.1, 0.05, 0.025, 0.0125)},
    ),
    ("piecewise", {"initial_lr": 0.01, "boundaries": (0,), "values": (0.01, 0.001)}),
    (
        "piecewise",
        {"initial_lr": 0.2, "boundaries": (99, 199, 1999), "values": (0.2, 0.1, 0.3, 0.01)},
    ),
    (
        "polynomial",
        {"initial_lr": 0.003, "decay_steps": 5000.0, "end_lr": 0.001, "power": 1.5},
    ),
    ("polynomial", {"initial_lr": 0.1, "decay_steps": 1000.0, "end_lr": 0.0, "power": 1.0}),
    ("polynomial", {"initial_lr": 0.05, "decay_steps": 1500.0, "end_lr": 0.001, "power": 0.5}),
    ("polynomial", {"initial_lr": 0.01, "decay_steps": 800.0, "end_lr": 1e-4, "power": 2.0}),
    ("inverse_time", {"initial_lr": 0.003, "decay_steps": 100.0, "decay_rate": 0.5}),
    (
        "inverse_time",
        {"initial_lr": 0.1, "decay_steps": 250.0, "decay_rate": 1.0, "staircase": True},
    ),
    ("inverse_time", {"initial_lr": 0.01, "decay_steps": 1000.0, "decay_rate": 2.0}),
    ("cosine", {"initial_lr": 0.1, "decay_steps": 2000.0}),
    ("cosine", {"initial_lr": 0.1, "decay_steps": 1500.0, "alpha": 0.1}),
    ("cosine", {"initial_lr": 0.1, "decay_steps": 1500.0, "warmup_steps": 200.0}),
    (
        "cosine",
        {"initial_lr": 0.05, "decay_steps": 1000.0, "alpha": 0.05, "warmup_steps": 100.0},
    ),
    (
        "cosine_restarts",
        {"initial_lr": 0.1, "first_decay_steps": 300.0, "t_mul": 1.0, "m_mul": 1.0},
    ),
    (
        "cosine_restarts",
        {"initial_lr": 0.1, "first_decay_steps": 100.0, "t_mul": 2.0, "m_mul": 0.8},
    ),
    (
        "cosine_restarts",
        {
            "initial_lr": 0.05,
            "first_decay_steps": 250.0,
            "t_mul": 1.0,
            "m_mul": 0.5,
            "alpha": 0.1,
        },
    ),
    (
        "cosine_restarts",
        {
            "initial_lr": 0.1,
            "first_decay_steps": 200.0,
            "t_mul": 2.0,
            "m_mul": 0.9,
            "alpha": 0.05,
        },
    ),
    # the later families reach their end value at decay_steps (one_cycle: total_steps - 1)
    ("linear", {"initial_lr": 0.1, "decay_steps": 1999.0, "end_lr": 0.0}),
    ("linear", {"initial_lr": 0.1, "decay_steps": 1999.0, "end_lr": 0.0, "warmup_steps": 100.0}),
    ("linear", {"initial_lr": 0.05, "decay_steps": 1500.0, "end_lr": 0.005, "warmup_steps": 37.5}),
    (
        "wsd",
        {"initial_lr": 0.1, "decay_steps": 1999.0, "decay_start": 1599.2, "warmup_steps": 100.0},
    ),
    (
        "wsd",
        {
            "initial_lr": 0.1,
            "decay_steps": 1999.0,
            "decay_start": 1400.0,
            "warmup_steps": 50.0,
            "cooldown": "cosine",
        },
    ),
    (
        "wsd",
        {
            "initial_lr": 0.02,
            "decay_steps": 1800.0,
            "decay_start": 1500.0,
            "end_lr": 0.002,
            "cooldown": "linear",
        },
    ),
    ("wsd", {"initial_lr": 0.3, "decay_steps": 1000.0, "decay_start": 1000.0, "end_lr": 0.03}),
    ("one_cycle", {"initial_lr": 0.1, "total_steps": 2000.0}),
    (
        "one_cycle",
        {
            "initial_lr": 0.3,
            "total_steps": 1500.0,
            "pct_start": 0.25,
            "div_factor": 10.0,
            "final_div_factor": 100.0,
        },
    ),
    ("one_cycle", {"initial_lr": 0.05, "total_steps": 1999.0, "pct_start": 0.5}),
    ("rex", {"initial_lr": 0.1, "decay_steps": 1999.0}),
    ("rex", {"initial_lr": 0.01, "decay_steps": 1000.0}),
    ("rex", {"initial_lr": 0.5, "decay_steps": 1234.5}),
    ("shape", {"initial_lr": 0.1, "decay_steps": 1999.0}),
    (
        "shape",
        {
            "initial_lr": 0.1,
            "decay_steps": 1999.0,
            "warmup_fraction": 0.1,
            "stable_fraction": 0.3,
            "decay_exponent": 2.0,
        },
    ),
    (
        "shape",
        {
            "initial_lr": 0.05,
            "decay_steps": 1500.0,
            "warmup_fraction": 0.05,
            "stable_fraction": 0.6,
            "decay_exponent": 0.5,
            "final_lr_ratio": 0.1,
        },
    ),
    (
        "shape",
        {"initial_lr": 0.2, "decay_steps": 1999.0, "warmup_fraction": 0.2, "stable_fraction": 1.0},
    ),
]

CASE_IDS = [f"{family}-{i}" for i, (family, _) in enumerate(CASES)]


def build(family: str, params: dict[str, Any]) -> Schedule:
    return FAMILIES[family](**params)


def keras_curve(schedule: Schedule, n: int) -> np.ndarray:
    """The Keras-side rate at steps 0 .. n - 1 (float64 copy of Keras's float32 values)."""
    import keras

    obj = schedule.keras()
    if not isinstance(obj, keras.optimizers.schedules.LearningRateSchedule):
        # A plain float: read back the rate the optimizer actually holds.
        lr = float(keras.optimizers.SGD(learning_rate=obj).learning_rate)
        return np.full(n, lr)
    try:
        values = np.asarray(obj(np.arange(n)), dtype=np.float64)
        if values.shape == (n,):
            return values
    except ValueError:
        # CosineDecay with warm-up branches with ops.cond, which needs a scalar step.
        pass
    return np.array([float(obj(step)) for step in range(n)], dtype=np.float64)


def test_cases_cover_every_family() -> None:
    covered = {family for family, _ in CASES}
    assert covered == set(FAMILIES) == set(family_names())
    for family in FAMILIES:
        assert sum(f == family for f, _ in CASES) >= 3, family


@pytest.mark.parametrize(("family", "params"), CASES, ids=CASE_IDS)
def test_curve_matches_reference(family: str, params: dict[str, Any]) -> None:
    schedule = build(family, params)
    ours = schedule.curve(N_STEPS)
    expected = reference_curve(family, params, N_STEPS)

    assert ours.dtype == np.float64
    assert ours.shape == (N_STEPS,)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=0)

    # The parameter set really exercises the schedule inside the range.
    if family != "constant":
        assert len(np.unique(ours)) > 1
    if family == "cosine_restarts":
        assert np.any(np.diff(ours) > 0), "no restart inside the range"
    if family == "piecewise":
        assert params["boundaries"][0] < N_STEPS - 1


@pytest.mark.parametrize(("family", "params"), CASES, ids=CASE_IDS)
def test_keras_schedule_matches_numpy(family: str, params: dict[str, Any]) -> None:
    schedule = build(family, params)
    ours = schedule.curve(N_STEPS)
    keras_vals = keras_curve(schedule, N_STEPS)
    # Keras computes in float32, so compare to ~1e-6 relative; values near zero (the end of a
    # cosine, the far tail of a decay) are compared to 1e-6 of the initial rate instead.
    np.testing.assert_allclose(keras_vals, ours, rtol=1e-6, atol=1e-6 * schedule.initial_lr)


@pytest.mark.parametrize(("family", "params"), CASES, ids=CASE_IDS)
def test_lr_at_matches_curve(family: str, params: dict[str, Any]) -> None:
    schedule = build(family, params)
    curve = schedule.curve(N_STEPS)
    for k in (0, 1, 99, 100, 101, 499, 500, 999, 1000, 1001, 1500, N_STEPS - 1):
        value = schedule.lr_at(k)
        assert isinstance(value, float)
        assert value == pytest.approx(curve[k], rel=1e-12, abs=0)
    steps = [0, 7, 1000, N_STEPS - 1]
    np.testing.assert_allclose(schedule.rates(steps), curve[steps], rtol=1e-12, atol=0)


def test_constant_keras_is_a_float() -> None:
    assert Constant(0.003).keras() == 0.003
    assert isinstance(Constant(0.003).keras(), float)


@pytest.mark.parametrize(
    "schedule",
    [
        Exponential(0.001, 500.0, 0.98, staircase=True),
        Exponential(0.1, 100.0, 0.96),
        StepDecay(0.1, decay_rate=0.5, drop_every=10.0, steps_per_epoch=50),
        StepDecay(0.01, decay_rate=0.8, drop_every=3.0, steps_per_epoch=64),
    ],
    ids=["exponential-staircase", "exponential", "step-50", "step-64"],
)
def test_optimizer_applies_schedule(schedule: Schedule) -> None:
    import keras

    opt = keras.optimizers.SGD(learning_rate=schedule.keras())
    spe = getattr(schedule, "steps_per_epoch", 1)
    for k in (0, 1, 100, 449, 499, 500, 501, 9 * spe - 1, 9 * spe, 1200, 1999):
        opt.iterations.assign(k)
        assert float(opt.learning_rate) == pytest.approx(schedule.lr_at(k), rel=1e-6), k


# --------------------------------------------------------------------------------------------
# Restart boundaries of CosineRestarts with t_mul != 1.
# --------------------------------------------------------------------------------------------

# (first_decay_steps, t_mul, restart index i, step where restart i begins)
RESTART_BOUNDARIES = [
    (10.0, 3.0, 5, 1210),
    (400.0, 1.25, 3, 1525),
    (64.0, 1.5, 5, 844),
    (64.0, 1.5, 7, 2059),
]


@pytest.mark.parametrize(("first", "t_mul", "i", "step"), RESTART_BOUNDARIES)
def test_restart_boundary_reference_and_keras(first: float, t_mul: float, i: int, step: int):
    # The reference and Keras agree: a new period starts at full (scaled) height.
    expected = 0.1 * 0.7**i
    params = {"initial_lr": 0.1, "first_decay_steps": first, "t_mul": t_mul, "m_mul": 0.7}
    assert ref_cosine_restarts(step, **params) == pytest.approx(expected, rel=1e-12)
    assert ref_cosine_restarts(step - 1, **params) < 1e-5 * 0.1
    sched = CosineRestarts(**params).keras()
    assert float(sched(step)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("first", "t_mul", "i", "step"), RESTART_BOUNDARIES)
def test_restart_boundary_numpy(first: float, t_mul: float, i: int, step: int) -> None:
    schedule = CosineRestarts(0.1, first, t_mul=t_mul, m_mul=0.7)
    assert schedule.lr_at(step) == pytest.approx(0.1 * 0.7**i, rel=1e-9)


# --------------------------------------------------------------------------------------------
# from_dimensions: epochs -> steps
# --------------------------------------------------------------------------------------------


def test_from_dimensions_exponential_epochs_to_steps() -> None:
    s = from_dimensions(
        "exponential",
        {"initial_lr": 0.01, "drop_every": 2, "decay_rate": 0.9, "staircase": True},
        steps_per_epoch=125,
        epochs=20,
    )
    assert s == Exponential(0.01, decay_steps=250.0, decay_rate=0.9, staircase=True)
    assert s.lr_at(249) == pytest.approx(0.01)
    assert s.lr_at(250) == pytest.approx(0.009)


def test_from_dimensions_inverse_time_epochs_to_steps() -> None:
    s = from_dimensions(
        "inverse_time",
        {"initial_lr": 0.003, "drop_every": 3, "decay_rate": 0.5},
        steps_per_epoch=40,
        epochs=10,
    )
    assert s == InverseTime(0.003, decay_steps=120.0, decay_rate=0.5, staircase=False)


def test_from_dimensions_step_keeps_epochs() -> None:
    s = from_dimensions(
        "step",
        {"initial_lr": 0.1, "decay_rate": 0.5, "drop_every": 10},
        steps_per_epoch=50,
        epochs=30,
    )
    assert s == StepDecay(0.1, decay_rate=0.5, drop_every=10.0, steps_per_epoch=50)
    assert isinstance(s, StepDecay)
    # The tutorial's (1 + epoch): the first drop is at the start of 0-based epoch 9.
    assert s.lr_at(9 * 50 - 1) == pytest.approx(0.1)
    assert s.lr_at(9 * 50) == pytest.approx(0.05)
    assert s.lr_at(19 * 50) == pytest.approx(0.025)


def test_from_dimensions_piecewise_from_drop_every() -> None:
    spe, epochs = 50, 10
    s = from_dimensions(
        "piecewise",
        {"initial_lr": 0.1, "drop_every": 3, "decay_rate": 0.5},
        steps_per_epoch=spe,
        epochs=epochs,
    )
    assert isinstance(s, Piecewise)
    # Drops at the first step of epochs 3, 6, 9; none at epoch 12 >= epochs.
    assert s.boundaries == (3 * spe - 1, 6 * spe - 1, 9 * spe - 1)
    assert s.values == pytest.approx((0.1, 0.05, 0.025, 0.0125))
    assert s.lr_at(3 * spe - 1) == pytest.approx(0.1)
    assert s.lr_at(3 * spe) == pytest.approx(0.05)
    curve = s.curve(epochs * spe)
    drops = np.nonzero(np.diff(curve))[0] + 1
    assert list(drops) == [3 * spe, 6 * spe, 9 * spe]


def test_from_dimensions_piecewise_no_drop_at_or_after_end() -> None:
    spe = 20
    s = from_dimensions(
        "piecewise",
        {"initial_lr": 0.1, "drop_every": 5, "decay_rate": 0.1},
        steps_per_epoch=spe,
        epochs=10,
    )
    assert s.boundaries == (5 * spe - 1,)
    assert s.values == pytest.approx((0.1, 0.01))

    s = from_dimensions(
        "piecewise",
        {"initial_lr": 0.1, "drop_every": 2.5, "decay_rate": 0.5},
        steps_per_epoch=4,
        epochs=10,
    )
    assert s.boundaries == (9, 19, 29)
    assert all(b + 1 < 10 * 4 for b in s.boundaries)

    s = from_dimensions(
        "piecewise",
        {"initial_lr": 0.1, "drop_every": 20, "decay_rate": 0.5},
        steps_per_epoch=4,
        epochs=10,
    )
    assert s.boundaries == ()
    assert s.values == (0.1,)
    assert s.keras() == 0.1


def test_from_dimensions_piecewise_explicit() -> None:
    s = from_dimensions(
        "piecewise",
        {
            "initial_lr": 0.003,
            "boundaries": [1000, 2000, 3000],
            "values": [0.003, 0.002, 0.001, 0.0001],
        },
        steps_per_epoch=100,
        epochs=40,
    )
    assert s == Piecewise(0.003, (1000, 2000, 3000), (0.003, 0.002, 0.001, 0.0001))


def test_from_dimensions_polynomial_defaults_to_whole_run() -> None:
    s = from_dimensions(
        "polynomial",
        {"initial_lr": 0.1, "power": 2.0, "end_lr_factor": 0.1},
        steps_per_epoch=30,
        epochs=12,
    )
    assert isinstance(s, Polynomial)
    assert s.decay_steps == 360.0
    assert s.end_lr == pytest.approx(0.01)
    assert s.power == 2.0
    assert s.lr_at(359) > s.end_lr
    assert s.lr_at(360) == pytest.approx(s.end_lr)

    default = from_dimensions("polynomial", {"initial_lr": 0.1}, steps_per_epoch=30, epochs=12)
    assert default.end_lr == pytest.approx(0.001)
    assert default.power == 1.0

    s = from_dimensions(
        "polynomial", {"initial_lr": 0.1, "decay_epochs": 5}, steps_per_epoch=30, epochs=12
    )
    assert s.decay_steps == 150.0


def test_from_dimensions_polynomial_tutorial_decay_steps_wins() -> None:
    s = from_dimensions(
        "polynomial",
        {
            "initial_lr": 0.003,
            "decay_steps": 5000,
            "end_lr": 0.001,
            "power": 1.5,
            "decay_epochs": 3,
        },
        steps_per_epoch=100,
        epochs=20,
    )
    assert s == Polynomial(0.003, decay_steps=5000.0, end_lr=0.001, power=1.5)


def test_from_dimensions_cosine() -> None:
    s = from_dimensions("cosine", {"initial_lr": 0.1, "alpha": 0.1}, steps_per_epoch=25, epochs=8)
    assert s == Cosine(0.1, decay_steps=200.0, alpha=0.1, warmup_steps=0.0)
    assert s.lr_at(200) == pytest.approx(0.01)

    s = from_dimensions(
        "cosine",
        {"initial_lr": 0.1, "warmup_epochs": 2, "decay_epochs": 4},
        steps_per_epoch=25,
        epochs=8,
    )
    assert s.warmup_steps == 50.0
    assert s.decay_steps == 100.0

    s = from_dimensions(
        "cosine",
        {"initial_lr": 0.1, "decay_steps": 777, "decay_epochs": 4},
        steps_per_epoch=25,
        epochs=8,
    )
    assert s.decay_steps == 777.0


def test_from_dimensions_explicit_decay_steps_wins() -> None:
    s = from_dimensions(
        "exponential",
        {
            "initial_lr": 0.001,
            "decay_steps": 500,
            "decay_rate": 0.98,
            "staircase": True,
            "drop_every": 7,
        },
        steps_per_epoch=125,
        epochs=20,
    )
    assert s == Exponential(0.001, 500.0, 0.98, staircase=True)


def test_from_dimensions_other_families() -> None:
    assert from_dimensions("constant", {"initial_lr": 0.2}, steps_per_epoch=9, epochs=3) == (
        Constant(0.2)
    )
    assert from_dimensions(
        "time", {"initial_lr": 0.1, "time_decay": 0.002}, steps_per_epoch=9, epochs=3
    ) == TimeDecay(0.1, time_decay=0.002)
    s = from_dimensions(
        "cosine_restarts",
        {"initial_lr": 0.1, "restart_epochs": 3, "t_mul": 1.0, "m_mul": 0.5, "alpha": 0.01},
        steps_per_epoch=40,
        epochs=12,
    )
    assert s == CosineRestarts(0.1, first_decay_steps=120.0, t_mul=1.0, m_mul=0.5, alpha=0.01)


def test_from_dimensions_errors() -> None:
    with pytest.raises(ConfigError, match="nosuch"):
        from_dimensions("nosuch", {"initial_lr": 0.1}, steps_per_epoch=10, epochs=2)
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        from_dimensions("constant", {"initial_lr": 0.1}, steps_per_epoch=0, epochs=2)


# --------------------------------------------------------------------------------------------
# to_dict / from_dict
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "params"), CASES, ids=CASE_IDS)
def test_dict_round_trip(family: str, params: dict[str, Any]) -> None:
    schedule = build(family, params)
    data = schedule.to_dict()
    assert data["family"] == family
    assert from_dict(data) == schedule
    # Through JSON as stored with every trial.
    again = from_dict(json.loads(json.dumps(data)))
    assert again == schedule
    assert type(again) is type(schedule)
    np.testing.assert_array_equal(again.curve(50), schedule.curve(50))


def _one_line_config_error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_from_dict_unknown_family() -> None:
    message = _one_line_config_error({"family": "cyclical", "initial_lr": 0.1})
    assert "cyclical" in message
    message = _one_line_config_error({"initial_lr": 0.1})
    assert "family" in message


def test_from_dict_unknown_parameter() -> None:
    message = _one_line_config_error(
        {"family": "exponential", "initial_lr": 0.1, "decay_stepz": 10}
    )
    assert "decay_stepz" in message
    assert "exponential" in message


def test_from_dict_missing_parameter() -> None:
    message = _one_line_config_error({"family": "cosine"})
    assert "initial_lr" in message


def test_from_dict_reads_the_earlier_names() -> None:
    # stores written before the parameters took the study file's names
    old_step = {
        "family": "step",
        "initial_lr": 0.1,
        "drop": 0.5,
        "epochs_drop": 2,
        "steps_per_epoch": 10,
    }
    assert from_dict(old_step) == StepDecay(0.1, decay_rate=0.5, drop_every=2.0, steps_per_epoch=10)
    assert from_dict({"family": "time", "initial_lr": 0.1, "decay": 0.002}) == TimeDecay(
        0.1, time_decay=0.002
    )
    # the current names are what it writes
    data = from_dict(old_step).to_dict()
    assert data == {
        "family": "step",
        "initial_lr": 0.1,
        "decay_rate": 0.5,
        "drop_every": 2,
        "steps_per_epoch": 10,
    }
    assert "drop" not in data and "epochs_drop" not in data


def test_from_dict_earlier_and_current_name_together() -> None:
    message = _one_line_config_error(
        {"family": "step", "initial_lr": 0.1, "drop": 0.5, "decay_rate": 0.5}
    )
    assert "drop" in message and "decay_rate" in message


def test_every_renamed_field_exists() -> None:
    for cls in FAMILIES.values():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(cls.renamed.values()) <= fields, cls.family
        assert not set(cls.renamed) & fields, cls.family


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("bad_lr", [0.0, -0.1, math.nan, math.inf])
def test_non_positive_initial_lr(family: str, bad_lr: float) -> None:
    with pytest.raises(ConfigError):
        FAMILIES[family](bad_lr)
    with pytest.raises(ConfigError):
        from_dict({"family": family, "initial_lr": bad_lr})


@pytest.mark.parametrize("rate", [0.0, -0.5, 1.5, math.nan])
def test_step_decay_rate_outside_unit_interval(rate: float) -> None:
    with pytest.raises(ConfigError, match="decay_rate"):
        StepDecay(0.1, decay_rate=rate, drop_every=10.0, steps_per_epoch=5)


def test_step_decay_rate_one_is_allowed() -> None:
    s = StepDecay(0.1, decay_rate=1.0, drop_every=2.0, steps_per_epoch=5)
    np.testing.assert_array_equal(s.curve(100), np.full(100, 0.1))


def test_step_bad_steps_per_epoch() -> None:
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        StepDecay(0.1, steps_per_epoch=0)
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        StepDecay(0.1, steps_per_epoch=2.5)


def test_piecewise_mismatched_lengths() -> None:
    with pytest.raises(ConfigError, match="one more"):
        Piecewise(0.1, boundaries=(10, 20), values=(0.1, 0.01))
    with pytest.raises(ConfigError, match="one more"):
        Piecewise(0.1, boundaries=(10,), values=(0.1, 0.01, 0.001))


@pytest.mark.parametrize("boundaries", [(10, 10), (20, 10), (5, 30, 30)])
def test_piecewise_non_increasing_boundaries(boundaries: tuple[int, ...]) -> None:
    values = tuple(0.1 / 2**i for i in range(len(boundaries) + 1))
    with pytest.raises(ConfigError, match="increase"):
        Piecewise(0.1, boundaries=boundaries, values=values)


def test_piecewise_first_value_must_be_initial_lr() -> None:
    with pytest.raises(ConfigError):
        Piecewise(0.1, boundaries=(10,), values=(0.2, 0.01))


def test_polynomial_end_lr_above_initial() -> None:
    with pytest.raises(ConfigError, match="end_lr"):
        Polynomial(0.01, decay_steps=100.0, end_lr=0.02)
    with pytest.raises(ConfigError, match="end_lr"):
        Polynomial(0.01, decay_steps=100.0, end_lr=-0.001)


def test_other_validation() -> None:
    with pytest.raises(ConfigError):
        Exponential(0.1, decay_steps=0.0)
    with pytest.raises(ConfigError):
        Exponential(0.1, decay_rate=0.0)
    with pytest.raises(ConfigError):
        TimeDecay(0.1, time_decay=-1.0)
    with pytest.raises(ConfigError):
        InverseTime(0.1, decay_rate=-0.5)
    with pytest.raises(ConfigError):
        Cosine(0.1, alpha=1.5)
    with pytest.raises(ConfigError):
        Cosine(0.1, warmup_steps=-1.0)
    with pytest.raises(ConfigError):
        CosineRestarts(0.1, m_mul=0.0)
    with pytest.raises(ConfigError):
        CosineRestarts(0.1, t_mul=0.0)


# --------------------------------------------------------------------------------------------
# Drawing curves does not import Keras / TensorFlow
# --------------------------------------------------------------------------------------------


def test_numpy_side_does_not_import_keras() -> None:
    code = (
        "import sys\n"
        "import sweeper, sweeper.training.schedules\n"
        "from sweeper.training.families.exponential import Exponential\n"
        "c = Exponential(0.1, 10, 0.9).curve(100)\n"
        "assert c.shape == (100,)\n"
        "print('keras' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------------------------
# The later families: linear, wsd, one_cycle, rex, shape
# --------------------------------------------------------------------------------------------

LATER = ("linear", "wsd", "one_cycle", "rex", "shape")
LATER_CASES = [(f, p) for f, p in CASES if f in LATER]
LATER_IDS = [f"{f}-{i}" for i, (f, _) in enumerate(LATER_CASES)]


@pytest.mark.parametrize(("family", "params"), LATER_CASES, ids=LATER_IDS)
def test_later_families_keras_match_the_published_formula_step_by_step(
    family: str, params: dict[str, Any]
) -> None:
    # every step, the ends included (warm-up start, end of the hold, last step, beyond), to 1e-6
    # relative; where the formula gives exactly 0 (a decay to zero), Keras gives 0 too
    schedule = build(family, params)
    expected = reference_curve(family, params, N_STEPS)
    keras_vals = keras_curve(schedule, N_STEPS)
    np.testing.assert_allclose(keras_vals, expected, rtol=1e-6, atol=0)
    np.testing.assert_allclose(schedule.curve(N_STEPS), expected, rtol=1e-9, atol=0)


def _both(schedule: Schedule, steps: list[int]) -> list[tuple[float, float]]:
    obj = schedule.keras()
    return [(schedule.lr_at(k), float(obj(k))) for k in steps]


def _assert_rates(schedule: Schedule, expected: dict[int, float]) -> None:
    for (ours, keras_value), (step, want) in zip(
        _both(schedule, list(expected)), expected.items(), strict=True
    ):
        assert ours == pytest.approx(want, rel=1e-12, abs=0), (schedule.family, step)
        assert keras_value == pytest.approx(want, rel=1e-6, abs=0), (schedule.family, step)


def test_linear_endpoints() -> None:
    s = Linear(0.1, decay_steps=999.0, end_lr=0.0, warmup_steps=100.0)
    _assert_rates(s, {0: 0.0, 50: 0.05, 100: 0.1, 549: 0.1 * 450 / 899, 998: 0.1 / 899})
    _assert_rates(s, {999: 0.0, 1500: 0.0})
    s = Linear(0.2, decay_steps=100.0, end_lr=0.02)  # no warm-up: lr0 at step 0
    _assert_rates(s, {0: 0.2, 50: 0.11, 100: 0.02, 101: 0.02})


def test_wsd_endpoints_and_the_one_minus_sqrt_cooldown() -> None:
    s = WarmupStableDecay(0.1, decay_steps=1000.0, decay_start=800.0, warmup_steps=100.0)
    _assert_rates(s, {0: 0.0, 10: 0.01, 100: 0.1, 799: 0.1, 800: 0.1, 1000: 0.0, 1200: 0.0})
    for step in (850, 900, 999):  # lr0 (1 - sqrt(t)) over the cooldown's progress t
        t = (step - 800) / 200
        _assert_rates(s, {step: 0.1 * (1 - math.sqrt(t))})
    c = WarmupStableDecay(0.1, decay_steps=1000.0, decay_start=800.0, cooldown="cosine")
    _assert_rates(c, {0: 0.1, 800: 0.1, 900: 0.05, 1000: 0.0})
    lin = WarmupStableDecay(0.1, 1000.0, 800.0, end_lr=0.01, cooldown="linear")
    _assert_rates(lin, {900: 0.055, 1000: 0.01})


def test_one_cycle_endpoints() -> None:
    s = OneCycle(0.1, total_steps=1000.0, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    _assert_rates(s, {0: 0.1 / 25, 299: 0.1, 999: 0.1 / 25 / 1e4, 1500: 0.1 / 25 / 1e4})
    assert s.lr_at(149.5) == pytest.approx((0.1 + 0.004) / 2, rel=1e-12)  # half-way up


def test_rex_endpoints() -> None:
    s = Rex(0.1, decay_steps=1000.0)
    _assert_rates(s, {0: 0.1, 500: 0.1 * 0.5 / 0.75, 999: 0.1 * 0.001 / 0.5005, 1000: 0.0})
    _assert_rates(s, {2000: 0.0})


def test_shape_endpoints() -> None:
    s = Shape(0.1, 1000.0, warmup_fraction=0.1, stable_fraction=0.5, decay_exponent=2.0)
    # warm-up over 100 steps, held to 100 + 0.5 * 900 = 550, then (remaining fraction) ** 2
    _assert_rates(s, {0: 0.0, 100: 0.1, 549: 0.1, 550: 0.1, 775: 0.1 * 0.25, 1000: 0.0})
    r = Shape(0.1, 1000.0, final_lr_ratio=0.1)
    _assert_rates(r, {0: 0.1, 500: 0.055, 1000: 0.01, 1001: 0.01})


def test_one_cycle_matches_pytorch_one_cycle_lr() -> None:
    torch = pytest.importorskip("torch")
    for total, pct, div, final in [
        (2000, 0.3, 25.0, 1e4),
        (1500, 0.25, 10.0, 100.0),
        (37, 0.5, 4.0, 10.0),
    ]:
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([param], lr=0.1)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=0.1,
            total_steps=total,
            pct_start=pct,
            div_factor=div,
            final_div_factor=final,
            anneal_strategy="cos",
            three_phase=False,
            cycle_momentum=False,
        )
        rates = []
        for k in range(total):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            if k < total - 1:
                sched.step()
        ours = OneCycle(0.1, float(total), pct_start=pct, div_factor=div, final_div_factor=final)
        np.testing.assert_allclose(ours.curve(total), rates, rtol=1e-9, atol=0)


# the shape family's cosine approximation, as documented in Shape's docstring
COSINE_FIT = {"stable": 0.135, "exponent": 1.34}


def _cosine_gap(stable: float, exponent: float, n: int = 10_001) -> tuple[float, float]:
    """Max and RMS |shape - cosine| / lr0 over a run of n points, both decaying to zero."""
    steps = np.arange(n)
    cos = Cosine(1.0, decay_steps=float(n - 1)).rates(steps)
    shp = Shape(1.0, float(n - 1), stable_fraction=stable, decay_exponent=exponent).rates(steps)
    gap = np.abs(shp - cos)
    return float(gap.max()), float(np.sqrt(np.mean(gap**2)))


def test_shape_approximates_cosine_as_documented() -> None:
    worst, rms = _cosine_gap(**COSINE_FIT)
    assert worst == pytest.approx(0.0451, abs=5e-4)
    assert rms == pytest.approx(0.0303, abs=5e-4)
    # no point of a coarse grid comes closer
    coarse = min(
        _cosine_gap(s, p, 2001)[0] for s in np.linspace(0, 0.5, 11) for p in np.linspace(0.5, 3, 26)
    )
    assert coarse >= worst - 1e-3


def test_shape_holds_constant_linear_polynomial_wsd_and_decay_to_zero() -> None:
    n, steps = 1000.0, np.arange(1001)
    lr = 0.1
    constant = Constant(lr).rates(steps)
    np.testing.assert_allclose(Shape(lr, n, stable_fraction=1.0).rates(steps), constant)
    np.testing.assert_allclose(Shape(lr, n, final_lr_ratio=1.0).rates(steps), constant)
    linear = Linear(lr, decay_steps=n, end_lr=0.0).rates(steps)
    np.testing.assert_allclose(Shape(lr, n).rates(steps), linear, rtol=1e-12, atol=1e-15)
    poly = Polynomial(lr, decay_steps=n, end_lr=0.02, power=2.5).rates(steps)
    shape = Shape(lr, n, decay_exponent=2.5, final_lr_ratio=0.2).rates(steps)
    np.testing.assert_allclose(shape, poly, rtol=1e-12, atol=1e-15)
    wsd = WarmupStableDecay(lr, n, decay_start=800.0, warmup_steps=100.0, cooldown="linear")
    point = Shape(lr, n, warmup_fraction=0.1, stable_fraction=700 / 900)
    np.testing.assert_allclose(point.rates(steps), wsd.rates(steps), rtol=1e-12, atol=1e-15)
    assert Shape(lr, n, decay_exponent=0.7).lr_at(1000) == 0.0


def test_epoch_step_decay_config() -> None:
    import keras

    from sweeper.training.keras_schedules import EpochStepDecay

    obj = StepDecay(0.1, decay_rate=0.5, drop_every=2.0, steps_per_epoch=10).keras()
    config = obj.get_config()
    assert config["decay_rate"] == 0.5 and config["drop_every"] == 2.0
    assert "drop" not in config and "epochs_drop" not in config
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(obj))
    assert type(again) is EpochStepDecay and again.get_config() == config
    # a config saved under the earlier keys (a checkpoint written before the rename)
    old = {k: v for k, v in config.items() if k not in ("decay_rate", "drop_every")}
    old.update(drop=0.5, epochs_drop=2.0)
    restored = EpochStepDecay.from_config(old)
    assert restored.get_config() == config
    for step in (0, 9, 10, 19, 20, 55):
        assert float(restored(step)) == float(obj(step))


def test_later_keras_schedules_serialise() -> None:
    import keras

    for family, params in LATER_CASES:
        obj = build(family, params).keras()
        again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(obj))
        assert type(again) is type(obj)
        assert again.get_config() == obj.get_config()
        for step in (0, 1000, 1999):
            assert float(again(step)) == float(obj(step))
        opt = keras.optimizers.SGD(learning_rate=obj)
        clone = keras.optimizers.SGD.from_config(opt.get_config())
        assert float(clone.learning_rate) == float(opt.learning_rate)


def test_from_dimensions_later_families_end_at_the_last_update() -> None:
    spe, epochs = 50, 4
    last = spe * epochs - 1
    lin = from_dimensions(
        "linear",
        {"initial_lr": 0.1, "warmup_epochs": 0.5, "end_lr_factor": 0.0},
        steps_per_epoch=spe,
        epochs=epochs,
    )
    assert lin == Linear(0.1, decay_steps=float(last), end_lr=0.0, warmup_steps=25.0)
    assert lin.lr_at(last) == 0.0 and lin.lr_at(last - 1) > 0
    wsd = from_dimensions(
        "wsd",
        {"initial_lr": 0.1, "cooldown_fraction": 0.2, "cooldown_shape": "cosine"},
        steps_per_epoch=spe,
        epochs=epochs,
    )
    assert wsd == WarmupStableDecay(
        0.1, float(last), decay_start=last - 0.2 * last, end_lr=0.0, cooldown="cosine"
    )
    # a cooldown that would start inside the warm-up starts where the warm-up ends
    late = from_dimensions(
        "wsd",
        {"initial_lr": 0.1, "cooldown_fraction": 0.9, "warmup_epochs": 1.0},
        steps_per_epoch=spe,
        epochs=epochs,
    )
    assert isinstance(late, WarmupStableDecay)
    assert late.decay_start == late.warmup_steps == 50.0
    cycle = from_dimensions(
        "one_cycle", {"initial_lr": 0.1, "pct_start": 0.25}, steps_per_epoch=spe, epochs=epochs
    )
    assert cycle == OneCycle(0.1, total_steps=200.0, pct_start=0.25)
    assert cycle.lr_at(last) == pytest.approx(0.1 / 25 / 1e4)
    rex = from_dimensions("rex", {"initial_lr": 0.1}, steps_per_epoch=spe, epochs=epochs)
    assert rex == Rex(0.1, decay_steps=float(last))
    shape = from_dimensions(
        "shape",
        {
            "initial_lr": 0.1,
            "warmup_fraction": 0.1,
            "stable_fraction": 0.5,
            "decay_exponent": 2.0,
            "final_lr_ratio": 0.0,
        },
        steps_per_epoch=spe,
        epochs=epochs,
    )
    assert shape == Shape(0.1, float(last), 0.1, 0.5, 2.0, 0.0)
    assert shape.lr_at(last) == 0.0
    # a baseline's decay_steps (in steps) wins, as for the tutorials' families
    native = from_dimensions(
        "linear", {"initial_lr": 0.1, "decay_steps": 120}, steps_per_epoch=spe, epochs=epochs
    )
    assert native == Linear(0.1, decay_steps=120.0)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: Linear(0.1, decay_steps=100.0, warmup_steps=100.0), ["linear", "warmup_steps"]),
        (lambda: Linear(0.1, decay_steps=100.0, end_lr=0.2), ["linear", "end_lr"]),
        (lambda: WarmupStableDecay(0.1, 100.0, decay_start=120.0), ["wsd", "decay_start"]),
        (lambda: WarmupStableDecay(0.1, 100.0, 50.0, warmup_steps=60.0), ["wsd", "warmup_steps"]),
        (lambda: WarmupStableDecay(0.1, 100.0, 50.0, cooldown="square"), ["wsd", "square"]),
        (lambda: OneCycle(0.1, 100.0, pct_start=1.0), ["one_cycle", "pct_start"]),
        (lambda: OneCycle(0.1, 10.0, pct_start=0.05), ["one_cycle", "pct_start", "train longer"]),
        (lambda: OneCycle(0.1, 100.0, div_factor=0.0), ["one_cycle", "div_factor"]),
        (lambda: Rex(0.1, decay_steps=0.0), ["rex", "decay_steps"]),
        (lambda: Shape(0.1, 100.0, warmup_fraction=1.0), ["shape", "warmup_fraction"]),
        (lambda: Shape(0.1, 100.0, stable_fraction=1.5), ["shape", "stable_fraction"]),
        (lambda: Shape(0.1, 100.0, final_lr_ratio=-0.1), ["shape", "final_lr_ratio"]),
        (lambda: Shape(0.1, 100.0, decay_exponent=0.0), ["shape", "decay_exponent"]),
        (
            lambda: from_dimensions(
                "linear", {"initial_lr": 0.1, "warmup_epochs": 3}, steps_per_epoch=10, epochs=3
            ),
            ["linear", "warmup_epochs", "3 epochs"],
        ),
    ],
)
def test_later_families_refuse_bad_settings_in_one_line(make: Any, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message
