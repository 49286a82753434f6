"""The keywords of the Python API (:class:`sweeper.api.study.Study`) as study-file settings.

Each keyword is one setting of a study file (``section.key``); :func:`assignments` turns the
keywords given into (``section.key``, value) pairs in the file's order and :func:`nested` into
the sections ``tomllib`` would read. A model function is named by its import path
(``module:function``) when it has one, else ``__in_process__:NAME`` (:func:`model_ref`).
A keyword the API does not take is one line naming the closest one (:func:`keywords_checked`).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypedDict, TypeVar

from sweeper.api.data import data_settings
from sweeper.api.study_text import plain
from sweeper.errors import ConfigError, KeywordError, did_you_mean
from sweeper.studyfile.dimensions import Auto, Choices, Fixed, Range
from sweeper.studyfile.settings import API_KEYWORDS, SECTION_KEYS
from sweeper.training.models import IN_PROCESS_MODULE, MODELS, ModelFunction

P = ParamSpec("P")
R = TypeVar("R")

Model = str | Callable[[tuple[int, ...], int], Any]
"""A built-in model name (``"mnist-cnn"``), ``"module:function"``, or the function itself."""


Data = str | os.PathLike[str] | tuple[Any, Any] | Mapping[str, Any] | Any
"""A dataset name, an ``.npz`` path, ``(x, y)``, ``((x, y), (x_test, y_test))``, a mapping, or a
``keras.utils.PyDataset`` of ``(images, labels)`` batches (or a pair: training, test)."""


# keyword -> (section, key) of the study file, in the order of the study file reference
SETTINGS: dict[str, tuple[str, str]] = {kw: (s.section, s.key) for kw, s in API_KEYWORDS.items()}


# other tools' names for a keyword: name -> (sweeper's keyword, whose name it is, what it means)
FOREIGN_KEYWORDS = {
    "max_trials": (
        "n_trials",
        "KerasTuner's name",
        "the study runs until it holds N finished trials",
    ),
}


def unknown_keyword(where: str, keyword: str, known: Sequence[str]) -> KeywordError:
    """The one-line error for ``keyword`` given to ``where`` (``"tune()"``), which takes
    ``known``: the keyword meant, when another tool's name or a close spelling tells it."""
    if keyword in FOREIGN_KEYWORDS and FOREIGN_KEYWORDS[keyword][0] in known:
        ours, whose, meaning = FOREIGN_KEYWORDS[keyword]
        return KeywordError(
            f"{where} takes no keyword {keyword!r} ({whose}); use {ours}=N: {meaning}"
        )
    hint = did_you_mean(keyword, known)
    return KeywordError(
        f"{where} takes no keyword {keyword!r}; "
        + (hint if hint else f"its keywords: {', '.join(known)}")
    )


def keywords_checked(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` refusing a keyword it does not take with :func:`unknown_keyword`'s line (a
    :class:`~sweeper.errors.KeywordError`, a ``TypeError`` too) instead of Python's."""
    params = inspect.signature(fn).parameters
    known = [
        name
        for name, p in params.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self"
    ]
    where = f"{fn.__qualname__.removesuffix('.__init__')}()"

    @functools.wraps(fn)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        for keyword in kwargs:
            if keyword not in params:
                raise unknown_keyword(where, keyword, known)
        return fn(*args, **kwargs)

    return checked


def check_section_keys(section: str, value: Mapping[str, Any]) -> None:
    """The keys of a ``space``, ``sampler`` or ``pruner`` mapping are that section's keys."""
    known = SECTION_KEYS[section]
    for key in value:
        if key not in known:
            hint = did_you_mean(key, known)
            raise ConfigError(
                f"{section}: unknown key {key!r}; {hint + ' ' if hint else ''}known keys: "
                f"{', '.join(sorted(known))}"
            )


class StudySettings(TypedDict, total=False):
    """The keywords of :class:`Study` (and of :meth:`Study.from_file`, where each one given
    replaces that setting of the file, as ``sweeper tune --set`` does)."""

    model: Model
    data: Data
    name: str
    n_trials: int
    budget_epochs: int
    seed: int
    metric: str
    max_failure_rate: float
    failure_window: int
    data_path: str | os.PathLike[str]
    subset: int
    validation_fraction: float
    test_fraction: float
    data_seed: int
    batch_size: int
    epochs: int
    jit_compile: bool | str
    pack: int
    space: Mapping[str, Any]
    sampler: str | Mapping[str, Any]
    pruner: str | Mapping[str, Any]
    baselines: Sequence[Mapping[str, Any]]
    data_dir: str | os.PathLike[str]


@dataclass(frozen=True)
class ModelRef:
    name: str  # as the study file names it
    fn: ModelFunction | None  # the function given, called in this process
    why_local: str | None  # why it cannot be imported by name (None: it can)

    def refuse(self, who: str) -> ConfigError:
        label = self.name.partition(":")[2]
        return ConfigError(
            f"model function {label!r} is {self.why_local}, so {who} cannot import it; put it "
            f"in a module (e.g. mymodels.py beside the notebook), import it from there and pass "
            f"that function, or model='mymodels:{label}'"
        )


def _import_path(fn: Any) -> str | None:
    """``module:function`` that imports ``fn`` itself, if there is one."""
    import importlib

    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or module == "__main__" or not qualname or not qualname.isidentifier():
        return None
    try:
        found = getattr(importlib.import_module(module), qualname, None)
    except Exception:
        return None
    return f"{module}:{qualname}" if found is fn else None


def model_ref(model: Model) -> ModelRef:
    if isinstance(model, str):
        from sweeper.training.models import check_model_name

        check_model_name(model)
        return ModelRef(model, None, None)
    if not callable(model):
        raise ConfigError(
            f"model must be a model name ({', '.join(MODELS)}), 'module:function' or a function "
            f"(input_shape, num_classes) -> keras.Model, got {type(model).__name__}"
        )
    path = _import_path(model)
    if path is not None:
        return ModelRef(path, model, None)
    label = getattr(model, "__name__", "")
    label = label if label.isidentifier() else "model"
    qualname = getattr(model, "__qualname__", "") or ""
    if getattr(model, "__module__", None) == "__main__":
        why = "defined in a notebook or a script"
    elif "<locals>" in qualname:
        why = "defined inside a function"
    else:
        why = "not importable by name"
    return ModelRef(f"{IN_PROCESS_MODULE}:{label}", model, why)


def _dimension(value: Any) -> Any:
    """A ``[space]`` value from its Python form: ``(low, high[, "log"][, "int"])`` is a range,
    a list the choices, a dict as in a study file, a config dimension, or one pinned value."""
    if isinstance(value, Range):
        return {"low": value.low, "high": value.high, "log": value.log, "int": value.integer}
    if isinstance(value, Choices):
        return list(value.values)
    if isinstance(value, Fixed):
        return value.value
    if isinstance(value, Auto):
        if value.within is None:
            return "auto"
        w = value.within
        return {"low": w.low, "high": w.high, "log": True, "range_test": True}
    value = plain(value) if not isinstance(value, tuple) else value
    if isinstance(value, tuple):
        numbers = [v for v in value[:2] if isinstance(plain(v), int | float)]
        if len(value) >= 2 and len(numbers) == 2 and not any(isinstance(v, bool) for v in numbers):
            flags = [plain(v) for v in value[2:]]
            unknown = [f for f in flags if f not in ("log", "int")]
            if unknown:
                raise ConfigError(
                    f"space: range {value!r}: unknown flag {unknown[0]!r}; write "
                    '(low, high), (low, high, "log") or (low, high, "int")'
                )
            out: dict[str, Any] = {"low": plain(value[0]), "high": plain(value[1])}
            if "log" in flags:
                out["log"] = True
            if "int" in flags:
                out["int"] = True
            return out
        return plain(value)
    return value


def _section(value: str | Mapping[str, Any], what: str) -> dict[str, Any]:
    if isinstance(value, str):
        return {"type": value}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    raise ConfigError(f"{what} must be a type name or a mapping of its settings, got {value!r}")


def assignments(
    model: ModelRef | None, data: Any, settings: Mapping[str, Any], data_dir: Any
) -> list[tuple[str, Any]]:
    """The study-file settings the keywords make, as (``section.key``, value) in file order."""
    known = ["model", "data", *SETTINGS, "space", "sampler", "pruner", "baselines", "data_dir"]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise unknown_keyword("Study.from_file()", unknown[0], known)
    out: list[tuple[str, Any]] = []
    for keyword, (section, key) in SETTINGS.items():
        if section == "data" and key == "path":
            out.extend(data_settings(data, settings.get("data_path"), data_dir))
        if section == "train" and key == "batch_size" and model is not None:
            out.append(("train.model", model.name))
        value = settings.get(keyword)
        if value is not None and keyword != "data_path":
            out.append((f"{section}.{key}", plain(value)))
    space = settings.get("space")
    if space is not None:
        if not isinstance(space, Mapping):
            raise ConfigError(f"space must be a mapping of dimensions, got {space!r}")
        check_section_keys("space", space)
        out.extend((f"space.{k}", _dimension(v)) for k, v in space.items())
    for section in ("sampler", "pruner"):
        value = settings.get(section)
        if value is not None:
            table = _section(value, section)
            check_section_keys(section, table)
            out.extend((f"{section}.{k}", v) for k, v in table.items())
    baselines = settings.get("baselines")
    if baselines is not None:
        if isinstance(baselines, Mapping | str) or not all(
            isinstance(b, Mapping) for b in baselines
        ):
            raise ConfigError("baselines must be a list of mappings, one per [[baselines]] table")
        out.append(("baselines", [plain(b) for b in baselines]))
    return out


def nested(pairs: Sequence[tuple[str, Any]], raw: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = raw if raw is not None else {}
    for dotted, value in pairs:
        if dotted == "baselines":
            raw["baselines"] = value
            continue
        section, _, key = dotted.partition(".")
        table = raw.get(section)
        if not isinstance(table, dict):
            table = raw[section] = {}
        table[key] = value
    return raw
