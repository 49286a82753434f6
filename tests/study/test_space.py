"""Tests for sweeper.search.space: distributions, define-by-run sampling, baselines, grids."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from sweeper.errors import ConfigError
from sweeper.search.space import (
    TrialConfig,
    baseline_params,
    baseline_values,
    distribution,
    grid,
    sample,
    search_space,
)
from sweeper.studyfile.config import STUDIES_DIR, load_study_file, parse_study
from sweeper.studyfile.dimensions import Choices, Dimension, Fixed, Range
from sweeper.studyfile.study_spec import SpaceSpec
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
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.schedules import FAMILIES

optuna.logging.set_verbosity(optuna.logging.WARNING)

N_SAMPLES = 150  # enough for every family (14) and both of its choices
STEPS_PER_EPOCH = 20
EPOCHS = 5

# The searched dimensions each family asks the trial for, besides `schedule`, in ALL_SPACE.
SEARCHED = {
    "constant": {"initial_lr"},
    "time": {"initial_lr", "time_decay"},
    "step": {"initial_lr", "decay_rate", "drop_every"},
    "exponential": {"initial_lr", "decay_rate", "drop_every", "staircase"},
    "piecewise": {"initial_lr", "decay_rate", "drop_every"},
    "polynomial": {"initial_lr", "power", "end_lr_factor"},
    "inverse_time": {"initial_lr", "decay_rate", "drop_every", "staircase"},
    "cosine": {"initial_lr", "warmup_epochs"},
    "cosine_restarts": {"initial_lr", "restart_epochs"},
    "linear": {"initial_lr", "warmup_epochs", "end_lr_factor"},
    "wsd": {"initial_lr", "warmup_epochs", "end_lr_factor", "cooldown_fraction", "cooldown_shape"},
    "one_cycle": {"initial_lr", "pct_start"},
    "rex": {"initial_lr"},
    "shape": {
        "initial_lr",
        "warmup_fraction",
        "stable_fraction",
        "decay_exponent",
        "final_lr_ratio",
    },
}
# The pinned dimensions each family uses in ALL_SPACE (never params, always in the values).
PINNED = {
    "cosine": {"alpha": 0.1},
    "cosine_restarts": {"alpha": 0.1, "t_mul": 2.0, "m_mul": 0.9},
    "one_cycle": {"div_factor": 25.0, "final_div_factor": 1e4},
}
CLASSES = {
    "constant": Constant,
    "time": TimeDecay,
    "step": StepDecay,
    "exponential": Exponential,
    "piecewise": Piecewise,
    "polynomial": Polynomial,
    "inverse_time": InverseTime,
    "cosine": Cosine,
    "cosine_restarts": CosineRestarts,
    "linear": Linear,
    "wsd": WarmupStableDecay,
    "one_cycle": OneCycle,
    "rex": Rex,
    "shape": Shape,
}
DROPPING = {"step", "exponential", "piecewise", "inverse_time"}

ALL_SPACE = """\
[space]
initial_lr = {low = 0.001, high = 0.5, log = true}
time_decay = {low = 0.0001, high = 0.1, log = true}
decay_rate = {low = 0.1, high = 0.9}
drop_every = {low = 1.0, high = 3.0}
power = {low = 0.5, high = 3.0}
end_lr_factor = {low = 0.001, high = 0.5, log = true}
restart_epochs = {low = 0.5, high = 2.0}
warmup_epochs = [0.0, 1.0]
alpha = 0.1
t_mul = 2.0
m_mul = 0.9
optimizer = "sgd"
momentum = 0.0
"""


def new_study(seed: int = 0) -> optuna.Study:
    return optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed)
    )


def sample_many(space: SpaceSpec, n: int = N_SAMPLES) -> list[tuple[optuna.Trial, TrialConfig]]:
    study = new_study()
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append((trial, sample(trial, space)))
        study.tell(trial, 0.5)
    return out


def space_of(text: str) -> SpaceSpec:
    return parse_study(text, "space.toml").space


# --------------------------------------------------------------------------------------------
# distribution(): a pure function, tested as a table
# --------------------------------------------------------------------------------------------

DISTRIBUTIONS: list[tuple[str, Dimension, BaseDistribution | None]] = [
    ("log-float", Range(1e-3, 1, log=True), FloatDistribution(1e-3, 1.0, log=True)),
    ("float", Range(0.1, 0.9), FloatDistribution(0.1, 0.9)),
    ("int", Range(1, 8, integer=True), IntDistribution(1, 8)),
    ("log-int", Range(1, 64, log=True, integer=True), IntDistribution(1, 64, log=True)),
    ("bool-choices", Choices((False, True)), CategoricalDistribution([False, True])),
    ("str-choices", Choices(("sgd", "adam")), CategoricalDistribution(["sgd", "adam"])),
    ("float-choices", Choices((0.01, 0.1, 0.3)), CategoricalDistribution([0.01, 0.1, 0.3])),
    ("fixed-float", Fixed(0.5), None),
    ("fixed-str", Fixed("sgd"), None),
    ("fixed-bool", Fixed(False), None),
]


@pytest.mark.parametrize(
    ("dim", "expected"),
    [pytest.param(dim, expected, id=case_id) for case_id, dim, expected in DISTRIBUTIONS],
)
def test_distribution(dim: Dimension, expected: BaseDistribution | None) -> None:
    got = distribution(dim)
    if expected is None:
        assert got is None
        return
    assert type(got) is type(expected)
    assert got == expected


def test_distribution_is_pure() -> None:
    dim = Range(1e-3, 1, log=True)
    assert distribution(dim) == distribution(dim)
    assert dim == Range(1e-3, 1, log=True)


# --------------------------------------------------------------------------------------------
# Define-by-run sampling
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def all_space() -> SpaceSpec:
    space = space_of(ALL_SPACE)
    assert set(space.families()) == set(FAMILIES)
    return space


@pytest.fixture(scope="module")
def all_samples(all_space: SpaceSpec) -> list[tuple[optuna.Trial, TrialConfig]]:
    return sample_many(all_space)


def test_expected_tables_cover_every_family() -> None:
    assert set(SEARCHED) == set(FAMILIES) == set(CLASSES)


def test_samples_cover_every_family(all_samples: list[tuple[optuna.Trial, TrialConfig]]) -> None:
    assert {config.family for _, config in all_samples} == set(FAMILIES)


def test_params_are_schedule_plus_the_family_dimensions(
    all_samples: list[tuple[optuna.Trial, TrialConfig]],
) -> None:
    for trial, config in all_samples:
        assert trial.params["schedule"] == config.family
        assert set(trial.params) == {"schedule"} | SEARCHED[config.family], config
        if config.family not in DROPPING:
            assert "drop_every" not in trial.params
            assert "decay_rate" not in trial.params


def test_values_are_searched_plus_pinned(
    all_samples: list[tuple[optuna.Trial, TrialConfig]],
) -> None:
    for trial, config in all_samples:
        pinned = PINNED.get(config.family, {})
        assert set(config.values) == SEARCHED[config.family] | set(pinned), config
        for name in SEARCHED[config.family]:
            assert config.values[name] == trial.params[name]
        for name, value in pinned.items():
            assert name not in trial.params
            assert config.values[name] == value
        # the optimizer dimensions are pinned too: in the optimizer, never in the params
        assert config.optimizer == OptimizerSpec("sgd", 0.0, False)
        optimizer_dims = {"optimizer", "momentum", "nesterov", "schedule_free_warmup"}
        assert not optimizer_dims & set(trial.params)
        assert not optimizer_dims & set(config.values)


def test_sampled_values_lie_in_their_ranges(
    all_samples: list[tuple[optuna.Trial, TrialConfig]], all_space: SpaceSpec
) -> None:
    for trial, _ in all_samples:
        for name, value in trial.params.items():
            if name == "schedule":
                continue
            dim = all_space.dims[name]
            if isinstance(dim, Range):
                assert dim.low <= value <= dim.high
            else:
                assert isinstance(dim, Choices)
                assert value in dim.values


def test_trial_schedule_is_the_right_family(
    all_samples: list[tuple[optuna.Trial, TrialConfig]],
) -> None:
    seen_warmup = set()
    for _, config in all_samples:
        schedule = config.schedule(steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS)
        assert type(schedule) is CLASSES[config.family]
        assert schedule.family == config.family
        lr0 = config.values["initial_lr"]
        assert schedule.initial_lr == lr0
        if config.family in ("linear", "wsd", "shape", "one_cycle"):
            continue  # their start: test_later_families_start_and_end_as_sampled
        if config.family == "cosine" and config.values["warmup_epochs"] > 0:
            seen_warmup.add(True)
            assert schedule.lr_at(0) == 0.0
            assert schedule.lr_at(STEPS_PER_EPOCH) == pytest.approx(lr0)
        elif config.family == "step":
            # the tutorial's formula drops at the end of epoch 0 when drop_every <= 1
            drops = math.floor(1 / config.values["drop_every"])
            assert schedule.lr_at(0) == pytest.approx(lr0 * config.values["decay_rate"] ** drops)
        else:
            if config.family == "cosine":
                seen_warmup.add(False)
            assert schedule.lr_at(0) == pytest.approx(lr0)
        assert all(math.isfinite(v) and v >= 0 for v in schedule.curve(STEPS_PER_EPOCH * EPOCHS))
    assert seen_warmup == {True, False}


def test_trial_schedule_converts_epochs_to_steps(
    all_samples: list[tuple[optuna.Trial, TrialConfig]],
) -> None:
    for _, config in all_samples:
        schedule = config.schedule(steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS)
        v = config.values
        if config.family in ("exponential", "inverse_time"):
            assert schedule.decay_steps == pytest.approx(v["drop_every"] * STEPS_PER_EPOCH)
            assert schedule.decay_rate == v["decay_rate"]
            assert schedule.staircase == v["staircase"]
        elif config.family == "cosine_restarts":
            assert schedule == CosineRestarts(
                v["initial_lr"],
                first_decay_steps=v["restart_epochs"] * STEPS_PER_EPOCH,
                t_mul=2.0,
                m_mul=0.9,
                alpha=0.1,
            )
        elif config.family == "time":
            assert schedule == TimeDecay(v["initial_lr"], time_decay=v["time_decay"])
        elif config.family == "polynomial":
            assert schedule.end_lr == pytest.approx(v["initial_lr"] * v["end_lr_factor"])
            assert schedule.power == v["power"]


def test_sampling_is_reproducible(all_space: SpaceSpec) -> None:
    a = [config for _, config in sample_many(all_space, 10)]
    b = [config for _, config in sample_many(all_space, 10)]
    assert a == b


def test_trial_config_schedule_direct() -> None:
    config = TrialConfig(
        "exponential",
        {"initial_lr": 0.1, "decay_rate": 0.5, "drop_every": 2.0, "staircase": True},
        OptimizerSpec(),
    )
    assert config.schedule(steps_per_epoch=20, epochs=5) == Exponential(
        0.1, decay_steps=40.0, decay_rate=0.5, staircase=True
    )


# --------------------------------------------------------------------------------------------
# Optimizer dimensions
# --------------------------------------------------------------------------------------------


def test_momentum_only_for_sgd() -> None:
    space = space_of(
        '[space]\nschedules = "constant"\ninitial_lr = [0.01, 0.1]\n'
        'optimizer = ["sgd", "adam"]\nmomentum = {low = 0.0, high = 0.9}\n'
    )
    names = set()
    for trial, config in sample_many(space):
        name = trial.params["optimizer"]
        names.add(name)
        assert config.optimizer.name == name
        assert "nesterov" not in trial.params  # pinned to false
        assert config.optimizer.nesterov is False
        if name == "sgd":
            assert set(trial.params) == {"initial_lr", "optimizer", "momentum"}
            assert 0.0 <= trial.params["momentum"] <= 0.9
            assert config.optimizer.momentum == trial.params["momentum"]
        else:
            assert set(trial.params) == {"initial_lr", "optimizer"}
            assert config.optimizer.momentum == 0.0
        assert set(config.values) == {"initial_lr"}
    assert names == {"sgd", "adam"}


def test_nesterov_only_with_momentum() -> None:
    space = space_of(
        '[space]\nschedules = "constant"\ninitial_lr = 0.05\n'
        'optimizer = ["sgd", "rmsprop"]\nmomentum = [0.0, 0.9]\nnesterov = [false, true]\n'
    )
    seen = set()
    for trial, config in sample_many(space):
        params = trial.params
        assert "initial_lr" not in params
        assert config.values == {"initial_lr": 0.05}
        if params["optimizer"] == "sgd" and params["momentum"] > 0:
            assert set(params) == {"optimizer", "momentum", "nesterov"}
            assert config.optimizer == OptimizerSpec("sgd", 0.9, params["nesterov"])
            seen.add(("sgd", 0.9, params["nesterov"]))
        elif params["optimizer"] == "sgd":
            assert set(params) == {"optimizer", "momentum"}
            assert config.optimizer == OptimizerSpec("sgd", 0.0, False)
            seen.add(("sgd", 0.0, False))
        else:
            assert set(params) == {"optimizer"}
            assert config.optimizer == OptimizerSpec("rmsprop", 0.0, False)
            seen.add(("rmsprop", 0.0, False))
    assert seen == {
        ("sgd", 0.9, True),
        ("sgd", 0.9, False),
        ("sgd", 0.0, False),
        ("rmsprop", 0.0, False),
    }


# --------------------------------------------------------------------------------------------
# Baselines: an enqueued trial reproduces the tutorial's configuration exactly
# --------------------------------------------------------------------------------------------

BASELINES = """
[[baselines]]
name = "exponential"
schedule = "exponential"
initial_lr = 0.001
decay_steps = 500
decay_rate = 0.98
staircase = true

[[baselines]]
name = "piecewise"
schedule = "piecewise"
boundaries = [1000, 2000, 3000]
values = [0.003, 0.002, 0.001, 0.0001]

[[baselines]]
name = "adam"
schedule = "constant"
initial_lr = 0.01
optimizer = "adam"

[[baselines]]
name = "polynomial"
schedule = "polynomial"
initial_lr = 0.003
decay_steps = 5000
end_lr = 0.001
power = 1.5

[[baselines]]
name = "step"
schedule = "step"
initial_lr = 0.1
decay_rate = 0.2
drop_every = 2.0

[[baselines]]
name = "nesterov"
schedule = "time"
initial_lr = 0.05
time_decay = 0.01
momentum = 0.9
nesterov = true
"""

EXPECTED_BASELINES: dict[str, tuple[Any, OptimizerSpec]] = {
    "exponential": (Exponential(0.001, 500, 0.98, staircase=True), OptimizerSpec("sgd")),
    "piecewise": (
        Piecewise(0.003, boundaries=(1000, 2000, 3000), values=(0.003, 0.002, 0.001, 0.0001)),
        OptimizerSpec("sgd"),
    ),
    "adam": (Constant(0.01), OptimizerSpec("adam")),
    "polynomial": (Polynomial(0.003, decay_steps=5000, end_lr=0.001, power=1.5), OptimizerSpec()),
    "step": (
        StepDecay(0.1, decay_rate=0.2, drop_every=2.0, steps_per_epoch=STEPS_PER_EPOCH),
        OptimizerSpec(),
    ),
    "nesterov": (TimeDecay(0.05, time_decay=0.01), OptimizerSpec("sgd", 0.9, True)),
}

# The default ranges leave some tutorial values (decay_rate 0.98) outside: Optuna warns and
# keeps the enqueued value.
BASELINE_SPACES = {
    "default": "",
    "wide": "[space]\ndecay_rate = {low = 0.1, high = 0.99}\n"
    "drop_every = {low = 0.5, high = 4.0}\nnesterov = [false, true]\n",
    "pinned": "[space]\ninitial_lr = 0.2\ndecay_rate = 0.5\nstaircase = false\n"
    "power = 1.0\ntime_decay = 0.5\nend_lr_factor = 0.5\n",
    "one-family": '[space]\nschedules = "cosine"\n',
}


def enqueue_baseline(study: optuna.Study, name: str, values: Any, space: SpaceSpec) -> None:
    values = baseline_values(values, space)
    study.enqueue_trial(
        baseline_params(values, space),
        user_attrs={"baseline": name, "baseline_values": values},
    )


@pytest.mark.filterwarnings("ignore:Fixed parameter .* is out of range:UserWarning")
@pytest.mark.parametrize("space_name", list(BASELINE_SPACES))
@pytest.mark.parametrize("baseline", list(EXPECTED_BASELINES))
def test_baseline_is_reproduced_exactly(space_name: str, baseline: str) -> None:
    spec = parse_study(BASELINE_SPACES[space_name] + BASELINES, "b.toml")
    (base,) = [b for b in spec.baselines if b.name == baseline]
    study = new_study()
    enqueue_baseline(study, base.name, base.values, spec.space)
    trial = study.ask()
    assert trial.user_attrs["baseline"] == baseline
    config = sample(trial, spec.space)
    expected_schedule, expected_optimizer = EXPECTED_BASELINES[baseline]
    assert config.family == base.family
    assert config.schedule(steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS) == expected_schedule
    assert config.optimizer == expected_optimizer


@pytest.mark.filterwarnings("ignore:Fixed parameter .* is out of range:UserWarning")
def test_baseline_params_and_trial_params() -> None:
    spec = parse_study(BASELINES, "b.toml")
    values = next(b for b in spec.baselines if b.name == "exponential").values
    params = baseline_params(values, spec.space)
    assert params == {
        "schedule": "exponential",
        "initial_lr": 0.001,
        "decay_rate": 0.98,
        "staircase": True,
    }
    study = new_study()
    enqueue_baseline(study, "exponential", values, spec.space)
    trial = study.ask()
    config = sample(trial, spec.space)
    # decay_steps replaces the epoch interval: drop_every is not asked for
    assert trial.params == params
    assert config.values == {
        "initial_lr": 0.001,
        "decay_rate": 0.98,
        "staircase": True,
        "decay_steps": 500,
    }


def test_out_of_range_baseline_value_is_kept_quietly() -> None:
    spec = parse_study(BASELINES, "b.toml")  # decay_rate 0.98 lies outside [0.1, 0.9]
    values = next(b for b in spec.baselines if b.name == "exponential").values
    study = new_study()
    enqueue_baseline(study, "exponential", values, spec.space)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = sample(study.ask(), spec.space)
    assert config.values["decay_rate"] == 0.98


def test_baseline_params_skip_pinned_dimensions() -> None:
    space = space_of(BASELINE_SPACES["pinned"])
    values = {"schedule": "exponential", "initial_lr": 0.001, "decay_rate": 0.98}
    assert baseline_params(values, space) == {"schedule": "exponential"}
    space = space_of('[space]\nschedules = "exponential"\n')
    assert baseline_params(values, space) == {"initial_lr": 0.001, "decay_rate": 0.98}


def test_adam_baseline_over_pinned_sgd() -> None:
    space = space_of('[space]\nschedules = "constant"\noptimizer = "sgd"\nmomentum = 0.5\n')
    values = {"schedule": "constant", "initial_lr": 0.01, "optimizer": "adam"}
    study = new_study()
    enqueue_baseline(study, "adam", values, space)
    config = sample(study.ask(), space)
    assert config.optimizer == OptimizerSpec("adam", 0.0, False)
    assert config.values == {"initial_lr": 0.01}
    # the next trial is an ordinary one: the pinned optimizer again
    config = sample(study.ask(), space)
    assert config.optimizer == OptimizerSpec("sgd", 0.5, False)


def test_trials_after_the_baselines_are_sampled(all_space: SpaceSpec) -> None:
    study = new_study()
    values = {"schedule": "constant", "initial_lr": 0.01}
    enqueue_baseline(study, "c", values, all_space)
    first = sample(study.ask(), all_space)
    assert first.family == "constant"
    assert first.values == {"initial_lr": 0.01}
    later = [sample(study.ask(), all_space) for _ in range(10)]
    assert any(c.values["initial_lr"] != 0.01 for c in later)


def test_baseline_family_outside_the_schedule_choices_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Overrides such as space.schedules=["constant"] shrink a shipped study; its baselines of
    # other families are then skipped with a warning rather than rejected.
    from sweeper.search.runner import _enqueue_baselines

    text = (
        '[space]\nschedules = ["constant", "cosine"]\n'
        '[[baselines]]\nname = "t"\nschedule = "time"\ninitial_lr = 0.05\ntime_decay = 0.01\n'
        '[[baselines]]\nname = "c"\nschedule = "constant"\ninitial_lr = 0.05\n'
    )
    spec = parse_study(text, "b.toml")
    study = new_study()
    with caplog.at_level("WARNING", logger="sweeper.search.runner"):
        _enqueue_baselines(study, spec, 20)
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["baseline"] for t in waiting] == ["c"]
    assert "baseline 't' skipped" in caplog.text


def test_baseline_without_optimizer_keeps_plain_sgd() -> None:
    spec = parse_study(
        '[space]\noptimizer = ["adam", "sgd"]\nmomentum = {low = 0.1, high = 0.9}\n'
        '[[baselines]]\nname = "c"\nschedule = "constant"\ninitial_lr = 0.01\n',
        "b.toml",
    )
    for seed in range(5):
        study = new_study(seed)
        enqueue_baseline(study, "c", spec.baselines[0].values, spec.space)
        config = sample(study.ask(), spec.space)
        assert config.optimizer == OptimizerSpec("sgd", 0.0, False)


SHIPPED = sorted(STUDIES_DIR.glob("*.toml"))


@pytest.mark.filterwarnings("ignore:Fixed parameter .* is out of range:UserWarning")
@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.name) for p in SHIPPED]
    or [pytest.param(None, marks=pytest.mark.skip(reason=f"no study files in {STUDIES_DIR} yet"))],
)
def test_shipped_baselines_reproduce_their_values(path: Path) -> None:
    spec = load_study_file(path)
    study = new_study()
    for base in spec.baselines:
        enqueue_baseline(study, base.name, base.values, spec.space)
    for base in spec.baselines:
        trial = study.ask()
        assert trial.user_attrs["baseline"] == base.name
        config = sample(trial, spec.space)
        assert config.family == base.family
        for key, value in base.values.items():
            if key == "schedule":
                continue
            if key in ("optimizer", "momentum", "nesterov"):
                assert getattr(config.optimizer, key if key != "optimizer" else "name") == value
            else:
                assert config.values[key] == value, (base.name, key)
        schedule = config.schedule(steps_per_epoch=STEPS_PER_EPOCH, epochs=spec.train.epochs)
        assert schedule.lr_at(0) == pytest.approx(base.values["initial_lr"])
        study.tell(trial, 0.5)


# --------------------------------------------------------------------------------------------
# search_space() and grid()
# --------------------------------------------------------------------------------------------


def test_grid_of_an_all_choices_space() -> None:
    spec = parse_study(
        '[sampler]\ntype = "grid"\n[space]\nschedules = ["constant", "exponential"]\n'
        "initial_lr = [0.01, 0.1]\ndecay_rate = [0.5, 0.9]\ndrop_every = [1.0, 2.0]\n"
        'optimizer = ["sgd", "adam"]\n',
        "g.toml",
    )
    assert grid(spec.space) == {
        "schedule": ["constant", "exponential"],
        "initial_lr": [0.01, 0.1],
        "decay_rate": [0.5, 0.9],
        "drop_every": [1.0, 2.0],
        "staircase": [False, True],  # the default choices
        "optimizer": ["sgd", "adam"],
    }


def test_grid_of_a_pinned_schedule() -> None:
    space = space_of('[space]\nschedules = "cosine"\ninitial_lr = [0.01, 0.03, 0.1]\n')
    assert grid(space) == {"initial_lr": [0.01, 0.03, 0.1]}


def test_search_space_lists_only_dimensions_of_the_families() -> None:
    space = space_of('[space]\nschedules = ["constant", "time"]\n')
    assert search_space(space) == {
        "schedule": CategoricalDistribution(["constant", "time"]),
        "initial_lr": FloatDistribution(1e-3, 0.5, log=True),
        "time_decay": FloatDistribution(1e-4, 0.1, log=True),
    }


def test_search_space_of_a_pinned_family() -> None:
    space = space_of(
        '[space]\nschedules = "cosine_restarts"\nrestart_epochs = {low = 1, high = 4, int = true}\n'
        "decay_rate = [0.5, 0.9]\n"
    )
    # decay_rate is searched but no family of the space uses it; t_mul, m_mul, alpha are pinned
    assert search_space(space) == {
        "initial_lr": FloatDistribution(1e-3, 0.5, log=True),
        "restart_epochs": IntDistribution(1, 4),
    }


def test_search_space_includes_optimizer_dimensions() -> None:
    space = space_of(
        '[space]\nschedules = "constant"\ninitial_lr = 0.1\n'
        'optimizer = ["sgd", "adam"]\nmomentum = [0.0, 0.9]\n'
    )
    assert search_space(space) == {
        "optimizer": CategoricalDistribution(["sgd", "adam"]),
        "momentum": CategoricalDistribution([0.0, 0.9]),
    }


def test_search_space_covers_every_sampled_param(
    all_samples: list[tuple[optuna.Trial, TrialConfig]], all_space: SpaceSpec
) -> None:
    dists = search_space(all_space)
    for trial, _ in all_samples:
        for name in trial.params:
            assert trial.distributions[name] == dists[name]


def test_integer_range_never_samples_below_low() -> None:
    with pytest.raises(ConfigError, match="int range needs whole numbers"):
        space_of('[space]\nschedules = "step"\ndrop_every = {low = 0.5, high = 3, int = true}\n')
    space = space_of('[space]\nschedules = "step"\ndrop_every = {low = 1, high = 3, int = true}\n')
    for _, config in sample_many(space, 40):
        assert config.values["drop_every"] in (1, 2, 3)


# --------------------------------------------------------------------------------------------
# The later families and the schedule-free optimizers
# --------------------------------------------------------------------------------------------


def test_later_families_start_and_end_as_sampled(
    all_samples: list[tuple[optuna.Trial, TrialConfig]],
) -> None:
    last = STEPS_PER_EPOCH * EPOCHS - 1
    seen = set()
    for _, config in all_samples:
        if config.family not in ("linear", "wsd", "one_cycle", "rex", "shape"):
            continue
        seen.add(config.family)
        v = config.values
        lr0 = v["initial_lr"]
        schedule = config.schedule(steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS)
        end = {
            "linear": lr0 * v.get("end_lr_factor", 0.0),
            "wsd": lr0 * v.get("end_lr_factor", 0.0),
            "one_cycle": lr0 / 25.0 / 1e4,
            "rex": 0.0,
            "shape": lr0 * v.get("final_lr_ratio", 0.0),
        }[config.family]
        assert schedule.lr_at(last) == pytest.approx(end, rel=1e-9, abs=1e-15), config
        start = {"one_cycle": lr0 / 25.0, "rex": lr0}.get(config.family)
        if config.family in ("linear", "wsd"):
            start = 0.0 if v["warmup_epochs"] > 0 else lr0
        if config.family == "shape":
            start = 0.0 if v["warmup_fraction"] > 0 else lr0
        assert schedule.lr_at(0) == pytest.approx(start), config
    assert seen == {"linear", "wsd", "one_cycle", "rex", "shape"}


def test_the_shape_space_is_continuous_and_unconditional() -> None:
    space = space_of('[space]\nschedules = "shape"\n')
    assert search_space(space) == {
        "initial_lr": FloatDistribution(1e-3, 0.5, log=True),
        "warmup_fraction": FloatDistribution(0.0, 0.3),
        "stable_fraction": FloatDistribution(0.0, 0.9),
        "decay_exponent": FloatDistribution(0.5, 3.0),
        "final_lr_ratio": FloatDistribution(0.0, 0.5),
    }
    for trial, config in sample_many(space, 8):
        assert set(trial.params) == set(search_space(space))  # every trial has every one
        assert config.family == "shape"


def test_schedule_free_optimizers_take_their_warm_up_share() -> None:
    space = space_of(
        '[space]\nschedules = "constant"\noptimizer = ["sgd", "sgd_schedule_free"]\n'
        "schedule_free_warmup = { low = 0.0, high = 0.2 }\nmomentum = 0.9\n"
    )
    seen = set()
    for trial, config in sample_many(space, 20):
        seen.add(config.optimizer.name)
        if config.optimizer.name == "sgd_schedule_free":
            assert config.optimizer.schedule_free
            assert config.optimizer.warmup == trial.params["schedule_free_warmup"]
            assert config.optimizer.momentum == 0.0  # momentum is SGD's
            assert config.optimizer.describe().startswith("sgd_schedule_free(warmup=")
        else:
            assert "schedule_free_warmup" not in trial.params
            assert config.optimizer == OptimizerSpec("sgd", 0.9, False)
        assert "schedule_free_warmup" not in config.values
    assert seen == {"sgd", "sgd_schedule_free"}
    pinned = space_of('[space]\nschedules = "constant"\noptimizer = "adamw_schedule_free"\n')
    (trial, config), *_ = sample_many(pinned, 1)
    assert config.optimizer == OptimizerSpec("adamw_schedule_free", warmup=0.05)
    assert set(trial.params) == {"initial_lr"}


def test_a_baseline_decaying_to_zero_in_a_log_searched_space() -> None:
    # end_lr_factor = 0 lies outside a log range, which Optuna cannot record: the baseline keeps
    # it as a value, not a parameter
    space = space_of('[space]\nschedules = ["linear", "wsd"]\n')
    values = baseline_values({"schedule": "linear", "initial_lr": 0.1, "end_lr_factor": 0.0}, space)
    params = baseline_params(values, space)
    assert params == {"schedule": "linear", "initial_lr": 0.1}
    study = new_study()
    study.enqueue_trial(params, user_attrs={"baseline": "d2z", "baseline_values": values})
    trial = study.ask()
    config = sample(trial, space)
    assert config.values["end_lr_factor"] == 0.0
    assert "end_lr_factor" not in trial.params
    assert config.schedule(steps_per_epoch=10, epochs=2).lr_at(19) == 0.0
