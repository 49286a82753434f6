"""Tests for sweeper.training.schedule_code: the tuned schedule as a self-contained Keras snippet.

Every snippet is written to a file and run in ONE fresh interpreter (:data:`DRIVER`) whose
``sys.meta_path`` starts with a finder that refuses ``sweeper`` and ``sweeper.*``: each snippet
in its own namespace, its ``learning_rate`` evaluated at every step 0 .. N_STEPS - 1 and its
``optimizer``'s settings read back. Then the finder is removed and the same interpreter runs the
whole snippets (the schedule-free ones import sweeper) beside what sweeper itself builds: the
optimizer of ``OptimizerSpec.build`` and the schedule's Keras twin ``schedule.keras()``.

Tolerance against the NumPy curve ``schedule.curve(N_STEPS)`` (Keras computes in float32):
``assert_allclose(rtol=2e-6, atol=1e-12 * initial_lr)``, but for Keras's CosineDecay and
CosineDecayRestarts (cosine, cosine_restarts), whose float32 fraction of the period gives an
absolute error of about 1e-7 of the peak (up to 7e-7 at a late restart), so that near their zero
the relative error grows: ``atol=1e-6 * initial_lr`` for those two. Against the Keras twin that
sweeper trains with, the snippet's rates are equal bit for bit in float32 (step decay excepted:
its twin computes the power in float32, the snippet writes the exact values, closer to NumPy).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sweeper.training.families.constant import Constant
from sweeper.training.families.cosine import Cosine
from sweeper.training.families.exponential import Exponential
from sweeper.training.families.step import StepDecay
from sweeper.training.families.wsd import WarmupStableDecay
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.schedule_base import Schedule
from sweeper.training.schedule_code import NEEDS_SWEEPER, keras_code
from sweeper.training.schedules import FAMILIES, from_dimensions

REPO_ROOT = Path(__file__).resolve().parents[2]
SPE, EPOCHS = 30, 10
N_STEPS = SPE * EPOCHS  # the run's optimizer updates
PROBES = (0, N_STEPS // 2, N_STEPS - 1)  # steps at which the optimizer's own rate is read
RTOL = 2e-6
# Keras's cosine schedules: an absolute float32 error of ~1e-7 of the peak (module docstring)
KERAS_FRACTION_ATOL = {"cosine": 1e-6, "cosine_restarts": 1e-6}

SGD_NESTEROV = OptimizerSpec("sgd", momentum=0.9, nesterov=True)
SGD_MOMENTUM = OptimizerSpec("sgd", momentum=0.8)


@dataclass(frozen=True)
class Case:
    id: str
    schedule: Schedule
    optimizer: OptimizerSpec


def built(family: str, **dims: Any) -> Schedule:
    """A schedule as a trial of a 10-epoch run of 30 steps an epoch builds it."""
    return from_dimensions(family, dims, steps_per_epoch=SPE, epochs=EPOCHS)


CASES: list[Case] = [
    Case("constant", built("constant", initial_lr=0.05), OptimizerSpec("adam")),
    Case("time", built("time", initial_lr=0.1, time_decay=0.01), SGD_MOMENTUM),
    # drop_every < 1 epoch: the rate has dropped twice already at step 0
    Case(
        "step-half-epoch",
        built("step", initial_lr=0.1, decay_rate=0.5, drop_every=0.5),
        OptimizerSpec("sgd"),
    ),
    Case(
        "step-several-drops",
        built("step", initial_lr=0.1, decay_rate=0.5, drop_every=2.0),
        OptimizerSpec("rmsprop"),
    ),
    Case(
        "step-odd-interval",
        built("step", initial_lr=0.03, decay_rate=0.3, drop_every=0.7),
        OptimizerSpec("adam"),
    ),
    Case(
        "exponential",
        built("exponential", initial_lr=0.1, decay_rate=0.8, drop_every=1.0),
        OptimizerSpec("adagrad"),
    ),
    Case(
        "exponential-staircase",
        built("exponential", initial_lr=0.01, decay_rate=0.5, drop_every=3.0, staircase=True),
        SGD_MOMENTUM,
    ),
    Case(
        "piecewise-every",
        built("piecewise", initial_lr=0.1, decay_rate=0.3, drop_every=3.0),
        OptimizerSpec("adadelta"),
    ),
    Case(
        "piecewise-boundaries",
        built("piecewise", initial_lr=0.2, boundaries=[0, 99, 199], values=[0.2, 0.1, 0.3, 0.01]),
        SGD_NESTEROV,
    ),
    Case("polynomial", built("polynomial", initial_lr=0.1, power=2.0), OptimizerSpec("adam")),
    Case(
        "polynomial-to-zero",
        built("polynomial", initial_lr=0.1, end_lr_factor=0.0),
        SGD_MOMENTUM,
    ),
    Case(
        "inverse_time",
        built("inverse_time", initial_lr=0.1, decay_rate=2.0, drop_every=2.0),
        OptimizerSpec("rmsprop"),
    ),
    Case(
        "inverse_time-staircase",
        built("inverse_time", initial_lr=0.1, decay_rate=0.5, staircase=True),
        OptimizerSpec("adam"),
    ),
    Case("cosine", built("cosine", initial_lr=0.1), SGD_NESTEROV),
    Case(
        "cosine-warmup",
        built("cosine", initial_lr=0.1, warmup_epochs=1.0, alpha=0.1),
        SGD_NESTEROV,
    ),
    Case(
        "cosine_restarts",
        built("cosine_restarts", initial_lr=0.1, restart_epochs=2.0, t_mul=2.0, m_mul=0.8),
        SGD_MOMENTUM,
    ),
    Case(
        "cosine_restarts-every-epoch",
        built("cosine_restarts", initial_lr=0.1, restart_epochs=1.0, t_mul=1.0, m_mul=1.0),
        OptimizerSpec("adam"),
    ),
    Case("linear", built("linear", initial_lr=0.1, warmup_epochs=1.0), SGD_NESTEROV),
    Case("wsd", built("wsd", initial_lr=0.1, warmup_epochs=1.0), SGD_NESTEROV),
    Case(
        "wsd-cosine",
        built(
            "wsd", initial_lr=0.1, warmup_epochs=0.5, cooldown_shape="cosine", end_lr_factor=0.01
        ),
        OptimizerSpec("adam"),
    ),
    Case(
        "wsd-linear",
        built("wsd", initial_lr=0.05, cooldown_shape="linear", cooldown_fraction=0.5),
        OptimizerSpec("adam"),
    ),
    # no cooldown: the peak up to decay_steps, the end rate after it
    Case(
        "wsd-no-decay",
        WarmupStableDecay(0.3, decay_steps=200.0, decay_start=200.0, end_lr=0.03),
        OptimizerSpec("adam"),
    ),
    Case("one_cycle", built("one_cycle", initial_lr=0.1), SGD_MOMENTUM),
    Case("rex", built("rex", initial_lr=0.1), OptimizerSpec("adam")),
    Case(
        "shape",
        built(
            "shape",
            initial_lr=0.1,
            warmup_fraction=0.1,
            stable_fraction=0.3,
            decay_exponent=2.0,
            final_lr_ratio=0.05,
        ),
        SGD_MOMENTUM,
    ),
    Case(
        "shape-sqrt-to-zero",
        built("shape", initial_lr=0.1, decay_exponent=0.5),
        OptimizerSpec("adam"),
    ),
    # schedule-free: the constant family's rate; the warm-up as OptimizerSpec.build rounds it
    Case(
        "sgd_schedule_free",
        built("constant", initial_lr=0.5),
        OptimizerSpec("sgd_schedule_free", warmup=0.07),
    ),
    Case(
        "adamw_schedule_free",
        built("constant", initial_lr=0.0025),
        OptimizerSpec("adamw_schedule_free", warmup=0.125),
    ),
]
CASE_IDS = [c.id for c in CASES]
BY_ID = {c.id: c for c in CASES}
# round(0.07 * 300) and round(0.125 * 300) = round(37.5), Python's rounding as in build
SCHEDULE_FREE = {
    "sgd_schedule_free": ("SGDScheduleFree", 21),
    "adamw_schedule_free": ("AdamWScheduleFree", 38),
}
WITH_KERAS_OPTIMIZER = [c.id for c in CASES if not c.optimizer.schedule_free]

DRIVER = r"""
import importlib.abc
import json
import sys

MARKER = sys.argv[2]


class NoSweeper(importlib.abc.MetaPathFinder):
    # a training script's interpreter where sweeper is not installed
    def find_spec(self, name, path=None, target=None):
        if name == "sweeper" or name.startswith("sweeper."):
            raise ImportError(f"No module named {name!r}", name=name)
        return None


blocker = NoSweeper()
sys.meta_path.insert(0, blocker)
try:
    import sweeper
    blocked = False
except ImportError:
    blocked = True

import keras

Schedule = keras.optimizers.schedules.LearningRateSchedule


def rates(lr, n):
    return [float(lr(step)) for step in range(n)]


def run(source, path):
    namespace = {"__name__": "snippet"}
    exec(compile(source, path, "exec"), namespace)
    return namespace


manifest = json.load(open(sys.argv[1]))
results = {}
for case in manifest:
    source = open(case["path"]).read()
    n, probes = case["total_steps"], case["probes"]
    ns = run(source.split(MARKER)[0], case["path"])
    lr = ns["learning_rate"]
    out = {"type": type(lr).__name__}
    if isinstance(lr, Schedule):
        out["rates"] = rates(lr, n)
        clone = type(lr).from_config(lr.get_config())
        out["clone_rates"] = [float(clone(k)) for k in probes]
    else:
        out["float"] = lr
    if MARKER in source:
        try:
            run(source, case["path"])
            out["whole_without_sweeper"] = "ran"
        except ImportError as exc:
            out["whole_without_sweeper"] = f"ImportError {exc.name}"
    else:
        opt = ns["optimizer"]
        config = opt.get_config()
        out["optimizer"] = {
            "class": type(opt).__name__,
            "momentum": config.get("momentum"),
            "nesterov": config.get("nesterov"),
        }
        applied = []
        for k in probes:
            opt.iterations.assign(k)
            applied.append(float(opt.learning_rate))
        out["applied"] = applied
    results[case["id"]] = out
leaked = sorted(m for m in sys.modules if m == "sweeper" or m.startswith("sweeper."))

# sweeper importable again: the whole snippets beside what sweeper builds itself
sys.meta_path.remove(blocker)
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.schedules import from_dict


def settings(opt):
    # all but the rate and the name (Keras numbers the names of the optimizers it makes)
    config = dict(opt.get_config())
    del config["learning_rate"], config["name"]
    return config


for case in manifest:
    ns = run(open(case["path"]).read(), case["path"])
    opt = ns["optimizer"]
    spec_built = OptimizerSpec(**case["optimizer"]).build(ns["learning_rate"], case["total_steps"])
    twin = from_dict(case["schedule"]).keras()
    out = results[case["id"]]
    out["with_sweeper"] = {
        "class": f"{type(opt).__module__}.{type(opt).__name__}",
        "built_class": f"{type(spec_built).__module__}.{type(spec_built).__name__}",
        "settings": settings(opt),
        "built_settings": settings(spec_built),
    }
    out["twin_rates"] = rates(twin, case["total_steps"]) if isinstance(twin, Schedule) else None
print("RESULT " + json.dumps({"blocked": blocked, "leaked": leaked, "results": results}, default=repr))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case's snippet run by :data:`DRIVER` in one fresh interpreter: its output."""
    folder = tmp_path_factory.mktemp("snippets")
    manifest = []
    for case in CASES:
        path = folder / f"{case.id}.py"
        path.write_text(keras_code(case.schedule, case.optimizer, total_steps=N_STEPS))
        manifest.append(
            {
                "id": case.id,
                "path": str(path),
                "total_steps": N_STEPS,
                "probes": list(PROBES),
                "schedule": case.schedule.to_dict(),
                "optimizer": {
                    "name": case.optimizer.name,
                    "momentum": case.optimizer.momentum,
                    "nesterov": case.optimizer.nesterov,
                    "warmup": case.optimizer.warmup,
                },
            }
        )
    (folder / "manifest.json").write_text(json.dumps(manifest))
    env = dict(os.environ)
    env["KERAS_BACKEND"] = os.environ.get("KERAS_BACKEND", "tensorflow")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(folder / "manifest.json"), NEEDS_SWEEPER],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("RESULT "))
    out: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return out


def snippet(case: Case) -> str:
    return keras_code(case.schedule, case.optimizer, total_steps=N_STEPS)


def imports(source: str) -> list[str]:
    """The modules ``source`` imports, in order."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(str(node.module))
    return names


def float32_bits(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.int32)


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------


def test_cases_cover_every_family_and_change_within_the_run() -> None:
    assert {c.schedule.family for c in CASES} == set(FAMILIES)
    cosines = [c.schedule for c in CASES if isinstance(c.schedule, Cosine)]
    assert {s.warmup_steps > 0 for s in cosines} == {True, False}
    steps = [c.schedule for c in CASES if isinstance(c.schedule, StepDecay)]
    # one has dropped at step 0 (drop_every < 1 epoch), one drops several times in the run
    assert any(s.drop_every < 1 and s.lr_at(0) < s.initial_lr for s in steps)
    assert any(len(np.unique(s.curve(N_STEPS))) >= 4 for s in steps)
    assert any(getattr(c.schedule, "boundaries", ()) for c in CASES)
    for case in CASES:
        if case.schedule.family != "constant":
            assert len(np.unique(case.schedule.curve(N_STEPS))) > 1, case.id
    assert {c.optimizer.name for c in CASES} == {
        "sgd",
        "adam",
        "rmsprop",
        "adagrad",
        "adadelta",
        *SCHEDULE_FREE,
    }


# --------------------------------------------------------------------------------------------
# The text
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_snippet_imports_keras_and_math_only_above_the_marker(case: Case) -> None:
    text = snippet(case)
    keras_part, marker, sweeper_part = text.partition(NEEDS_SWEEPER + "\n")
    names = imports(keras_part)
    assert names[0] == "keras"
    assert set(names) <= {"keras", "math"}
    assert ("math" in names) == ("math." in keras_part)
    top = {
        t.id
        for node in ast.parse(keras_part).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert "learning_rate" in top
    if case.optimizer.schedule_free:
        cls, warmup = SCHEDULE_FREE[case.optimizer.name]
        assert marker and "optimizer" not in top
        assert f"from sweeper.training.schedule_free import {cls}\n" in sweeper_part
        assert f"optimizer = {cls}(learning_rate=learning_rate, warmup_steps={warmup})" in text
    else:
        assert not marker and NEEDS_SWEEPER not in text
        assert "sweeper" not in imports(text)
        assert "optimizer" in top


def test_marker_is_one_comment_line() -> None:
    assert NEEDS_SWEEPER == "# -- needs sweeper: Keras has no schedule-free optimizer"
    text = snippet(BY_ID["sgd_schedule_free"])
    assert text.splitlines().count(NEEDS_SWEEPER) == 1


def test_comment_lines_head_the_snippet() -> None:
    case = BY_ID["wsd"]
    text = keras_code(
        case.schedule,
        case.optimizer,
        total_steps=N_STEPS,
        comment=["trial 12 of study 'cifar'", "val accuracy 0.9132\nepochs 10", ""],
    )
    assert text.splitlines()[:5] == [
        "# trial 12 of study 'cifar'",
        "# val accuracy 0.9132",
        "# epochs 10",
        "#",
        "import keras",
    ]
    ast.parse(text)


def test_numbers_are_written_in_full() -> None:
    lr, steps, rate = 0.0031415926535897933, 123.45678901234567, 0.98765432109876543
    text = keras_code(
        Exponential(lr, decay_steps=steps, decay_rate=rate),
        OptimizerSpec("sgd", momentum=0.912345678901234),
        total_steps=N_STEPS,
    )
    constants = {
        node.value
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Constant) and isinstance(node.value, float)
    }
    assert {lr, steps, rate, 0.912345678901234} <= constants
    wsd = WarmupStableDecay(1 / 3, decay_steps=299.0, decay_start=239.2, warmup_steps=1e-3 * 7)
    text = keras_code(wsd, OptimizerSpec("adam"), total_steps=N_STEPS)
    for value in (1 / 3, 239.2, 1e-3 * 7):
        assert f"={value!r}," in text


def test_step_decay_without_a_drop_in_the_run_is_a_float() -> None:
    schedule = built("step", initial_lr=0.1, decay_rate=0.5, drop_every=20.0)
    assert len(np.unique(schedule.curve(N_STEPS))) == 1
    text = keras_code(schedule, OptimizerSpec("adam"), total_steps=N_STEPS)
    assigned = {
        target.id: node.value
        for node in ast.parse(text).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    rate = assigned["learning_rate"]
    assert isinstance(rate, ast.Constant)
    assert rate.value == 0.1


def test_total_steps_must_be_a_positive_whole_number() -> None:
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="total_steps"):
            keras_code(Constant(0.1), OptimizerSpec("adam"), total_steps=bad)  # type: ignore[arg-type]


def test_module_imports_no_keras() -> None:
    code = (
        "import sys\n"
        "from sweeper.training.schedule_code import keras_code\n"
        "from sweeper.training.families.one_cycle import OneCycle\n"
        "from sweeper.training.optimizers import OptimizerSpec\n"
        "text = keras_code(OneCycle(0.1, total_steps=300.0), OptimizerSpec('sgd_schedule_free'),"
        " total_steps=300)\n"
        "assert 'class OneCycle' in text\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n"
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
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------
# The snippets run where sweeper cannot be imported
# --------------------------------------------------------------------------------------------


def test_the_driver_really_hid_sweeper(runs: dict[str, Any]) -> None:
    assert runs["blocked"] is True
    assert runs["leaked"] == []
    assert set(runs["results"]) == set(CASE_IDS)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_snippet_rate_is_the_schedule_curve(case: Case, runs: dict[str, Any]) -> None:
    out = runs["results"][case.id]
    expected = case.schedule.curve(N_STEPS)
    lr = case.schedule.initial_lr
    if "float" in out:
        assert out["type"] == "float"
        assert case.schedule.family in ("constant", "piecewise", "step")
        got = np.full(N_STEPS, out["float"])
    else:
        got = np.asarray(out["rates"], dtype=np.float64)
        assert got.shape == (N_STEPS,)
        # a schedule object survives get_config / from_config
        assert out["clone_rates"] == [out["rates"][k] for k in PROBES]
    atol = KERAS_FRACTION_ATOL.get(case.schedule.family, 1e-12) * lr
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=atol)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.schedule.family != "step"], ids=lambda c: c.id
)
def test_snippet_rate_is_the_one_sweeper_trains_with(case: Case, runs: dict[str, Any]) -> None:
    out = runs["results"][case.id]
    if out["twin_rates"] is None:  # a constant rate: the float sweeper hands the optimizer
        assert out["float"] == case.schedule.keras()
        return
    np.testing.assert_array_equal(float32_bits(out["rates"]), float32_bits(out["twin_rates"]))


@pytest.mark.parametrize("case_id", WITH_KERAS_OPTIMIZER)
def test_optimizer_has_the_spec_settings_and_applies_the_rate(
    case_id: str, runs: dict[str, Any]
) -> None:
    case = BY_ID[case_id]
    out = runs["results"][case_id]
    # the rate the optimizer applies at its iterations is the snippet's learning_rate
    rates = out["rates"] if "rates" in out else [out["float"]] * N_STEPS
    np.testing.assert_allclose(out["applied"], [rates[k] for k in PROBES], rtol=1e-7, atol=0)
    # every setting as OptimizerSpec.build gives it
    with_sweeper = out["with_sweeper"]
    assert with_sweeper["class"] == with_sweeper["built_class"]
    assert with_sweeper["class"].startswith("keras.")
    assert with_sweeper["settings"] == with_sweeper["built_settings"]
    if case.optimizer.name == "sgd":
        assert out["optimizer"] == {
            "class": "SGD",
            "momentum": case.optimizer.momentum,
            "nesterov": case.optimizer.nesterov,
        }


def test_sgd_nesterov_and_adam_settings(runs: dict[str, Any]) -> None:
    results = runs["results"]
    assert results["cosine"]["optimizer"] == {"class": "SGD", "momentum": 0.9, "nesterov": True}
    assert results["time"]["optimizer"] == {"class": "SGD", "momentum": 0.8, "nesterov": False}
    assert results["constant"]["optimizer"]["class"] == "Adam"
    assert results["constant"]["optimizer"]["momentum"] is None
    assert results["rex"]["optimizer"]["class"] == "Adam"


@pytest.mark.parametrize("case_id", sorted(SCHEDULE_FREE))
def test_schedule_free_needs_sweeper_only_below_the_marker(
    case_id: str, runs: dict[str, Any]
) -> None:
    case = BY_ID[case_id]
    cls, warmup = SCHEDULE_FREE[case_id]
    out = runs["results"][case_id]
    # above the marker, Keras alone: the constant rate
    assert out["type"] == "float"
    assert out["float"] == case.schedule.initial_lr
    # the whole snippet stops at its sweeper import where sweeper is missing
    assert out["whole_without_sweeper"] == "ImportError sweeper"
    # with sweeper: the optimizer OptimizerSpec.build gives, its warm-up included
    with_sweeper = out["with_sweeper"]
    assert with_sweeper["class"] == f"sweeper.training.schedule_free.{cls}"
    assert with_sweeper["built_class"] == with_sweeper["class"]
    assert with_sweeper["settings"]["warmup_steps"] == warmup
    assert with_sweeper["settings"] == with_sweeper["built_settings"]
