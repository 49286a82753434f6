"""Study files: TOML read with ``tomllib``, validated into typed dataclasses.

Every error names the file, the key, the value and the fix, in one line, and is raised before
anything touches a store. See the README's "Study file reference" for the format.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.data import DATASETS, DataSpec
from sweeper.errors import ConfigError, DataError, SweeperError
from sweeper.models import MODELS, check_model_name
from sweeper.names import check_study_name
from sweeper.optimizers import OPTIMIZERS, SCHEDULE_FREE
from sweeper.schedules import COOLDOWN_SHAPES, FAMILIES
from sweeper.training import TrainSettings

STUDIES_DIR = Path(__file__).resolve().parent / "studies"  # a link to the top-level studies/
DEFAULT_STUDY = STUDIES_DIR / "digits.toml"
# sanity limits: beyond them a value is a typo, not a plan
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 20
MAX_TRIALS = 10_000_000

SAMPLERS = ("tpe", "random", "grid", "gp", "cmaes")
# the package each sampler needs beyond Optuna, and how to get it
SAMPLER_NEEDS = {
    "gp": ("torch", "PyTorch (Optuna's GPSampler runs on it); pip install 'sweeper[gp]'"),
    "cmaes": ("cmaes", "the cmaes package (Optuna's CmaEsSampler runs on it); pip install cmaes"),
}
PRUNERS = ("asha", "median", "successive_halving", "hyperband", "none")
ALL_FAMILIES = frozenset(FAMILIES)
_DROPPING = frozenset({"step", "exponential", "piecewise", "inverse_time"})


@dataclass(frozen=True)
class Range:
    """A searched interval; ``log`` samples log-uniformly, ``integer`` samples whole numbers."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class Choices:
    """A searched categorical dimension."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Fixed:
    """A pinned dimension: not searched, always this value."""

    value: Any


@dataclass(frozen=True)
class Auto:
    """``initial_lr = "auto"``: log-uniform bounds set from data by the LR range test."""


Dimension = Range | Choices | Fixed | Auto


@dataclass(frozen=True)
class DimensionInfo:
    families: frozenset[str]  # the schedule families that use it (all for optimizer dims)
    default: Dimension
    # "positive", "unit" (0, 1], "unit0" [0, 1], "fraction" (0, 1), "ratio" [0, 1), "nonneg",
    # "epochs", "bool", "optimizer", "cooldown"
    kind: str
    doc: str


# Every searchable dimension. Intervals are in epochs; they become steps with the real
# steps-per-epoch when the trial's schedule is built (``schedules.from_dimensions``).
DIMENSIONS: dict[str, DimensionInfo] = {
    "initial_lr": DimensionInfo(
        ALL_FAMILIES, Range(1e-3, 0.5, log=True), "positive", "initial (peak) learning rate"
    ),
    "time_decay": DimensionInfo(
        frozenset({"time"}), Range(1e-4, 0.1, log=True), "nonneg", "lr0 / (1 + decay * step)"
    ),
    "decay_rate": DimensionInfo(
        _DROPPING,
        Range(0.1, 0.9),
        "positive",
        "factor per drop (step, exponential, piecewise); rate of inverse_time",
    ),
    "drop_every": DimensionInfo(
        _DROPPING, Range(1.0, 3.0), "epochs", "drop interval in epochs (decay_steps in epochs)"
    ),
    "staircase": DimensionInfo(
        frozenset({"exponential", "inverse_time"}),
        Choices((False, True)),
        "bool",
        "decay in discrete steps",
    ),
    "power": DimensionInfo(frozenset({"polynomial"}), Range(0.5, 3.0), "positive", "exponent"),
    "end_lr_factor": DimensionInfo(
        frozenset({"polynomial", "linear", "wsd"}),
        Range(1e-3, 0.5, log=True),
        "unit0",
        "end rate as a fraction of initial_lr (0: decay to zero)",
    ),
    "alpha": DimensionInfo(
        frozenset({"cosine", "cosine_restarts"}), Fixed(0.0), "ratio", "floor as a fraction of lr0"
    ),
    "warmup_epochs": DimensionInfo(
        frozenset({"cosine", "linear", "wsd"}),
        Fixed(0.0),
        "nonneg",
        "linear warm-up length in epochs",
    ),
    "restart_epochs": DimensionInfo(
        frozenset({"cosine_restarts"}), Range(0.5, 2.0), "epochs", "first restart period, epochs"
    ),
    "t_mul": DimensionInfo(
        frozenset({"cosine_restarts"}), Fixed(2.0), "positive", "period multiplier per restart"
    ),
    "m_mul": DimensionInfo(
        frozenset({"cosine_restarts"}), Fixed(1.0), "unit", "peak multiplier per restart"
    ),
    "cooldown_fraction": DimensionInfo(
        frozenset({"wsd"}), Range(0.1, 0.3), "unit", "share of the run the wsd cooldown takes"
    ),
    "cooldown_shape": DimensionInfo(
        frozenset({"wsd"}),
        Choices(COOLDOWN_SHAPES),
        "cooldown",
        f"wsd cooldown curve: {', '.join(COOLDOWN_SHAPES)}",
    ),
    "pct_start": DimensionInfo(
        frozenset({"one_cycle"}),
        Range(0.1, 0.5),
        "fraction",
        "share of the run one_cycle rises to its peak",
    ),
    "div_factor": DimensionInfo(
        frozenset({"one_cycle"}), Fixed(25.0), "positive", "one_cycle starts at lr0 / div_factor"
    ),
    "final_div_factor": DimensionInfo(
        frozenset({"one_cycle"}),
        Fixed(1e4),
        "positive",
        "one_cycle ends at lr0 / (div_factor * final_div_factor)",
    ),
    "warmup_fraction": DimensionInfo(
        frozenset({"shape"}), Range(0.0, 0.3), "ratio", "shape: warm-up share of the run"
    ),
    "stable_fraction": DimensionInfo(
        frozenset({"shape"}),
        Range(0.0, 0.9),
        "unit0",
        "shape: share of the run after the warm-up held at lr0",
    ),
    "decay_exponent": DimensionInfo(
        frozenset({"shape"}), Range(0.5, 3.0), "positive", "shape: exponent of the decay"
    ),
    "final_lr_ratio": DimensionInfo(
        frozenset({"shape"}),
        Range(0.0, 0.5),
        "unit0",
        "shape: end rate as a fraction of lr0 (0: decay to zero)",
    ),
    "optimizer": DimensionInfo(ALL_FAMILIES, Fixed("sgd"), "optimizer", "optimizer name"),
    "momentum": DimensionInfo(ALL_FAMILIES, Fixed(0.0), "ratio", "SGD momentum (sgd only)"),
    "nesterov": DimensionInfo(ALL_FAMILIES, Fixed(False), "bool", "SGD Nesterov (sgd only)"),
    "schedule_free_warmup": DimensionInfo(
        ALL_FAMILIES,
        Fixed(0.05),
        "ratio",
        "linear warm-up share of the run (schedule-free optimizers only)",
    ),
}

# Keys a baseline may use besides dimensions: the tutorials' settings in steps.
BASELINE_NATIVE = ("decay_steps", "boundaries", "values", "end_lr")


@dataclass(frozen=True)
class SpaceSpec:
    schedules: Choices | Fixed
    dims: Mapping[str, Dimension]

    def families(self) -> tuple[str, ...]:
        if isinstance(self.schedules, Fixed):
            return (str(self.schedules.value),)
        return tuple(str(v) for v in self.schedules.values)

    def used(self, name: str) -> bool:
        """Whether any family of the space uses dimension ``name``."""
        return bool(DIMENSIONS[name].families & set(self.families()))


@dataclass(frozen=True)
class SamplerSpec:
    kind: str = "tpe"
    n_startup_trials: int = 10


@dataclass(frozen=True)
class PrunerSpec:
    kind: str = "asha"
    n_startup_trials: int = 4
    n_warmup_steps: int = 1
    min_resource: int = 1
    reduction_factor: int = 3
    # a tuned trial whose validation accuracy after its first epoch (of at least 50 updates) is
    # at most stall_factor / num_classes stops there ("stalled"); 0 or type "none" turns it off
    stall_factor: float = 1.5


@dataclass(frozen=True)
class Baseline:
    name: str
    values: Mapping[str, Any]

    @property
    def family(self) -> str:
        return str(self.values["schedule"])


@dataclass(frozen=True)
class StudySpec:
    name: str
    source: str  # file path, or "<default>"
    text: str  # the study file's text, as stored
    data: DataSpec
    train: TrainSettings
    space: SpaceSpec
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    baselines: tuple[Baseline, ...] = ()
    seed: int = 0
    n_trials: int = 20
    budget_epochs: int | None = None  # stop once this many epochs were trained in all
    metric: str = "val_accuracy"
    overrides: tuple[str, ...] = ()  # section.key=value settings applied over the text
    max_failure_rate: float = 0.5  # stop when more than this share of the last trials failed
    failure_window: int = 10

    @property
    def hash(self) -> str:
        """Identity of the study's definition: its text and its overrides."""
        blob = self.text + "\0" + "\n".join(self.overrides)
        return hashlib.sha256(blob.encode()).hexdigest()


class _Reader:
    """Walks one parsed study file and raises ConfigError naming the file and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {message}")

    def table(self, raw: Mapping[str, Any], name: str) -> dict[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(f"[{name}]", f"must be a table, got {value!r}")
        return dict(value)

    def known(self, table: Mapping[str, Any], where: str, keys: Iterable[str]) -> None:
        keys = sorted(keys)
        for key in table:
            if key not in keys:
                raise self.fail(
                    where, f"unknown key {key!r}; known keys: {', '.join(keys)} (check spelling)"
                )

    def integer(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        default: int,
        low: int,
        high: int | None = None,
    ) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(f"{where} {key}", f"must be an integer >= {low}, got {value!r}")
        if high is not None and value > high:
            raise self.fail(f"{where} {key}", f"must be at most {high}, got {value!r}")
        return value

    def choice(
        self, table: Mapping[str, Any], key: str, where: str, default: str, options: Iterable[str]
    ) -> str:
        options = tuple(options)
        value = table.get(key, default)
        if value not in options:
            raise self.fail(f"{where} {key}", f"{value!r} is not one of {', '.join(options)}")
        return str(value)


def _check_value(r: _Reader, name: str, value: Any, where: str) -> None:
    kind = DIMENSIONS[name].kind if name in DIMENSIONS else "family"
    if kind == "family":
        if value not in FAMILIES:
            raise r.fail(
                where, f"unknown schedule family {value!r}; choose from {', '.join(FAMILIES)}"
            )
        return
    if kind == "bool":
        if not isinstance(value, bool):
            raise r.fail(where, f"must be true or false, got {value!r}")
        return
    if kind == "optimizer":
        if value not in OPTIMIZERS:
            raise r.fail(where, f"unknown optimizer {value!r}; choose from {', '.join(OPTIMIZERS)}")
        return
    if kind == "cooldown":
        if value not in COOLDOWN_SHAPES:
            raise r.fail(
                where, f"unknown cooldown shape {value!r}; choose from {', '.join(COOLDOWN_SHAPES)}"
            )
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise r.fail(where, f"must be a number, got {value!r}")
    rules = {
        "positive": (value > 0, "must be > 0"),
        "epochs": (value > 0, "must be > 0 epochs"),
        "nonneg": (value >= 0, "must be >= 0"),
        "unit": (0 < value <= 1, "must lie in (0, 1]"),
        "unit0": (0 <= value <= 1, "must lie in [0, 1]"),
        "fraction": (0 < value < 1, "must lie in (0, 1)"),
        "ratio": (0 <= value < 1, "must lie in [0, 1)"),
    }
    ok, rule = rules[kind]
    if not ok:
        raise r.fail(where, f"{rule}, got {value!r}")


def _dimension(r: _Reader, name: str, raw: Any) -> Dimension:
    where = f"[space] {name}"
    if raw == "auto":
        if name != "initial_lr":
            raise r.fail(where, 'only initial_lr can be "auto" (set by the LR range test)')
        return Auto()
    if isinstance(raw, dict):
        if "choices" in raw:
            r.known(raw, where, ("choices",))
            raw = raw["choices"]
        else:
            r.known(raw, where, ("low", "high", "log", "int"))
            if "low" not in raw or "high" not in raw:
                raise r.fail(where, f"a range needs both low and high, got {raw!r}")
            low, high = raw["low"], raw["high"]
            if DIMENSIONS[name].kind in ("bool", "optimizer", "cooldown"):
                hint = " (true or false)" if DIMENSIONS[name].kind == "bool" else ""
                raise r.fail(
                    where, f"takes a value or a list of choices{hint}, not a range: {raw!r}"
                )
            _check_value(r, name, low, f"{where}.low")
            _check_value(r, name, high, f"{where}.high")
            if low > high:
                raise r.fail(where, f"low ({low!r}) > high ({high!r}); make low <= high")
            log = raw.get("log", False)
            integer = raw.get("int", False)
            if not isinstance(log, bool) or not isinstance(integer, bool):
                raise r.fail(where, "log and int must be true or false")
            if log and low <= 0:
                raise r.fail(where, f"a log range needs low > 0, got low={low!r}")
            if integer and not (float(low).is_integer() and float(high).is_integer()):
                raise r.fail(where, f"an int range needs whole numbers, got {low!r}..{high!r}")
            if low == high:
                return Fixed(low)
            return Range(float(low), float(high), log=log, integer=integer)
    if isinstance(raw, list):
        if not raw:
            raise r.fail(where, "an empty list of choices; give at least one value")
        for i, value in enumerate(raw):
            _check_value(r, name, value, f"{where}[{i}]")
        if len(set(map(repr, raw))) != len(raw):
            raise r.fail(where, f"repeated choices in {raw!r}")
        return Fixed(raw[0]) if len(raw) == 1 else Choices(tuple(raw))
    _check_value(r, name, raw, where)
    return Fixed(raw)


def _space(r: _Reader, raw: Mapping[str, Any]) -> SpaceSpec:
    table = r.table(raw, "space")
    r.known(table, "[space]", ("schedules", *DIMENSIONS))
    families = table.pop("schedules", list(FAMILIES))
    if isinstance(families, str):
        families = [families]
    if not isinstance(families, list) or not families:
        raise r.fail("[space] schedules", f"must be a family name or a list, got {families!r}")
    for i, family in enumerate(families):
        _check_value(r, "schedules", family, f"[space] schedules[{i}]")
    if len(set(families)) != len(families):
        raise r.fail("[space] schedules", f"repeated families in {families!r}; list each once")
    schedules: Choices | Fixed = (
        Fixed(families[0]) if len(families) == 1 else Choices(tuple(families))
    )
    dims = {name: info.default for name, info in DIMENSIONS.items()}
    for name, value in table.items():
        dims[name] = _dimension(r, name, value)
    return SpaceSpec(schedules, dims)


def _values_of(dim: Dimension) -> list[Any]:
    """The values a pinned or categorical dimension can take ([] for a range)."""
    if isinstance(dim, Fixed):
        return [dim.value]
    if isinstance(dim, Choices):
        return list(dim.values)
    return []


def _check_schedule_free(r: _Reader, space: SpaceSpec) -> None:
    """A schedule-free optimizer replaces the schedule: its space's only family is constant."""
    free = [o for o in _values_of(space.dims["optimizer"]) if o in SCHEDULE_FREE]
    if free and space.families() != ("constant",):
        raise r.fail(
            "[space] optimizer",
            f"{free[0]!r} replaces the schedule, but schedules = {list(space.families())}; "
            'set [space] schedules = "constant" (its warm-up is schedule_free_warmup)',
        )


def _check_warmup_fits(r: _Reader, space: SpaceSpec, epochs: int) -> None:
    """A warm-up of linear or wsd must end before the run does."""
    users = [f for f in ("linear", "wsd") if f in space.families()]
    dim = space.dims["warmup_epochs"]
    longest = dim.high if isinstance(dim, Range) else max(_values_of(dim), default=0.0)
    if users and longest >= epochs:
        raise r.fail(
            "[space] warmup_epochs",
            f"{longest!r} is not shorter than the run ([train] epochs = {epochs}) that "
            f"{' and '.join(users)} warm{'s' if len(users) == 1 else ''} up in; "
            f"keep it below {epochs}",
        )


def _check_baseline_natives(r: _Reader, where: str, values: Mapping[str, Any]) -> None:
    """Types of a baseline's step-based settings (decay_steps, boundaries, values, end_lr)."""
    if "decay_steps" in values:
        v = values["decay_steps"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise r.fail(f"{where} decay_steps", f"must be a number of steps > 0, got {v!r}")
    for key, kind in (("boundaries", int), ("values", (int, float))):
        if key in values:
            v = values[key]
            if not isinstance(v, list) or any(
                isinstance(x, bool) or not isinstance(x, kind) for x in v
            ):
                raise r.fail(f"{where} {key}", f"must be a list of numbers, got {v!r}")
    if "values" in values and not values["values"]:
        raise r.fail(f"{where} values", "must hold at least one rate")
    if "boundaries" in values and "values" not in values:
        raise r.fail(where, "boundaries need values (one more than boundaries)")
    if "end_lr" in values:
        v = values["end_lr"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise r.fail(f"{where} end_lr", f"must be a number >= 0, got {v!r}")


# steps per epoch of the schedule a baseline is checked with (the data's own is not known yet)
_NOMINAL_STEPS_PER_EPOCH = 1000


def _check_baseline_schedule(
    r: _Reader, where: str, values: Mapping[str, Any], epochs: int
) -> None:
    """Build the baseline's schedule once, so a bad setting is caught when the file is read."""
    from sweeper.schedules import from_dimensions

    try:
        from_dimensions(
            str(values["schedule"]),
            values,
            steps_per_epoch=_NOMINAL_STEPS_PER_EPOCH,
            epochs=epochs,
        )
    except ConfigError as exc:
        raise r.fail(where, str(exc)) from None


def _baselines(r: _Reader, raw: Mapping[str, Any], epochs: int) -> tuple[Baseline, ...]:
    items = raw.get("baselines", [])
    if not isinstance(items, list):
        raise r.fail("[[baselines]]", "must be an array of tables ([[baselines]])")
    out = []
    names: set[str] = set()
    for i, item in enumerate(items):
        where = f"[[baselines]] #{i + 1}"
        if not isinstance(item, dict):
            raise r.fail(where, f"must be a table, got {item!r}")
        r.known(item, where, ("name", "schedule", *DIMENSIONS, *BASELINE_NATIVE))
        values = dict(item)
        name = str(values.pop("name", f"baseline {i + 1}"))
        if name in names:
            raise r.fail(where, f"name {name!r} is used twice; give each baseline its own name")
        names.add(name)
        if "schedule" not in values:
            raise r.fail(where, f"needs a schedule family, one of {', '.join(FAMILIES)}")
        if "initial_lr" not in values and "values" not in values:
            raise r.fail(where, "needs initial_lr")
        _check_baseline_natives(r, where, values)
        for key, value in values.items():
            if key in BASELINE_NATIVE:
                continue
            _check_value(r, key if key != "schedule" else "schedules", value, f"{where} {key}")
        if "values" in values and "initial_lr" not in values:
            values["initial_lr"] = values["values"][0]
        if {"boundaries", "values"} & set(values) and values["schedule"] != "piecewise":
            raise r.fail(where, "boundaries/values only apply to schedule = 'piecewise'")
        if values.get("nesterov") and not values.get("momentum"):
            raise r.fail(where, "nesterov = true needs a momentum > 0")
        if values.get("optimizer") in SCHEDULE_FREE and values["schedule"] != "constant":
            raise r.fail(
                f"{where} optimizer",
                f"{values['optimizer']!r} replaces the schedule; give it schedule = 'constant', "
                f"not {values['schedule']!r}",
            )
        _check_baseline_schedule(r, where, values, epochs)
        out.append(Baseline(name, values))
    return tuple(out)


def _data(r: _Reader, raw: Mapping[str, Any], base: Path) -> DataSpec:
    table = r.table(raw, "data")
    keys = ("dataset", "path", "subset", "validation_fraction", "test_fraction", "seed")
    r.known(table, "[data]", keys)
    dataset = r.choice(table, "dataset", "[data]", "digits", DATASETS)
    path = table.get("path")
    if path is not None:
        if not isinstance(path, str) or not path:
            raise r.fail("[data] path", f"must be a path string, got {path!r}")
        # lexical normalisation: ".." is taken relative to the folder as written (which may be
        # a symlink such as studies/), not to its target
        expanded = Path(os.path.expandvars(path)).expanduser()
        resolved = Path(os.path.normpath(base / expanded))
        if not resolved.exists():
            raise r.fail(
                "[data] path",
                f"no such file or directory {str(resolved)!r}; fix the path, or leave it out "
                "to download the dataset through Keras",
            )
        path = str(resolved)
    subset = table.get("subset")
    try:
        return DataSpec(
            name=dataset,
            path=path,
            subset=subset,
            validation_fraction=table.get("validation_fraction", 0.2),
            test_fraction=table.get("test_fraction", 0.2),
            seed=table.get("seed", 0),
        )
    except DataError as exc:
        raise r.fail("[data]", str(exc)) from None


def _train(r: _Reader, raw: Mapping[str, Any], base: Path) -> TrainSettings:
    table = r.table(raw, "train")
    r.known(table, "[train]", ("model", "batch_size", "epochs", "jit_compile"))
    model = table.get("model", "mnist-cnn")
    try:
        check_model_name(model)
    except SweeperError as exc:
        raise r.fail("[train] model", str(exc)) from None
    jit = table.get("jit_compile", "auto")
    if not isinstance(jit, bool) and jit != "auto":
        raise r.fail("[train] jit_compile", f'must be "auto", true or false, got {jit!r}')
    return TrainSettings(
        model=model,
        batch_size=r.integer(table, "batch_size", "[train]", 64, 1, MAX_BATCH_SIZE),
        epochs=r.integer(table, "epochs", "[train]", 5, 1, MAX_EPOCHS),
        jit_compile=jit,
        model_dir=None if model in MODELS else str(base),
    )


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str], source: str) -> None:
    """Set each ``section.key=value`` of ``overrides`` in the raw study table ``raw``."""
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(
                f"override {item!r}: write it as section.key=value, e.g. train.epochs=1"
            )
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text  # a bare word: take it as a string
        node = raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} in {source} is not a table")
            node = child
        node[parts[-1]] = value


def parse_study(
    text: str,
    source: str = "<study>",
    *,
    base_dir: Path | None = None,
    default_name: str = "study",
    overrides: Iterable[str] = (),
) -> StudySpec:
    """Validate a study file's text (plus ``section.key=value`` overrides) into a StudySpec."""
    r = _Reader(source)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}; fix the syntax") from None
    overrides = list(overrides)
    apply_overrides(raw, overrides, source)
    r.known(raw, "top level", ("study", "data", "train", "space", "sampler", "pruner", "baselines"))

    study = r.table(raw, "study")
    r.known(
        study,
        "[study]",
        (
            "name",
            "seed",
            "n_trials",
            "budget_epochs",
            "metric",
            "max_failure_rate",
            "failure_window",
        ),
    )
    max_failure_rate = study.get("max_failure_rate", 0.5)
    if (
        isinstance(max_failure_rate, bool)
        or not isinstance(max_failure_rate, (int, float))
        or not 0 <= max_failure_rate <= 1
    ):
        raise r.fail("[study] max_failure_rate", f"must lie in [0, 1], got {max_failure_rate!r}")
    name = study.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise r.fail("[study] name", f"must be a non-empty string, got {name!r}")
    try:
        name = check_study_name(name, "the name")
    except ConfigError as exc:
        raise r.fail("[study] name", str(exc)) from None
    metric = r.choice(study, "metric", "[study]", "val_accuracy", ("val_accuracy",))
    seed = r.integer(study, "seed", "[study]", 0, 0)

    sampler_t = r.table(raw, "sampler")
    r.known(sampler_t, "[sampler]", ("type", "n_startup_trials"))
    sampler = SamplerSpec(
        kind=r.choice(sampler_t, "type", "[sampler]", "tpe", SAMPLERS),
        n_startup_trials=r.integer(sampler_t, "n_startup_trials", "[sampler]", 10, 0),
    )
    pruner_t = r.table(raw, "pruner")
    r.known(
        pruner_t,
        "[pruner]",
        (
            "type",
            "n_startup_trials",
            "n_warmup_steps",
            "min_resource",
            "reduction_factor",
            "stall_factor",
        ),
    )
    stall_factor = pruner_t.get("stall_factor", 1.5)
    if (
        isinstance(stall_factor, bool)
        or not isinstance(stall_factor, (int, float))
        or not 0 <= stall_factor <= 10
    ):
        raise r.fail(
            "[pruner] stall_factor",
            f"must lie in [0, 10] (times chance accuracy; 0 = off), got {stall_factor!r}",
        )
    pruner = PrunerSpec(
        kind=r.choice(pruner_t, "type", "[pruner]", "asha", PRUNERS),
        n_startup_trials=r.integer(pruner_t, "n_startup_trials", "[pruner]", 4, 0),
        n_warmup_steps=r.integer(pruner_t, "n_warmup_steps", "[pruner]", 1, 0),
        min_resource=r.integer(pruner_t, "min_resource", "[pruner]", 1, 1),
        reduction_factor=r.integer(pruner_t, "reduction_factor", "[pruner]", 3, 2),
        stall_factor=float(stall_factor),
    )
    space = _space(r, raw)
    if sampler.kind == "grid":
        searched = [
            n for n, d in space.dims.items() if space.used(n) and isinstance(d, (Range, Auto))
        ]
        if searched:
            raise r.fail(
                "[sampler] type",
                f"'grid' needs a list of choices for every searched dimension; "
                f"{', '.join(searched)} {'is a range' if len(searched) == 1 else 'are ranges'}",
            )
    if sampler.kind in SAMPLER_NEEDS:
        module, how = SAMPLER_NEEDS[sampler.kind]
        if importlib.util.find_spec(module) is None:
            raise r.fail(
                "[sampler] type", f"{sampler.kind!r} needs {how}, or choose another sampler"
            )
    _check_schedule_free(r, space)
    data = _data(r, raw, base_dir or Path.cwd())
    train = _train(r, raw, base_dir or Path.cwd())
    _check_warmup_fits(r, space, train.epochs)
    return StudySpec(
        name=name.strip(),
        source=source,
        text=text,
        data=data,
        train=train,
        space=space,
        sampler=sampler,
        pruner=pruner,
        baselines=_baselines(r, raw, train.epochs),
        seed=seed,
        n_trials=r.integer(study, "n_trials", "[study]", 20, 1, MAX_TRIALS),
        budget_epochs=(
            r.integer(study, "budget_epochs", "[study]", 1, 1, MAX_TRIALS)
            if "budget_epochs" in study
            else None
        ),
        metric=metric,
        overrides=tuple(overrides),
        max_failure_rate=float(max_failure_rate),
        failure_window=r.integer(study, "failure_window", "[study]", 10, 1),
    )


def shipped_study_files() -> list[Path]:
    """The study files that ship with sweeper (``studies/*.toml``), by name."""
    return sorted(STUDIES_DIR.glob("*.toml"))


def find_study_file(path: str | Path | None) -> Path:
    """The study file ``path`` names: a file on disk, else a shipped study of that name.

    ``None`` is the embedded default; ``mnist``, ``mnist.toml`` and ``studies/mnist.toml`` name the
    shipped ``mnist.toml`` wherever sweeper is installed, unless such a file exists here (any
    other missing path is an error, not a shipped study).
    """
    if path is None:
        return DEFAULT_STUDY
    file = Path(path).expanduser()
    if file.is_file():
        return file
    name = file.name if file.suffix == ".toml" else f"{file.name}.toml"
    shipped = STUDIES_DIR / name
    by_name = file.parent == Path(".") or file.parent.name == "studies"
    if by_name and file.name and not file.exists() and shipped.is_file():
        return shipped
    if file.is_dir():
        raise ConfigError(f"{file}: is a folder, not a study file; give a .toml file")
    names = ", ".join(f.stem for f in shipped_study_files())
    raise ConfigError(
        f"{file}: no such study file; give a path to a .toml file, the name of a shipped study "
        f"({names}; `sweeper studies` lists them), or no argument for the embedded default"
    )


def load_study_file(path: str | Path | None = None, overrides: Iterable[str] = ()) -> StudySpec:
    """Read and validate a study file; ``None`` gives the embedded default (digits).

    A name that is not a file on disk is looked up among the shipped studies (:func:`find_study_file`).
    """
    file = find_study_file(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such study file; give a path to a .toml file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the study file ({exc})") from None
    return parse_study(
        text,
        str(file),
        base_dir=file.resolve().parent,
        default_name=file.stem,
        overrides=overrides,
    )


def study_from_text(
    text: str, source: str = "<stored>", overrides: Iterable[str] = ()
) -> StudySpec:
    """Rebuild a spec from the text kept in the store (workers without a local file)."""
    return parse_study(text, source, default_name="study", overrides=overrides)
