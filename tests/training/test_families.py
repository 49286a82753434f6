"""The schedule families as plug-ins (sweeper/training/families/, one module each): every family
declares all that sweeper needs of it on its class, and a new module in the package is a new
family everywhere (the family list, the dimension table, the search, plots, Keras code, the
command line) without a change to any other file."""

from __future__ import annotations

import ast
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sweeper.studyfile.dimensions import ALL_FAMILIES, DIMENSIONS, Choices, Fixed, Range
from sweeper.training.schedule_base import Schedule
from sweeper.training.schedules import FAMILIES, from_dict, from_dimensions

ROOT = Path(__file__).resolve().parents[2]

# the families' order as released: a study's default choice of families (Optuna's categorical
# choices, stored with every study) is this list, so a family keeps its place
RELEASED = (
    "constant",
    "time",
    "step",
    "exponential",
    "piecewise",
    "polynomial",
    "inverse_time",
    "cosine",
    "cosine_restarts",
    "linear",
    "wsd",
    "one_cycle",
    "rex",
    "shape",
)
OPTIMIZER_DIMENSIONS = {"optimizer", "momentum", "nesterov", "schedule_free_warmup"}


def test_the_families_keep_their_released_order() -> None:
    assert tuple(FAMILIES)[: len(RELEASED)] == RELEASED
    orders = [cls.order for cls in FAMILIES.values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_is_one_class_of_its_own_module(family: str) -> None:
    cls = FAMILIES[family]
    assert issubclass(cls, Schedule) and not inspect.isabstract(cls)
    assert cls.family == family and cls.formula and cls.order > 0
    assert cls.__module__.startswith("sweeper.training.families.")
    # the methods are the family's own, not the base class's
    for name in ("from_dimensions", "plot_default", "_rates", "keras", "learning_rate_code"):
        assert name in vars(cls), f"{family} does not declare {name}"
    assert [c.__module__ for c in FAMILIES.values()].count(cls.__module__) == 1


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_declares_dimensions_that_exist(family: str) -> None:
    declared = FAMILIES[family].dimensions
    assert declared[0] == "initial_lr" and len(set(declared)) == len(declared)
    assert set(declared) <= set(DIMENSIONS) - OPTIMIZER_DIMENSIONS
    for name in declared:
        assert family in DIMENSIONS[name].families


def test_the_dimension_table_is_what_the_families_declare() -> None:
    for name, info in DIMENSIONS.items():
        if name in OPTIMIZER_DIMENSIONS:
            assert info.families == ALL_FAMILIES == frozenset(FAMILIES)
        else:
            assert info.families == {f for f, cls in FAMILIES.items() if name in cls.dimensions}
            assert info.families, f"no family takes {name}"


def _default_value(name: str) -> object:
    dim = DIMENSIONS[name].default
    if isinstance(dim, Range):
        return dim.low
    if isinstance(dim, Choices):
        return dim.values[-1]
    assert isinstance(dim, Fixed)
    return dim.value


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_builds_from_its_dimensions(family: str) -> None:
    cls = FAMILIES[family]
    dims = {name: _default_value(name) for name in cls.dimensions} | {"initial_lr": 0.1}
    schedule = from_dimensions(family, dims, steps_per_epoch=20, epochs=5)
    assert type(schedule) is cls
    assert schedule == cls.from_dimensions(dims, steps_per_epoch=20, epochs=5)
    rates = schedule.curve(100)
    assert np.all(np.isfinite(rates)) and np.all(rates >= 0) and rates.max() <= 0.1 * (1 + 1e-12)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_has_a_plot_default_and_keras_code(family: str) -> None:
    cls = FAMILIES[family]
    schedule = from_dict({"family": family, "initial_lr": 0.1, **cls.plot_default(1000, 0.1)})
    rates = schedule.curve(1000)
    assert np.all(np.isfinite(rates))
    assert family == "constant" or len(np.unique(rates)) > 1
    code = "\n".join(schedule.learning_rate_code(1000))
    tree = ast.parse(code)
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert "learning_rate" in assigned


# a family written as a plug-in is: lr0 falling as a cubic to end_lr at the run's last update
CUBIC = '''\
"""The cubic family: a cubic decay to end_lr at the run's last update."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.training.schedule_base import Horizon, Schedule, check_positive
from sweeper.training.schedule_code import KERAS_SCHEDULES, assignment, literal


@dataclass(frozen=True)
class Cubic(Schedule):
    """Dimensions: ``end_lr_factor`` (end_lr = initial_lr * end_lr_factor, default 0)."""

    family: ClassVar[str] = "cubic"
    formula: ClassVar[str] = "(lr0 - end_lr) * (1 - min(step, decay_steps) / decay_steps) ^ 3 + end_lr"
    order: ClassVar[int] = 150
    dimensions: ClassVar[tuple[str, ...]] = ("initial_lr", "end_lr_factor")

    decay_steps: float = 1000.0
    end_lr: float = 0.0

    def __post_init__(self) -> None:
        check_positive(self.family, initial_lr=self.initial_lr, decay_steps=self.decay_steps)

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        lr = float(dims["initial_lr"])
        last = float(max(epochs * steps_per_epoch - 1, 1))
        return cls(lr, decay_steps=last, end_lr=lr * float(dims.get("end_lr_factor", 0.0)))

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {"decay_steps": float(n_steps - 1), "end_lr": initial_lr * 0.01}

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        p = np.minimum(steps, self.decay_steps) / self.decay_steps
        return (self.initial_lr - self.end_lr) * (1.0 - p) ** 3 + self.end_lr

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        return {"decay_steps": horizon.to_last(self.decay_steps)}

    def keras(self) -> Any:
        import keras

        return keras.optimizers.schedules.PolynomialDecay(
            self.initial_lr, self.decay_steps, self.end_lr, power=3.0
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        return assignment(
            "learning_rate",
            f"{KERAS_SCHEDULES}.PolynomialDecay",
            {
                "initial_learning_rate": literal(self.initial_lr),
                "decay_steps": literal(self.decay_steps),
                "end_learning_rate": literal(self.end_lr),
                "power": "3.0",
            },
        )
'''

# run in a copy of the package with cubic.py added to sweeper/training/families/, nothing else
PLUGGED_IN = """\
import sys

import optuna
from click.testing import CliRunner

from sweeper.analysis.plot_data import schedule_curves_data
from sweeper.cli.commands import main
from sweeper.search.space import sample
from sweeper.studyfile.config import parse_study
from sweeper.studyfile.dimensions import DIMENSIONS
from sweeper.training.handover import Tuned
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.schedule_base import Horizon
from sweeper.training.schedules import FAMILIES, from_dict, from_dimensions

assert sys.modules["sweeper"].__file__.startswith(sys.argv[1]), sys.modules["sweeper"].__file__
# the family list and the dimension table
assert list(FAMILIES)[-1] == "cubic", list(FAMILIES)
assert FAMILIES["cubic"].__module__ == "sweeper.training.families.cubic"
for name in ("initial_lr", "end_lr_factor", "optimizer", "momentum"):
    assert "cubic" in DIMENSIONS[name].families, name
assert "cubic" not in DIMENSIONS["decay_rate"].families
# built from a study's dimensions, stored and read back, rebuilt for a longer run
dims = {"initial_lr": 0.1, "end_lr_factor": 0.01}
cubic = from_dimensions("cubic", dims, steps_per_epoch=10, epochs=5)
assert (cubic.decay_steps, cubic.end_lr) == (49.0, 0.001), cubic
assert from_dict(cubic.to_dict()) == cubic
# handed over: rebuilt for a run twice as long, as Keras code
assert cubic.rescaled(Horizon(10, 5, 10, 10)).decay_steps == 99.0
code = Tuned(cubic, OptimizerSpec(), 10, 5).code(epochs=10)
assert "keras.optimizers.schedules.PolynomialDecay(" in code and "decay_steps=99.0" in code, code
# searched: a study file whose space names it samples its declared dimensions
space = parse_study('[space]\\nschedules = ["cubic", "constant"]\\n', "cubic.toml").space
study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
seen = set()
for _ in range(20):
    trial = study.ask()
    config = sample(trial, space)
    seen.add(config.family)
    if config.family == "cubic":
        assert set(trial.params) == {"schedule", "initial_lr", "end_lr_factor"}, trial.params
        assert type(config.schedule(10, 5)).__name__ == "Cubic"
    study.tell(trial, 0.5)
assert seen == {"cubic", "constant"}, seen
# plots: its default curve, and a study-file setting applied as the study would
curves = schedule_curves_data(["cubic"], 200)
assert curves.curves[0][0].startswith("cubic(") and curves.curves[0][1][0] == 0.1
curves = schedule_curves_data(["cubic"], 200, {"end_lr_factor": 0.5})
assert abs(curves.curves[0][1][-1] - 0.05) < 1e-12
# the command line's families and its help
listed = CliRunner().invoke(main, ["families"]).output.splitlines()
assert listed[-1].split()[0] == "cubic", listed
assert "shape, cubic;" in " ".join(CliRunner().invoke(main, ["--help"]).output.split())
print(sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tensorflow")))
"""


def test_a_new_family_is_one_new_module(tmp_path: Path) -> None:
    copy = tmp_path / "sweeper"
    shutil.copytree(
        ROOT / "sweeper", copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    (copy / "training" / "families" / "cubic.py").write_text(CUBIC)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PLUGGED_IN, str(copy)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"  # no Keras: the twin is imported lazily
