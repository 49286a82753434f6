"""Tests for sweeper.studyfile.config: study files parsed into typed specs, overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.errors import ConfigError, SweeperError
from sweeper.studyfile.config import (
    DEFAULT_STUDY,
    STUDIES_DIR,
    load_study_file,
    parse_study,
    study_from_text,
)
from sweeper.studyfile.dimensions import DIMENSIONS, Choices, Fixed, Range
from sweeper.studyfile.study_spec import Baseline, PrunerSpec, SamplerSpec, SpaceSpec, StudySpec
from sweeper.training.data import DataSpec
from sweeper.training.schedules import FAMILIES
from sweeper.training.train_trial import TrainSettings

FULL_STUDY = """\
[study]
seed = 7
n_trials = 12
metric = "val_accuracy"

[data]
dataset = "npz"
path = "arrays/data.npz"
subset = 500
validation_fraction = 0.25
test_fraction = 0.15
seed = 3

[train]
model = "fashion-cnn"
batch_size = 32
epochs = 4
jit_compile = true

[sampler]
type = "random"
n_startup_trials = 3

[pruner]
type = "hyperband"
min_resource = 2
reduction_factor = 4

[space]
schedules = ["constant", "exponential", "cosine"]
initial_lr = {low = 0.001, high = 0.3, log = true}
decay_rate = [0.5, 0.9]
drop_every = {low = 1, high = 4, int = true}
staircase = true
warmup_epochs = 0.5
alpha = {low = 0.1, high = 0.1}
optimizer = ["sgd", "adam"]
momentum = {choices = [0.0, 0.9]}
nesterov = [true]

[[baselines]]
name = "keras-exponential"
schedule = "exponential"
initial_lr = 0.001
decay_steps = 500
decay_rate = 0.98
staircase = true

[[baselines]]
name = "keras-piecewise"
schedule = "piecewise"
boundaries = [1000, 2000, 3000]
values = [0.003, 0.002, 0.001, 0.0001]

[[baselines]]
schedule = "constant"
initial_lr = 0.01
optimizer = "adam"
"""


def write_study(tmp_path: Path, text: str, name: str = "my-study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def full_study(tmp_path: Path) -> Path:
    (tmp_path / "arrays").mkdir()
    (tmp_path / "arrays" / "data.npz").write_bytes(b"")
    return write_study(tmp_path, FULL_STUDY)


# --------------------------------------------------------------------------------------------
# A valid study file
# --------------------------------------------------------------------------------------------


def test_full_study_top_level(full_study: Path) -> None:
    spec = load_study_file(full_study)
    assert isinstance(spec, StudySpec)
    assert spec.name == "my-study"  # no [study] name: the file's stem
    assert spec.source == str(full_study)
    assert spec.text == FULL_STUDY
    assert spec.seed == 7
    assert spec.n_trials == 12
    assert spec.metric == "val_accuracy"
    assert spec.overrides == ()


def test_full_study_data_train_sampler_pruner(full_study: Path) -> None:
    spec = load_study_file(full_study)
    assert spec.data == DataSpec(
        name="npz",
        path=str((full_study.parent / "arrays" / "data.npz").resolve()),
        subset=500,
        validation_fraction=0.25,
        test_fraction=0.15,
        seed=3,
    )
    assert spec.train == TrainSettings(
        model="fashion-cnn", batch_size=32, epochs=4, jit_compile=True
    )
    assert spec.sampler == SamplerSpec(kind="random", n_startup_trials=3)
    # keys not given keep their defaults
    assert spec.pruner == PrunerSpec(
        kind="hyperband", n_startup_trials=4, n_warmup_steps=1, min_resource=2, reduction_factor=4
    )


def test_full_study_space_dimensions(full_study: Path) -> None:
    space = load_study_file(full_study).space
    assert isinstance(space, SpaceSpec)
    assert space.schedules == Choices(("constant", "exponential", "cosine"))
    assert space.families() == ("constant", "exponential", "cosine")
    dims = space.dims
    assert set(dims) == set(DIMENSIONS)
    assert dims["initial_lr"] == Range(0.001, 0.3, log=True)
    assert dims["decay_rate"] == Choices((0.5, 0.9))
    assert dims["drop_every"] == Range(1.0, 4.0, integer=True)
    assert dims["staircase"] == Fixed(True)
    assert dims["warmup_epochs"] == Fixed(0.5)
    assert dims["alpha"] == Fixed(0.1)  # a range with low == high is pinned
    assert dims["optimizer"] == Choices(("sgd", "adam"))
    assert dims["momentum"] == Choices((0.0, 0.9))
    assert dims["nesterov"] == Fixed(True)  # a one-element list is pinned
    # dimensions the file does not mention keep their defaults
    assert dims["time_decay"] == Range(1e-4, 0.1, log=True)
    assert dims["power"] == Range(0.5, 3.0)
    assert dims["end_lr_factor"] == Range(1e-3, 0.5, log=True)
    assert dims["restart_epochs"] == Range(0.5, 2.0)
    assert dims["t_mul"] == Fixed(2.0)
    assert dims["m_mul"] == Fixed(1.0)
    for name in ("time_decay", "power", "end_lr_factor", "restart_epochs", "t_mul", "m_mul"):
        assert dims[name] == DIMENSIONS[name].default


def test_full_study_space_used(full_study: Path) -> None:
    space = load_study_file(full_study).space
    assert space.used("initial_lr")
    assert space.used("decay_rate")  # exponential
    assert space.used("warmup_epochs")  # cosine
    assert space.used("momentum")  # every family
    assert not space.used("time_decay")
    assert not space.used("power")
    assert not space.used("restart_epochs")


def test_full_study_baselines(full_study: Path) -> None:
    baselines = load_study_file(full_study).baselines
    assert all(isinstance(b, Baseline) for b in baselines)
    assert [b.name for b in baselines] == ["keras-exponential", "keras-piecewise", "baseline 3"]
    assert [b.family for b in baselines] == ["exponential", "piecewise", "constant"]
    assert dict(baselines[0].values) == {
        "schedule": "exponential",
        "initial_lr": 0.001,
        "decay_steps": 500,
        "decay_rate": 0.98,
        "staircase": True,
    }
    # a piecewise baseline's initial_lr is its first value
    assert dict(baselines[1].values) == {
        "schedule": "piecewise",
        "boundaries": [1000, 2000, 3000],
        "values": [0.003, 0.002, 0.001, 0.0001],
        "initial_lr": 0.003,
    }
    assert dict(baselines[2].values) == {
        "schedule": "constant",
        "initial_lr": 0.01,
        "optimizer": "adam",
    }


def test_empty_study_is_all_defaults() -> None:
    spec = parse_study("", "empty.toml")
    assert spec.name == "study"
    assert spec.source == "empty.toml"
    assert spec.data == DataSpec()
    assert spec.train == TrainSettings()
    assert spec.sampler == SamplerSpec()
    assert spec.pruner == PrunerSpec()
    assert spec.baselines == ()
    assert (spec.seed, spec.n_trials, spec.metric) == (0, 20, "val_accuracy")
    assert spec.space.schedules == Choices(tuple(FAMILIES))
    assert dict(spec.space.dims) == {name: info.default for name, info in DIMENSIONS.items()}


def test_study_name_from_table_wins_over_stem(tmp_path: Path) -> None:
    path = write_study(tmp_path, '[study]\nname = "  lr-sweep  "\n')
    assert load_study_file(path).name == "lr-sweep"
    assert parse_study("", "x.toml", default_name="given").name == "given"


def test_single_schedule_name_is_pinned() -> None:
    spec = parse_study('[space]\nschedules = "cosine"\n')
    assert spec.space.schedules == Fixed("cosine")
    assert spec.space.families() == ("cosine",)
    assert parse_study('[space]\nschedules = ["step"]\n').space.schedules == Fixed("step")


def test_data_path_is_relative_to_the_study_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "x.npz").write_bytes(b"")
    path = write_study(tmp_path / "studies", '[data]\ndataset = "npz"\npath = "x.npz"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_study_file(path)
    assert spec.data.path == str((tmp_path / "studies" / "x.npz").resolve())
    # parse_study resolves against base_dir
    spec = parse_study('[data]\ndataset = "npz"\npath = "x.npz"\n', base_dir=tmp_path / "studies")
    assert spec.data.path == str((tmp_path / "studies" / "x.npz").resolve())


def test_hash_is_stable_and_tracks_text_and_overrides(full_study: Path) -> None:
    a = load_study_file(full_study)
    b = load_study_file(full_study)
    assert a.hash == b.hash
    assert len(a.hash) == 64
    assert int(a.hash, 16) >= 0
    changed = write_study(full_study.parent, FULL_STUDY + "\n# a comment\n", "other.toml")
    assert load_study_file(changed).hash != a.hash
    with_override = load_study_file(full_study, ["train.epochs=1"])
    assert with_override.hash != a.hash
    assert with_override.hash == load_study_file(full_study, ["train.epochs=1"]).hash
    assert with_override.hash != load_study_file(full_study, ["train.epochs=2"]).hash


def test_spec_rebuilt_from_stored_text_has_the_same_hash() -> None:
    text = '[train]\nepochs = 2\n[space]\nschedules = ["constant", "time"]\n'
    spec = parse_study(text, "a.toml", overrides=["data.subset=300"])
    again = study_from_text(spec.text, overrides=spec.overrides)
    assert again.hash == spec.hash
    assert again.space == spec.space
    assert again.data == spec.data


# --------------------------------------------------------------------------------------------
# Embedded default and shipped study files
# --------------------------------------------------------------------------------------------


def test_embedded_default_study_parses() -> None:
    if not DEFAULT_STUDY.is_file():
        pytest.skip(f"embedded default study {DEFAULT_STUDY} does not exist yet")
    spec = load_study_file(None)
    assert spec.source == str(DEFAULT_STUDY)
    assert spec.data.name == "digits"
    assert spec.text == DEFAULT_STUDY.read_text(encoding="utf-8")
    assert spec.space.families()
    assert load_study_file(None).hash == spec.hash


SHIPPED = sorted(STUDIES_DIR.glob("*.toml"))


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.name) for p in SHIPPED]
    or [pytest.param(None, marks=pytest.mark.skip(reason=f"no study files in {STUDIES_DIR} yet"))],
)
def test_shipped_study_parses(path: Path) -> None:
    spec = load_study_file(path)
    assert spec.name
    assert set(spec.space.families()) <= set(FAMILIES)
    assert all(b.family in FAMILIES for b in spec.baselines)
    assert len({b.name for b in spec.baselines}) == len(spec.baselines)
    # a quick run over the same file still parses
    quick = load_study_file(path, ["train.epochs=1", "data.subset=300"])
    assert quick.train.epochs == 1
    assert quick.data.subset == 300


def test_every_shipped_study_reads_only_what_ships_with_it() -> None:
    root = STUDIES_DIR.resolve()
    for path in SHIPPED:
        spec = load_study_file(path)
        if spec.data.path is not None:
            assert Path(spec.data.path).resolve().is_relative_to(root), (path, spec.data.path)


@pytest.mark.parametrize(
    "given", ["mnist-t10k", "mnist-t10k.toml", "studies/mnist-t10k.toml", "../studies/mnist-t10k"]
)
def test_shipped_study_found_by_name_from_any_folder(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no study file here
    spec = load_study_file(given)
    assert Path(spec.source).resolve() == (STUDIES_DIR / "mnist-t10k.toml").resolve()
    assert spec.name == "mnist-t10k"
    assert spec.data.path is not None and Path(spec.data.path).is_dir()


def test_a_file_on_disk_wins_over_a_shipped_study_of_that_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist.toml").write_text("[train]\nepochs = 1\n")
    spec = load_study_file("mnist.toml")
    assert spec.source == "mnist.toml"
    assert spec.train.epochs == 1


def test_unknown_study_name_lists_the_shipped_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no such study file"):
        load_study_file("no/such/mnist.toml")  # a missing path is no shipped study
    with pytest.raises(ConfigError) as info:
        load_study_file("mnsit")
    message = str(info.value)
    assert "no such study file" in message
    for path in SHIPPED:
        assert path.stem in message
    assert "sweeper studies" in message


# --------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------


def test_override_train_epochs(full_study: Path) -> None:
    spec = load_study_file(full_study, ["train.epochs=1"])
    assert spec.train.epochs == 1
    assert spec.train.batch_size == 32  # the rest of the table is kept
    assert spec.overrides == ("train.epochs=1",)
    assert spec.text == FULL_STUDY  # the stored text is the file's own


def test_override_data_subset(full_study: Path) -> None:
    spec = load_study_file(full_study, ["data.subset=300"])
    assert spec.data.subset == 300
    assert spec.data.name == "npz"


def test_override_space_schedules(full_study: Path) -> None:
    spec = load_study_file(full_study, ['space.schedules=["constant"]'])
    assert spec.space.schedules == Fixed("constant")
    assert spec.space.families() == ("constant",)
    assert spec.space.dims["initial_lr"] == Range(0.001, 0.3, log=True)


def test_override_bare_word_is_a_string() -> None:
    spec = parse_study("", overrides=["space.schedules=cosine", "sampler.type=random"])
    assert spec.space.schedules == Fixed("cosine")
    assert spec.sampler.kind == "random"


def test_overrides_apply_in_order_and_create_tables() -> None:
    spec = parse_study("", overrides=["train.epochs=3", "train.epochs=2", "pruner.type=none"])
    assert spec.train.epochs == 2
    assert spec.pruner.kind == "none"
    assert spec.overrides == ("train.epochs=3", "train.epochs=2", "pruner.type=none")


@pytest.mark.parametrize(
    "override", ["train.epochs", "=1", "train..epochs=1", ".epochs=1", "train.=1", ""]
)
def test_malformed_override(override: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_study("", "s.toml", overrides=[override])
    message = str(info.value)
    assert "\n" not in message
    assert repr(override) in message
    assert "section.key=value" in message
    assert "train.epochs=1" in message  # an example of the right form


def test_override_with_a_bad_value_is_checked_like_the_file() -> None:
    with pytest.raises(ConfigError, match=r"^s\.toml: \[train\] epochs: .*got 0$"):
        parse_study("", "s.toml", overrides=["train.epochs=0"])


def test_override_into_a_value_that_is_not_a_table() -> None:
    with pytest.raises(ConfigError) as info:
        parse_study('[study]\nname = "x"\n', "s.toml", overrides=["study.name.first=1"])
    message = str(info.value)
    assert "\n" not in message
    assert "study.name.first=1" in message
    assert "'name'" in message
    assert "s.toml" in message


def test_override_unknown_section_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown key 'trian'"):
        parse_study("", "s.toml", overrides=["trian.epochs=1"])


# --------------------------------------------------------------------------------------------
# Bad input: one line, naming the file, the key, the value and the fix
# --------------------------------------------------------------------------------------------

BAD_CASES: list[tuple[str, str, list[str]]] = [
    ("malformed-toml", "[train\nepochs = 1\n", ["not valid TOML", "line 1", "fix the syntax"]),
    ("malformed-value", "[train]\nepochs = \n", ["not valid TOML", "line 2"]),
    ("unknown-top-level", "[traning]\nepochs = 3\n", ["top level", "'traning'", "train"]),
    ("unknown-train-key", "[train]\nepoch = 3\n", ["[train]", "'epoch'", "epochs", "spelling"]),
    ("unknown-study-key", "[study]\ntrials = 3\n", ["[study]", "'trials'", "n_trials"]),
    ("unknown-space-key", "[space]\nlr = 0.1\n", ["[space]", "'lr'", "initial_lr"]),
    (
        "unknown-family",
        '[space]\nschedules = ["constant", "cosin"]\n',
        ["[space] schedules[1]", "'cosin'", "cosine"],
    ),
    (
        "unknown-family-single",
        '[space]\nschedules = "onecycle"\n',
        ["[space] schedules", "'onecycle'", "exponential"],
    ),
    ("empty-schedules", "[space]\nschedules = []\n", ["[space] schedules", "[]"]),
    (
        "low-above-high",
        "[space]\ninitial_lr = {low = 0.5, high = 0.01}\n",
        ["[space] initial_lr", "0.5", "0.01", "low <= high"],
    ),
    ("initial-lr-zero", "[space]\ninitial_lr = 0\n", ["[space] initial_lr", "> 0", "got 0"]),
    (
        "initial-lr-negative",
        "[space]\ninitial_lr = -0.1\n",
        ["[space] initial_lr", "> 0", "-0.1"],
    ),
    (
        "initial-lr-choice-zero",
        "[space]\ninitial_lr = [0.1, 0.0]\n",
        ["[space] initial_lr[1]", "> 0", "0.0"],
    ),
    (
        "initial-lr-range-zero",
        "[space]\ninitial_lr = {low = 0.0, high = 0.1}\n",
        ["[space] initial_lr.low", "> 0", "0.0"],
    ),
    (
        "log-range-low-zero",
        "[space]\ntime_decay = {low = 0.0, high = 0.1, log = true}\n",
        ["[space] time_decay", "log", "low > 0", "0.0"],
    ),
    (
        "range-missing-high",
        "[space]\npower = {low = 0.5}\n",
        ["[space] power", "low and high"],
    ),
    (
        "range-unknown-key",
        "[space]\npower = {low = 0.5, hi = 2.0}\n",
        ["[space] power", "'hi'", "high"],
    ),
    ("range-on-bool", "[space]\nstaircase = {low = 0, high = 1}\n", ["[space] staircase", "true"]),
    ("string-number", '[space]\npower = "2"\n', ["[space] power", "number", "'2'"]),
    ("bool-not-bool", '[space]\nstaircase = "yes"\n', ["[space] staircase", "'yes'", "true"]),
    ("momentum-one", "[space]\nmomentum = 1.0\n", ["[space] momentum", "[0, 1)", "1.0"]),
    ("m-mul-zero", "[space]\nm_mul = 0.0\n", ["[space] m_mul", "(0, 1]", "0.0"]),
    ("empty-choices", "[space]\npower = []\n", ["[space] power", "empty", "at least one"]),
    ("repeated-choices", "[space]\npower = [1.0, 1.0]\n", ["[space] power", "repeated"]),
    (
        "unknown-optimizer",
        '[space]\noptimizer = "adamw"\n',
        ["[space] optimizer", "'adamw'", "adam", "rmsprop"],
    ),
    (
        "unknown-optimizer-choice",
        '[space]\noptimizer = ["sgd", "nadam"]\n',
        ["[space] optimizer[1]", "'nadam'", "sgd"],
    ),
    (
        "optimizer-range",
        '[space]\noptimizer = {low = "adam", high = "sgd"}\n',
        ["[space] optimizer", "list of choices", "not a range"],
    ),
    (
        "unknown-sampler",
        '[sampler]\ntype = "bayes"\n',
        ["[sampler] type", "'bayes'", "tpe", "random", "grid", "gp", "cmaes"],
    ),
    (
        "unknown-pruner",
        '[pruner]\ntype = "patient"\n',
        ["[pruner] type", "'patient'", "median", "successive_halving", "hyperband", "none"],
    ),
    (
        "pruner-reduction-factor",
        "[pruner]\nreduction_factor = 1\n",
        ["[pruner] reduction_factor", ">= 2", "got 1"],
    ),
    (
        "grid-with-range",
        '[sampler]\ntype = "grid"\n[space]\nschedules = ["constant", "time"]\n'
        "initial_lr = [0.01, 0.1]\n",
        ["[sampler] type", "'grid'", "time_decay", "list of choices"],
    ),
    (
        "grid-with-default-range",
        '[sampler]\ntype = "grid"\n[space]\nschedules = "constant"\n',
        ["[sampler] type", "initial_lr", "is a range", "list of choices"],
    ),
    (
        "unknown-dataset",
        '[data]\ndataset = "imagenet"\n',
        ["[data] dataset", "'imagenet'", "digits", "mnist"],
    ),
    ("npz-without-path", '[data]\ndataset = "npz"\n', ["[data]", "npz", "path"]),
    ("bad-subset", "[data]\nsubset = 3\n", ["[data]", "subset", "3", ">= 10"]),
    (
        "bad-fraction",
        "[data]\nvalidation_fraction = 1.5\n",
        ["[data]", "validation_fraction", "1.5", "0 < x < 1"],
    ),
    ("batch-size-zero", "[train]\nbatch_size = 0\n", ["[train] batch_size", ">= 1", "got 0"]),
    ("batch-size-string", '[train]\nbatch_size = "64"\n', ["[train] batch_size", "got '64'"]),
    ("batch-size-bool", "[train]\nbatch_size = true\n", ["[train] batch_size", "got True"]),
    ("batch-size-float", "[train]\nbatch_size = 6.4\n", ["[train] batch_size", "got 6.4"]),
    ("epochs-zero", "[train]\nepochs = 0\n", ["[train] epochs", ">= 1", "got 0"]),
    ("unknown-model", '[train]\nmodel = "resnet"\n', ["[train] model", "'resnet'", "mnist-cnn"]),
    ("jit-not-bool", '[train]\njit_compile = "yes"\n', ["[train] jit_compile", "'yes'"]),
    ("n-trials-zero", "[study]\nn_trials = 0\n", ["[study] n_trials", ">= 1", "got 0"]),
    ("blank-name", '[study]\nname = "  "\n', ["[study] name", "non-empty"]),
    ("bad-metric", '[study]\nmetric = "loss"\n', ["[study] metric", "'loss'", "val_accuracy"]),
    ("space-not-table", "space = 3\n", ["[space]", "table", "3"]),
    (
        "duplicate-baseline",
        '[[baselines]]\nname = "tf"\nschedule = "constant"\ninitial_lr = 0.1\n'
        '[[baselines]]\nname = "tf"\nschedule = "time"\ninitial_lr = 0.1\n',
        ["[[baselines]] #2", "'tf'", "twice", "own name"],
    ),
    (
        "baseline-without-schedule",
        '[[baselines]]\nname = "tf"\ninitial_lr = 0.1\n',
        ["[[baselines]] #1", "schedule", "constant", "piecewise"],
    ),
    (
        "baseline-without-initial-lr",
        '[[baselines]]\nname = "tf"\nschedule = "constant"\n',
        ["[[baselines]] #1", "initial_lr"],
    ),
    (
        "baseline-unknown-family",
        '[[baselines]]\nname = "tf"\nschedule = "cyclic"\ninitial_lr = 0.1\n',
        ["[[baselines]] #1 schedule", "'cyclic'", "exponential"],
    ),
    (
        "baseline-unknown-key",
        '[[baselines]]\nname = "tf"\nschedule = "constant"\nlr = 0.1\n',
        ["[[baselines]] #1", "'lr'", "initial_lr"],
    ),
    (
        "baseline-bad-value",
        '[[baselines]]\nname = "tf"\nschedule = "constant"\ninitial_lr = -1.0\n',
        ["[[baselines]] #1 initial_lr", "> 0", "-1.0"],
    ),
    (
        "baseline-boundaries-not-piecewise",
        '[[baselines]]\nname = "tf"\nschedule = "exponential"\ninitial_lr = 0.1\n'
        "boundaries = [100]\nvalues = [0.1, 0.01]\n",
        ["[[baselines]] #1", "boundaries", "piecewise"],
    ),
    (
        "baselines-not-array",
        '[baselines]\nname = "tf"\n',
        ["[[baselines]]", "array of tables"],
    ),
    (
        "cooldown-shape-unknown",
        '[space]\ncooldown_shape = "square"\n',
        ["[space] cooldown_shape", "'square'", "linear", "cosine", "1-sqrt"],
    ),
    (
        "cooldown-shape-range",
        "[space]\ncooldown_shape = { low = 0, high = 1 }\n",
        ["[space] cooldown_shape", "not a range"],
    ),
    (
        "pct-start-one",
        "[space]\npct_start = 1.0\n",
        ["[space] pct_start", "(0, 1)", "1.0"],
    ),
    (
        "final-lr-ratio-above-one",
        "[space]\nfinal_lr_ratio = { low = 0.0, high = 1.5 }\n",
        ["[space] final_lr_ratio.high", "[0, 1]", "1.5"],
    ),
    (
        "warmup-longer-than-the-run",
        '[train]\nepochs = 2\n[space]\nschedules = ["linear", "wsd"]\n'
        "warmup_epochs = { low = 0.0, high = 2.0 }\n",
        ["[space] warmup_epochs", "2.0", "epochs = 2", "linear and wsd", "below 2"],
    ),
    (
        "schedule-free-with-a-schedule",
        '[space]\nschedules = ["constant", "cosine"]\noptimizer = "sgd_schedule_free"\n',
        ["[space] optimizer", "'sgd_schedule_free'", "replaces the schedule", '"constant"'],
    ),
    (
        "schedule-free-baseline-with-a-schedule",
        '[space]\nschedules = "constant"\n'
        '[[baselines]]\nname = "sf"\nschedule = "cosine"\ninitial_lr = 0.1\n'
        'optimizer = "adamw_schedule_free"\n',
        ["[[baselines]] #1 optimizer", "'adamw_schedule_free'", "'constant'", "'cosine'"],
    ),
    # numeric limits: seeds NumPy and Keras take, rates that can train (F7)
    (
        "study-seed-beyond-32-bits",
        "[study]\nseed = 9223372036854775807\n",
        ["[study] seed", "at most 4294967295", "9223372036854775807"],
    ),
    ("study-seed-negative", "[study]\nseed = -1\n", ["[study] seed", ">= 0", "-1"]),
    ("data-seed-beyond-32-bits", "[data]\nseed = 4294967296\n", ["[data]", "seed", "4294967295"]),
    (
        "initial-lr-absurd",
        "[space]\ninitial_lr = 1e300\n",
        ["[space] initial_lr", "at most 10", "1e+300"],
    ),
    (
        "initial-lr-range-absurd",
        "[space]\ninitial_lr = { low = 1e-3, high = 1e300, log = true }\n",
        ["[space] initial_lr.high", "at most 10", "1e+300"],
    ),
    (
        "initial-lr-choices-absurd",
        "[space]\ninitial_lr = [0.1, 11.0]\n",
        ["[space] initial_lr[1]", "at most 10", "11.0"],
    ),
    (
        "baseline-initial-lr-absurd",
        '[[baselines]]\nname = "b"\nschedule = "constant"\ninitial_lr = 1e300\n',
        ["[[baselines]] #1 initial_lr", "at most 10", "1e+300"],
    ),
    (
        "baseline-piecewise-values-absurd",
        '[[baselines]]\nname = "p"\nschedule = "piecewise"\nboundaries = [10]\n'
        "values = [0.1, 1e300]\n",
        ["[[baselines]] #1 values", "[0, 10]", "1e+300"],
    ),
    (
        "baseline-end-lr-absurd",
        '[[baselines]]\nname = "p"\nschedule = "polynomial"\ninitial_lr = 0.1\nend_lr = 1e300\n',
        ["[[baselines]] #1 end_lr", "[0, 10]", "1e+300"],
    ),
    (
        "baseline-one-cycle-warm-up-too-short",
        '[[baselines]]\nname = "1c"\nschedule = "one_cycle"\ninitial_lr = 0.1\n'
        "pct_start = 0.0001\n",
        ["[[baselines]] #1", "one_cycle", "pct_start", "train longer"],
    ),
]


def assert_one_line_error(message: str, path: Path, expected: list[str]) -> None:
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=case_id) for case_id, text, expected in BAD_CASES],
)
def test_bad_study_file(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write_study(tmp_path, text, "bad.toml")
    with pytest.raises(ConfigError) as info:
        load_study_file(path)
    assert_one_line_error(str(info.value), path, expected)


def test_config_error_is_a_sweeper_error_with_exit_code() -> None:
    with pytest.raises(SweeperError) as info:
        parse_study("[train]\nepoch = 3\n", "s.toml")
    assert isinstance(info.value, ConfigError)
    assert info.value.exit_code == 2


def test_data_path_that_does_not_exist(tmp_path: Path) -> None:
    path = write_study(tmp_path, '[data]\ndataset = "npz"\npath = "missing/data.npz"\n')
    with pytest.raises(ConfigError) as info:
        load_study_file(path)
    missing = str((tmp_path / "missing" / "data.npz").resolve())
    assert_one_line_error(str(info.value), path, ["[data] path", missing, "fix the path"])


def test_missing_study_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_study_file(path)
    assert_one_line_error(str(info.value), path, ["no such study file", ".toml"])


def test_unreadable_study_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError) as info:
        load_study_file(path)
    assert_one_line_error(str(info.value), path, ["cannot read"])


# Baseline settings in steps are checked when the study file is read, naming the file.
NATIVE_CASES = [
    pytest.param('schedule = "piecewise"\nboundaries = [100]\nvalues = 0.1\n', id="values-number"),
    pytest.param('schedule = "piecewise"\nboundaries = []\nvalues = []\n', id="values-empty"),
    pytest.param(
        'schedule = "piecewise"\nboundaries = [100, 200]\nvalues = [0.1, 0.01]\n',
        id="values-count",
    ),
    pytest.param(
        'schedule = "piecewise"\nboundaries = "100"\nvalues = [0.1, 0.01]\n',
        id="boundaries-string",
    ),
    pytest.param(
        'schedule = "exponential"\ninitial_lr = 0.1\ndecay_steps = -5\n', id="decay-steps-negative"
    ),
    pytest.param(
        'schedule = "polynomial"\ninitial_lr = 0.1\nend_lr = 5.0\n', id="end-lr-above-initial"
    ),
]


@pytest.mark.parametrize("body", NATIVE_CASES)
def test_bad_baseline_native_setting(tmp_path: Path, body: str) -> None:
    path = write_study(tmp_path, '[[baselines]]\nname = "tf"\n' + body, "bad.toml")
    with pytest.raises(ConfigError) as info:
        load_study_file(path)
    assert_one_line_error(str(info.value), path, ["[[baselines]] #1"])


def test_the_later_families_and_their_dimensions_read_from_a_study_file() -> None:
    spec = parse_study(
        '[train]\nepochs = 3\n[space]\nschedules = ["linear", "wsd", "one_cycle", "rex", "shape"]\n'
        'warmup_epochs = 0.5\nend_lr_factor = 0.0\ncooldown_shape = ["1-sqrt", "cosine"]\n'
        "final_lr_ratio = { low = 0.0, high = 0.2 }\n"
        '[[baselines]]\nname = "wsd"\nschedule = "wsd"\ninitial_lr = 0.1\ncooldown_fraction = 0.2\n'
        'cooldown_shape = "linear"\nwarmup_epochs = 1.0\n'
        '[[baselines]]\nname = "d2z"\nschedule = "linear"\ninitial_lr = 0.1\nend_lr_factor = 0.0\n'
        '[[baselines]]\nname = "1cycle"\nschedule = "one_cycle"\ninitial_lr = 0.3\n'
        '[[baselines]]\nname = "rex"\nschedule = "rex"\ninitial_lr = 0.1\n'
        '[[baselines]]\nname = "shape"\nschedule = "shape"\ninitial_lr = 0.1\nstable_fraction = 1.0\n',
        "later.toml",
    )
    dims = spec.space.dims
    assert dims["end_lr_factor"] == Fixed(0.0)  # decay to zero may be pinned
    assert dims["cooldown_shape"] == Choices(("1-sqrt", "cosine"))
    assert dims["final_lr_ratio"] == Range(0.0, 0.2)
    assert dims["warmup_fraction"] == DIMENSIONS["warmup_fraction"].default == Range(0.0, 0.3)
    assert DIMENSIONS["stable_fraction"].default == Range(0.0, 0.9)
    assert DIMENSIONS["decay_exponent"].default == Range(0.5, 3.0)
    assert DIMENSIONS["cooldown_fraction"].default == Range(0.1, 0.3)
    assert [b.family for b in spec.baselines] == ["wsd", "linear", "one_cycle", "rex", "shape"]
    for name in ("cooldown_fraction", "cooldown_shape", "pct_start", "stable_fraction"):
        assert spec.space.used(name), name
        assert DIMENSIONS[name].doc


def _torch_found(monkeypatch: pytest.MonkeyPatch, found: bool) -> None:
    """Parsing only asks ``importlib.util.find_spec`` whether PyTorch (gp's package, an extra CI
    does not install) is there: answer as told, whether or not it is installed."""
    import importlib.machinery
    import importlib.util

    real = importlib.util.find_spec
    torch = importlib.machinery.ModuleSpec("torch", None) if found else None
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: torch if name == "torch" else real(name, *a)
    )


def test_gp_and_cmaes_samplers_are_study_file_samplers(monkeypatch: pytest.MonkeyPatch) -> None:
    _torch_found(monkeypatch, True)
    for kind in ("gp", "cmaes"):
        spec = parse_study(f'[sampler]\ntype = "{kind}"\nn_startup_trials = 2\n', "s.toml")
        assert spec.sampler == SamplerSpec(kind=kind, n_startup_trials=2)


def test_a_sampler_whose_package_is_missing_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _torch_found(monkeypatch, False)
    with pytest.raises(ConfigError) as info:
        parse_study('[sampler]\ntype = "gp"\n', "s.toml")
    message = str(info.value)
    assert "\n" not in message
    for part in ("s.toml", "[sampler] type", "'gp'", "PyTorch", "pip install", "another sampler"):
        assert part in message, part


def test_schedule_free_optimizers_with_the_constant_family() -> None:
    spec = parse_study(
        '[space]\nschedules = "constant"\noptimizer = ["sgd_schedule_free", "adamw_schedule_free"]\n'
        "schedule_free_warmup = 0.1\n",
        "sf.toml",
    )
    assert spec.space.dims["optimizer"] == Choices(("sgd_schedule_free", "adamw_schedule_free"))
    assert spec.space.dims["schedule_free_warmup"] == Fixed(0.1)
