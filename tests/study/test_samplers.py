"""The relative samplers (GP, CMA-ES) on sweeper's continuous schedule space, with real trials."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweeper.search import samplers_pruners
from sweeper.search.samplers_pruners import independent_dimensions, make_sampler
from sweeper.studyfile.config import parse_study

SHAPE_STUDY = """
[study]
name = "shape-{kind}"
seed = 0
n_trials = 3

[data]
dataset = "digits"
subset = 600

[train]
model = "mnist-cnn"
batch_size = 32
epochs = 1

[sampler]
type = "{kind}"
n_startup_trials = 2

[pruner]
type = "none"

[space]
schedules = "shape"
initial_lr = {{ low = 0.01, high = 0.5, log = true }}
"""

# Optuna's GPSampler runs on PyTorch: the gp extra (CI installs it)
NO_TORCH = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="PyTorch missing: pip install '.[gp]'"
)

TUTORIAL_SPACE = """
[space]
schedules = ["constant", "time", "step", "exponential", "piecewise", "polynomial",
             "inverse_time", "cosine", "cosine_restarts"]
"""


pytestmark = pytest.mark.usefixtures("clean_process")


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        pytest.param("gp", optuna.samplers.GPSampler, marks=NO_TORCH),
        ("cmaes", optuna.samplers.CmaEsSampler),
    ],
)
def test_make_sampler_builds_the_configured_class_seeded(kind: str, cls: type) -> None:
    spec = parse_study(SHAPE_STUDY.format(kind=kind), "s.toml")
    sampler = make_sampler(spec)
    assert type(sampler) is cls
    assert sampler._n_startup_trials == 2
    assert independent_dimensions(spec) == []  # the shape space is modelled whole


@NO_TORCH
def test_independent_dimensions_of_a_categorical_conditional_space() -> None:
    cma = parse_study(TUTORIAL_SPACE + '[sampler]\ntype = "cmaes"\n', "s.toml")
    gp = parse_study(TUTORIAL_SPACE + '[sampler]\ntype = "gp"\n', "s.toml")
    # CMA-ES leaves out the family itself (categorical) and every family's own dimensions
    assert independent_dimensions(cma)[0] == "schedule"
    assert {"time_decay", "decay_rate", "drop_every", "staircase", "power"} <= set(
        independent_dimensions(cma)
    )
    assert "initial_lr" not in independent_dimensions(cma)  # every trial has it
    # GP models categorical dimensions: only the conditional ones are left out
    assert "schedule" not in independent_dimensions(gp)
    assert "staircase" in independent_dimensions(gp)


def test_a_space_they_cannot_model_is_warned_about_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(samplers_pruners, "_warned", set())
    spec = parse_study(TUTORIAL_SPACE + '[sampler]\ntype = "cmaes"\n', "s.toml")
    with caplog.at_level(logging.WARNING, logger="sweeper.console"):
        make_sampler(spec)
        make_sampler(spec, 5)  # a second worker of the same study: no second warning
    lines = [r.getMessage() for r in caplog.records if r.name == "sweeper.console"]
    assert len(lines) == 1
    line = lines[0]
    assert "\n" not in line
    for part in ("'cmaes'", "independently at random", "schedule", "staircase", '"shape"'):
        assert part in line, part
    caplog.clear()
    shape = parse_study(SHAPE_STUDY.format(kind="cmaes"), "s.toml")
    with caplog.at_level(logging.WARNING, logger="sweeper.console"):
        make_sampler(shape)
    assert not [r for r in caplog.records if r.name == "sweeper.console"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "attr"),
    [pytest.param("gp", "gp:relative_params:0", marks=NO_TORCH), ("cmaes", "cma:")],
)
def test_a_shape_study_runs_three_real_trials_proposed_by_the_sampler(
    tmp_path: Path, kind: str, attr: str
) -> None:
    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import tune

    spec = parse_study(SHAPE_STUDY.format(kind=kind), str(tmp_path / "shape.toml"))
    url = f"sqlite:///{tmp_path / 'shape.db'}"
    summary = tune(spec, RunOptions(storage=url, checkpoint_dir=str(tmp_path / "ckpt")))
    assert summary.counts["complete"] == 3, summary.counts
    trials = optuna.load_study(study_name=f"shape-{kind}", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    names = {"initial_lr", "warmup_fraction", "stable_fraction", "decay_exponent", "final_lr_ratio"}
    for t in trials:
        assert set(t.params) == names
        assert t.user_attrs["schedule"]["family"] == "shape"
        assert t.value is not None and 0.0 <= t.value <= 1.0

    # the first two are the random start-up; the third was proposed by the GP / by CMA-ES,
    # which leaves its state in the trial's system attributes, the start-up trials none
    def proposed(t: optuna.trial.FrozenTrial) -> bool:
        return any(key.startswith(attr) for key in t.system_attrs)

    assert [proposed(t) for t in trials] == [False, False, True]


@pytest.mark.parametrize("kind", ["random", "tpe", "grid"])
def test_the_largest_seed_with_a_worker_offset_is_still_a_32_bit_seed(kind: str) -> None:
    spec = parse_study(
        f'[study]\nseed = 4294967295\n[sampler]\ntype = "{kind}"\n'
        '[space]\nschedules = "constant"\ninitial_lr = [0.01, 0.1]\n',
        "top.toml",
    )
    study = optuna.create_study(sampler=make_sampler(spec, 7919 * 3 + 20), direction="maximize")
    trial = study.ask()
    assert trial.suggest_categorical("initial_lr", [0.01, 0.1]) in (0.01, 0.1)
