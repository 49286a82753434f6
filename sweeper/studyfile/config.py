"""Study files: TOML read with ``tomllib``, validated into typed dataclasses.

Every error names the file, the key, the value and the fix, in one line, and is raised before
anything touches a store. See the README's "Study file reference" for the format.

The dimensions of the space live in :mod:`sweeper.studyfile.dimensions`, the spec dataclasses in
:mod:`sweeper.studyfile.study_spec`, the ``[space]`` section's checks in :mod:`sweeper.studyfile.space_section` and
the file walker in :mod:`sweeper.studyfile.study_reader`; this module reads the other sections, applies
overrides and finds study files.
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sweeper.errors import ConfigError, DataError, SweeperError, did_you_mean
from sweeper.studyfile.dimensions import (
    DIMENSIONS,
    MAX_RATE,
    Auto,
    Range,
)
from sweeper.studyfile.names import check_study_name
from sweeper.studyfile.settings import (
    SAMPLER_KINDS,
    SECTION_KEYS,
    SETTINGS,
    TOP_LEVEL_KEYS,
    default,
)
from sweeper.studyfile.space_section import (
    check_schedule_free,
    check_value,
    check_warmup_fits,
    read_space,
)
from sweeper.studyfile.study_reader import Reader
from sweeper.studyfile.study_spec import Baseline, PrunerSpec, SamplerSpec, SpaceSpec, StudySpec
from sweeper.training.data import DataSpec
from sweeper.training.models import MODELS, check_model_name
from sweeper.training.optimizers import SCHEDULE_FREE
from sweeper.training.schedules import FAMILIES
from sweeper.training.train_trial import TrainSettings

STUDIES_DIR = (
    Path(__file__).resolve().parents[1] / "studies"
)  # sweeper/studies: a link to the top-level studies/
DEFAULT_STUDY = STUDIES_DIR / "digits.toml"


# Keys a baseline may use besides dimensions: the tutorials' settings in steps.
BASELINE_NATIVE = ("decay_steps", "boundaries", "values", "end_lr")


def _check_baseline_natives(r: Reader, where: str, values: Mapping[str, Any]) -> None:
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
    if "values" in values and not all(0 <= x <= MAX_RATE for x in values["values"]):
        raise r.fail(
            f"{where} values",
            f"rates must lie in [0, {MAX_RATE:g}], got {values['values']!r}",
        )
    if "boundaries" in values and "values" not in values:
        raise r.fail(where, "boundaries need values (one more than boundaries)")
    if "end_lr" in values:
        v = values["end_lr"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= MAX_RATE:
            raise r.fail(f"{where} end_lr", f"must be a rate in [0, {MAX_RATE:g}], got {v!r}")


# steps per epoch of the schedule a baseline is checked with (the data's own is not known yet)
_NOMINAL_STEPS_PER_EPOCH = 1000


def _check_baseline_schedule(r: Reader, where: str, values: Mapping[str, Any], epochs: int) -> None:
    """Build the baseline's schedule once, so a bad setting is caught when the file is read."""
    from sweeper.training.schedules import from_dimensions

    try:
        from_dimensions(
            str(values["schedule"]),
            values,
            steps_per_epoch=_NOMINAL_STEPS_PER_EPOCH,
            epochs=epochs,
        )
    except ConfigError as exc:
        raise r.fail(where, str(exc)) from None


def _baselines(r: Reader, raw: Mapping[str, Any], epochs: int) -> tuple[Baseline, ...]:
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
            check_value(r, key if key != "schedule" else "schedules", value, f"{where} {key}")
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


def _data(r: Reader, raw: Mapping[str, Any], base: Path) -> DataSpec:
    table = r.table(raw, "data")
    r.known(table, "[data]", SECTION_KEYS["data"])
    dataset = SETTINGS["data.dataset"].read(r, table)
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
            validation_fraction=table.get(
                "validation_fraction", default("data", "validation_fraction")
            ),
            test_fraction=table.get("test_fraction", default("data", "test_fraction")),
            seed=table.get("seed", default("data", "seed")),
        )
    except DataError as exc:
        raise r.fail("[data]", str(exc)) from None


def _train(r: Reader, raw: Mapping[str, Any], base: Path) -> TrainSettings:
    table = r.table(raw, "train")
    r.known(table, "[train]", SECTION_KEYS["train"])
    model = table.get("model", default("train", "model"))
    try:
        check_model_name(model)
    except SweeperError as exc:
        raise r.fail("[train] model", str(exc)) from None
    jit = table.get("jit_compile", default("train", "jit_compile"))
    if not isinstance(jit, bool) and jit != "auto":
        raise r.fail("[train] jit_compile", f'must be "auto", true or false, got {jit!r}')
    return TrainSettings(
        model=model,
        batch_size=SETTINGS["train.batch_size"].read(r, table),
        epochs=SETTINGS["train.epochs"].read(r, table),
        jit_compile=jit,
        model_dir=None if model in MODELS else str(base),
        pack=SETTINGS["train.pack"].read(r, table),
    )


def _check_override_path(item: str, parts: list[str], source: str) -> None:
    """An override's ``section.key`` is one of the study file's (:data:`SECTION_KEYS`); the
    error blames ``--set`` and says what was probably meant."""
    places: dict[str, list[str]] = {}  # key -> the section.key paths that have it
    for name, keys in SECTION_KEYS.items():
        for key in keys:
            places.setdefault(key, []).append(f"{name}.{key}")
    anywhere = {k: " or ".join(v) for k, v in places.items()}
    section, keys = parts[0], SECTION_KEYS.get(parts[0], ())
    if section not in TOP_LEVEL_KEYS:
        rest = ".".join(parts[1:])
        if rest:
            hint = did_you_mean(section, SECTION_KEYS, lambda s: f"{s}.{rest}")
        else:
            hint = did_you_mean(section, anywhere, anywhere.__getitem__)
        raise ConfigError(
            f"--set {item}: unknown key {section!r} at the top level of {source}; "
            + (hint or "write section.key=value, e.g. train.epochs=1")
        )
    if len(parts) > 1 and keys and parts[1] not in keys:
        hint = (
            f"did you mean {anywhere[parts[1]]}?"
            if parts[1] in anywhere
            else did_you_mean(parts[1], keys, lambda k: f"{section}.{k}")
        )
        raise ConfigError(
            f"--set {item}: unknown key {parts[1]!r} in [{section}] of {source}; "
            f"{hint + ' ' if hint else ''}known keys: {', '.join(sorted(keys))}"
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
        _check_override_path(item, parts, source)
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


def _study_head(
    r: Reader, study: Mapping[str, Any], default_name: str
) -> tuple[str, str, int, float]:
    """The ``[study]`` keys checked first: its name (not stripped yet), metric, seed and
    max_failure_rate."""
    r.known(study, "[study]", SECTION_KEYS["study"])
    max_failure_rate = SETTINGS["study.max_failure_rate"].read(r, study)
    name = study.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise r.fail("[study] name", f"must be a non-empty string, got {name!r}")
    try:
        name = check_study_name(name, "the name")
    except ConfigError as exc:
        raise r.fail("[study] name", str(exc)) from None
    metric = SETTINGS["study.metric"].read(r, study)
    seed = SETTINGS["study.seed"].read(r, study)
    return name, metric, seed, max_failure_rate


def _artifacts(r: Reader, study: Mapping[str, Any]) -> str | None:
    """``[study] artifacts``: the URL of the shared checkpoint store, checked for form here
    (whether it can be reached is checked when a run starts)."""
    from sweeper.training.shared_checkpoints import parse_url

    url = study.get("artifacts")
    if url is None:
        return None
    if not isinstance(url, str) or not url.strip():
        raise r.fail("[study] artifacts", f"must be a file:// or s3:// URL, got {url!r}")
    try:
        return parse_url(url, "").url
    except ConfigError as exc:
        raise r.fail("[study] artifacts", str(exc).lstrip()) from None


def _sampler(r: Reader, raw: Mapping[str, Any]) -> SamplerSpec:
    sampler_t = r.table(raw, "sampler")
    r.known(sampler_t, "[sampler]", SECTION_KEYS["sampler"])
    reference = sampler_t.get("reference", default("sampler", "reference"))
    if not isinstance(reference, str) or not reference.strip():
        raise r.fail(
            "[sampler] reference",
            f'must be a schedule family of [space] schedules or "none", got {reference!r}',
        )
    return SamplerSpec(
        kind=SETTINGS["sampler.type"].read(r, sampler_t),
        n_startup_trials=SETTINGS["sampler.n_startup_trials"].read(r, sampler_t),
        reference=reference.strip(),
        reference_given="reference" in sampler_t,
    )


def _pruner(r: Reader, raw: Mapping[str, Any]) -> PrunerSpec:
    pruner_t = r.table(raw, "pruner")
    r.known(pruner_t, "[pruner]", SECTION_KEYS["pruner"])
    stall_factor = SETTINGS["pruner.stall_factor"].read(r, pruner_t)
    kind = SETTINGS["pruner.type"].read(r, pruner_t)
    brackets = SETTINGS["pruner.brackets"].read(r, pruner_t)
    if brackets > 1 and kind != "asha":
        raise r.fail("[pruner] brackets", f'only type = "asha" has brackets (type = {kind!r} here)')
    compare = SETTINGS["pruner.compare"].read(r, pruner_t)
    if compare != default("pruner", "compare") and kind != "asha":
        raise r.fail(
            "[pruner] compare", f'only type = "asha" compares at rungs (type = {kind!r} here)'
        )
    return PrunerSpec(
        kind=kind,
        n_startup_trials=SETTINGS["pruner.n_startup_trials"].read(r, pruner_t),
        n_warmup_steps=SETTINGS["pruner.n_warmup_steps"].read(r, pruner_t),
        min_resource=SETTINGS["pruner.min_resource"].read(r, pruner_t),
        reduction_factor=SETTINGS["pruner.reduction_factor"].read(r, pruner_t),
        stall_factor=stall_factor,
        brackets=brackets,
        compare=compare,
    )


def _check_sampler_fits(r: Reader, sampler: SamplerSpec, space: SpaceSpec) -> None:
    """A grid needs choices for every searched dimension; gp and cmaes need their package."""
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
    ref = sampler.reference
    if sampler.reference_given and ref != "none" and ref not in space.families():
        raise r.fail(
            "[sampler] reference",
            f"{ref!r} is not in [space] schedules ({', '.join(space.families())}); name one of "
            'them, or "none"',
        )
    if sampler.reference_given and ref != "none" and sampler.kind == "grid":
        raise r.fail("[sampler] reference", 'a grid tries every point: set it to "none"')
    needs = next(k.needs for k in SAMPLER_KINDS if k.name == sampler.kind)
    if needs is not None:
        module, how = needs
        if importlib.util.find_spec(module) is None:
            raise r.fail(
                "[sampler] type", f"{sampler.kind!r} needs {how}, or choose another sampler"
            )


def parse_study(
    text: str,
    source: str = "<study>",
    *,
    base_dir: Path | None = None,
    default_name: str = "study",
    overrides: Iterable[str] = (),
) -> StudySpec:
    """Validate a study file's text (plus ``section.key=value`` overrides) into a StudySpec."""
    r = Reader(source)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}; fix the syntax") from None
    overrides = list(overrides)
    apply_overrides(raw, overrides, source)
    r.known(raw, "top level", TOP_LEVEL_KEYS)

    study = r.table(raw, "study")
    name, metric, seed, max_failure_rate = _study_head(r, study, default_name)
    sampler = _sampler(r, raw)
    pruner = _pruner(r, raw)
    space = read_space(r, raw)
    _check_sampler_fits(r, sampler, space)
    check_schedule_free(r, space)
    data = _data(r, raw, base_dir or Path.cwd())
    train = _train(r, raw, base_dir or Path.cwd())
    check_warmup_fits(r, space, train.epochs)
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
        n_trials=SETTINGS["study.n_trials"].read(r, study),
        budget_epochs=SETTINGS["study.budget_epochs"].read(r, study),
        metric=metric,
        overrides=tuple(overrides),
        max_failure_rate=max_failure_rate,
        failure_window=SETTINGS["study.failure_window"].read(r, study),
        artifacts=_artifacts(r, study),
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
