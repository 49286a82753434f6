"""The Python API: tune a learning-rate schedule from a notebook or a script.

A :class:`Study` is a study file in Python: built from keywords (``Study(model, data, ...)``,
one keyword for every setting of the study file) or read from a file (``Study.from_file``), it
holds the validated :class:`~sweeper.config.StudySpec` and the TOML text that identifies it
(``to_toml()``). ``Study.tune`` and :func:`tune` run it through :func:`sweeper.study.tune`, the
function behind ``sweeper tune``: the same store, resume, baselines, pruning, budgets and
workers. A second call with the same arguments resumes the study and runs only what is missing.

In-memory data: NumPy arrays are written once to an ``.npz`` file named by their content (under
``data_dir``, by default ``~/.cache/sweeper/data``) and the study's ``[data]`` points at it with
``dataset = "npz"``, so they are split exactly as a file would be and the study's hash names the
data. A model function is named in the study by its import path (``module:function``) when it
has one; a function of a notebook or a script has none, so it is named
``__in_process__:NAME`` and built by calling the function itself, in this process only: several
workers, or a study file for later, need the function in a module.

Keras is imported only when a study trains; reading results (``trials``, ``plot``, ``report``,
``importance``) never imports it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import numpy as np

from sweeper.config import (
    Auto,
    Choices,
    Fixed,
    Range,
    StudySpec,
    apply_overrides,
    load_study_file,
    parse_study,
)
from sweeper.data import DATASETS, load_dataset
from sweeper.errors import ConfigError, DataError, StudyChangedError, SweeperError
from sweeper.models import IN_PROCESS_MODULE, MODELS, ModelFunction, in_process_model
from sweeper.progress import (
    Progress,
    ProgressLines,
    in_notebook,
    reporting,
    summary_lines,
    value_text,
)

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

    from sweeper.analysis import ImportanceReport, StudyData
    from sweeper.evaluate import EvalRun, Evaluation
    from sweeper.lrfind import LrFindResult
    from sweeper.study import TuneSummary

__all__ = [
    "Best",
    "Study",
    "StudySettings",
    "TuneInterrupted",
    "TuneResult",
    "WorkerRun",
    "default_data_dir",
    "join",
    "load",
    "same_definition",
    "tune",
]

Model = str | Callable[[tuple[int, ...], int], Any]
"""A built-in model name (``"mnist-cnn"``), ``"module:function"``, or the function itself."""
Data = str | os.PathLike[str] | tuple[Any, Any] | Mapping[str, Any] | Any
"""A dataset name, an ``.npz`` path, ``(x, y)``, ``((x, y), (x_test, y_test))``, a mapping, or a
``keras.utils.PyDataset`` of ``(images, labels)`` batches (or a pair: training, test)."""

SOURCE = "<sweeper.Study>"  # the source of a study built from keywords, as the store keeps it
DATA_DIR_ENV = "SWEEPER_DATA_DIR"
INTERRUPTED = (
    "interrupted: call it again with the same arguments to resume; the stopped trial runs again"
)

# keyword -> (section, key) of the study file, in the order of the study file reference
SETTINGS: dict[str, tuple[str, str]] = {
    "name": ("study", "name"),
    "n_trials": ("study", "n_trials"),
    "budget_epochs": ("study", "budget_epochs"),
    "seed": ("study", "seed"),
    "metric": ("study", "metric"),
    "max_failure_rate": ("study", "max_failure_rate"),
    "failure_window": ("study", "failure_window"),
    "data_path": ("data", "path"),
    "subset": ("data", "subset"),
    "validation_fraction": ("data", "validation_fraction"),
    "test_fraction": ("data", "test_fraction"),
    "data_seed": ("data", "seed"),
    "batch_size": ("train", "batch_size"),
    "epochs": ("train", "epochs"),
    "jit_compile": ("train", "jit_compile"),
}
SECTIONS = ("study", "data", "train", "space", "sampler", "pruner")


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
    space: Mapping[str, Any]
    sampler: str | Mapping[str, Any]
    pruner: str | Mapping[str, Any]
    baselines: Sequence[Mapping[str, Any]]
    data_dir: str | os.PathLike[str]


# --------------------------------------------------------------------------------------------
# TOML text
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays, tuples and paths as plain TOML-able Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def toml_value(value: Any) -> str:
    """``value`` as a TOML value: string, bool, number, array or inline table."""
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"{value!r} ({type(value).__name__}) cannot be written in a study file")


def _key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if bare else json.dumps(key)


def render(raw: Mapping[str, Any]) -> str:
    """A study file's text for ``raw``, its sections as ``tomllib`` reads them."""
    lines: list[str] = []
    for section in SECTIONS:
        table = raw.get(section) or {}
        if table:
            lines.append(f"[{section}]")
            lines.extend(f"{_key(k)} = {toml_value(v)}" for k, v in table.items())
            lines.append("")
    for baseline in raw.get("baselines") or ():
        lines.append("[[baselines]]")
        lines.extend(f"{_key(k)} = {toml_value(v)}" for k, v in baseline.items())
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Keywords -> study-file settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ModelRef:
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


def _model_ref(model: Model) -> _ModelRef:
    if isinstance(model, str):
        from sweeper.models import check_model_name

        check_model_name(model)
        return _ModelRef(model, None, None)
    if not callable(model):
        raise ConfigError(
            f"model must be a model name ({', '.join(MODELS)}), 'module:function' or a function "
            f"(input_shape, num_classes) -> keras.Model, got {type(model).__name__}"
        )
    path = _import_path(model)
    if path is not None:
        return _ModelRef(path, model, None)
    label = getattr(model, "__name__", "")
    label = label if label.isidentifier() else "model"
    qualname = getattr(model, "__qualname__", "") or ""
    if getattr(model, "__module__", None) == "__main__":
        why = "defined in a notebook or a script"
    elif "<locals>" in qualname:
        why = "defined inside a function"
    else:
        why = "not importable by name"
    return _ModelRef(f"{IN_PROCESS_MODULE}:{label}", model, why)


def default_data_dir() -> Path:
    """Where in-memory arrays are written: ``$SWEEPER_DATA_DIR``, else
    ``$XDG_CACHE_HOME/sweeper/data`` (``~/.cache/sweeper/data``)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "sweeper" / "data"


def _as_array(value: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise DataError(f"data: {what} is not an array ({type(exc).__name__}: {exc})") from None
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"data: {what} has dtype {array.dtype}; give numeric NumPy arrays (images uint8 or "
            "floats in [0, 1], labels integer class indices)"
        )
    return array


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2


def _is_pydataset(value: Any) -> bool:
    """Whether ``value`` is a ``keras.utils.PyDataset`` (told without importing Keras)."""
    return any(
        c.__name__ == "PyDataset" and c.__module__.split(".")[0] == "keras"
        for c in type(value).__mro__
    )


def _read_pydataset(dataset: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """All the batches of a finite PyDataset, joined into one (images, labels) pair."""
    try:
        n = dataset.num_batches
    except NotImplementedError:
        n = None
    if n is None:
        raise DataError(
            f"data: the {what} PyDataset is infinite (num_batches is None); give one with a "
            "number of batches, or the arrays"
        )
    xs, ys = [], []
    for i in range(int(n)):
        batch = dataset[i]
        if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
            raise DataError(
                f"data: batch {i} of the {what} PyDataset is a {type(batch).__name__}; "
                "sweeper needs (images, labels) batches"
            )
        xs.append(_as_array(batch[0], f"the images of batch {i} of the {what} PyDataset"))
        ys.append(_as_array(batch[1], f"the labels of batch {i} of the {what} PyDataset"))
    if not xs:
        raise DataError(f"data: the {what} PyDataset has no batches")
    try:
        return np.concatenate(xs), np.concatenate(ys)
    except ValueError as exc:
        raise DataError(
            f"data: the batches of the {what} PyDataset differ in shape ({exc})"
        ) from None


def _xy(value: Any, what: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x, y)`` of a pair of arrays or of a PyDataset; None for anything else."""
    if _is_pydataset(value):
        return _read_pydataset(value, what)
    if _is_pair(value):
        return value[0], value[1]
    return None


def _arrays(data: Any) -> dict[str, np.ndarray] | None:
    """The arrays of in-memory ``data`` by their ``.npz`` keys; None when it names a dataset.

    A ``keras.utils.PyDataset`` (of ``(images, labels)`` batches) is read once into arrays, so
    that resumed runs and other workers train on exactly the same examples.
    """
    if isinstance(data, str | os.PathLike):
        return None
    if _is_pydataset(data):
        x, y = _read_pydataset(data, "training")
        return {"x": _as_array(x, "x"), "y": _as_array(y, "y")}
    if isinstance(data, Mapping):
        keys = set(data)
        if keys not in ({"x", "y"}, {"x_train", "y_train", "x_test", "y_test"}):
            raise DataError(
                f"data: a mapping needs the keys x and y, or x_train, y_train, x_test and "
                f"y_test; got {sorted(map(str, keys))}"
            )
        return {k: _as_array(data[k], k) for k in sorted(keys)}
    if _is_pair(data):
        first, second = data
        if (_is_pair(first) or _is_pydataset(first)) and (
            _is_pair(second) or _is_pydataset(second)
        ):
            train, test = _xy(first, "training"), _xy(second, "test")
            assert train is not None and test is not None
            names = ("x_train", "y_train", "x_test", "y_test")
            return {n: _as_array(v, n) for n, v in zip(names, (*train, *test), strict=True)}
        return {"x": _as_array(first, "x"), "y": _as_array(second, "y")}
    raise DataError(
        f"data must be a dataset name ({', '.join(DATASETS)}), an .npz path, (x, y), "
        f"((x, y), (x_test, y_test)), a keras.utils.PyDataset, a pair of them, or a mapping "
        f"of arrays; got {type(data).__name__}"
    )


def _has_arrays(data: Any) -> bool:
    return data is not None and not isinstance(data, str | os.PathLike)


def _write_npz(arrays: Mapping[str, np.ndarray], folder: Path) -> Path:
    """Write ``arrays`` once to ``folder/arrays-<content hash>.npz``; its path."""
    digest = hashlib.sha256()
    contiguous = {k: np.ascontiguousarray(v) for k, v in sorted(arrays.items())}
    for key, array in contiguous.items():
        digest.update(f"{key}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.data.cast("B"))
    path = folder.expanduser().resolve() / f"arrays-{digest.hexdigest()[:24]}.npz"
    if path.is_file():
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            np.savez(f, **contiguous)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"cannot write the arrays to {path.parent} ({exc.strerror or exc}); give data_dir= "
            f"(or ${DATA_DIR_ENV}) a folder you may write"
        ) from None
    return path


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
        return "auto"
    value = _plain(value) if not isinstance(value, tuple) else value
    if isinstance(value, tuple):
        numbers = [v for v in value[:2] if isinstance(_plain(v), int | float)]
        if len(value) >= 2 and len(numbers) == 2 and not any(isinstance(v, bool) for v in numbers):
            flags = [_plain(v) for v in value[2:]]
            unknown = [f for f in flags if f not in ("log", "int")]
            if unknown:
                raise ConfigError(
                    f"space: range {value!r}: unknown flag {unknown[0]!r}; write "
                    '(low, high), (low, high, "log") or (low, high, "int")'
                )
            out: dict[str, Any] = {"low": _plain(value[0]), "high": _plain(value[1])}
            if "log" in flags:
                out["log"] = True
            if "int" in flags:
                out["int"] = True
            return out
        return _plain(value)
    return value


def _section(value: str | Mapping[str, Any], what: str) -> dict[str, Any]:
    if isinstance(value, str):
        return {"type": value}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    raise ConfigError(f"{what} must be a type name or a mapping of its settings, got {value!r}")


def _assignments(
    model: _ModelRef | None, data: Any, settings: Mapping[str, Any], data_dir: Any
) -> list[tuple[str, Any]]:
    """The study-file settings the keywords make, as (``section.key``, value) in file order."""
    unknown = set(settings) - set(SETTINGS) - {"space", "sampler", "pruner", "baselines"}
    if unknown:
        raise ConfigError(
            f"unknown setting {sorted(unknown)[0]!r}; known: model, data, "
            f"{', '.join(SETTINGS)}, space, sampler, pruner, baselines, data_dir"
        )
    out: list[tuple[str, Any]] = []
    for keyword, (section, key) in SETTINGS.items():
        if section == "data" and key == "path":
            out.extend(_data_settings(data, settings.get("data_path"), data_dir))
        if section == "train" and key == "batch_size" and model is not None:
            out.append(("train.model", model.name))
        value = settings.get(keyword)
        if value is not None and keyword != "data_path":
            out.append((f"{section}.{key}", _plain(value)))
    space = settings.get("space")
    if space is not None:
        if not isinstance(space, Mapping):
            raise ConfigError(f"space must be a mapping of dimensions, got {space!r}")
        out.extend((f"space.{k}", _dimension(v)) for k, v in space.items())
    for section in ("sampler", "pruner"):
        value = settings.get(section)
        if value is not None:
            out.extend((f"{section}.{k}", v) for k, v in _section(value, section).items())
    baselines = settings.get("baselines")
    if baselines is not None:
        if isinstance(baselines, Mapping | str) or not all(
            isinstance(b, Mapping) for b in baselines
        ):
            raise ConfigError("baselines must be a list of mappings, one per [[baselines]] table")
        out.append(("baselines", [_plain(b) for b in baselines]))
    return out


def _data_settings(data: Any, data_path: Any, data_dir: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    path = None if data_path is None else str(Path(os.fspath(data_path)).expanduser().resolve())
    if data is None:
        return [("data.path", path)] if path else []
    arrays = _arrays(data)
    if arrays is not None:
        if path is not None:
            raise ConfigError("data_path names a dataset's files; it cannot go with arrays")
        folder = Path(os.fspath(data_dir)) if data_dir is not None else default_data_dir()
        return [("data.dataset", "npz"), ("data.path", str(_write_npz(arrays, folder)))]
    name = os.fspath(data)
    if name in DATASETS:
        out.append(("data.dataset", name))
    elif Path(name).suffix == ".npz":
        if path is not None:
            raise ConfigError(f"data = {name!r} is a file already; leave data_path out")
        out.append(("data.dataset", "npz"))
        path = str(Path(name).expanduser().resolve())
    else:
        raise DataError(
            f"data = {name!r}: not a dataset ({', '.join(DATASETS)}) nor an .npz file; give "
            "arrays as (x, y), or a dataset name with data_path= for its files"
        )
    if path is not None:
        out.append(("data.path", path))
    return out


def _nested(pairs: Sequence[tuple[str, Any]], raw: dict[str, Any] | None = None) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------------
# Study
# --------------------------------------------------------------------------------------------


class Study:
    """A study: what to train, on which data, and the schedule space to search.

    The same thing as a study file, in Python: each keyword is one setting of the file (see the
    README's "Study file reference"; a keyword left out takes the file's default), and
    :meth:`to_toml` writes the file. ``Study.from_file(path)`` reads one.
    """

    spec: StudySpec
    """The validated study, as :func:`sweeper.config.parse_study` reads it."""

    def __init__(
        self,
        model: Model,
        data: Data,
        *,
        name: str | None = None,
        n_trials: int | None = None,
        budget_epochs: int | None = None,
        seed: int | None = None,
        metric: str | None = None,
        max_failure_rate: float | None = None,
        failure_window: int | None = None,
        data_path: str | os.PathLike[str] | None = None,
        subset: int | None = None,
        validation_fraction: float | None = None,
        test_fraction: float | None = None,
        data_seed: int | None = None,
        batch_size: int | None = None,
        epochs: int | None = None,
        jit_compile: bool | str | None = None,
        space: Mapping[str, Any] | None = None,
        sampler: str | Mapping[str, Any] | None = None,
        pruner: str | Mapping[str, Any] | None = None,
        baselines: Sequence[Mapping[str, Any]] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """A study from keywords; see :func:`sweeper.tune` for what each one means.

        ``name`` defaults to the model's and the data's names (``"build-arrays"``,
        ``"mnist-cnn-digits"``). Raises :class:`~sweeper.errors.ConfigError` (or ``DataError``)
        with one line for a bad setting, before anything is trained or stored.
        """
        settings = {
            "name": name,
            "n_trials": n_trials,
            "budget_epochs": budget_epochs,
            "seed": seed,
            "metric": metric,
            "max_failure_rate": max_failure_rate,
            "failure_window": failure_window,
            "data_path": data_path,
            "subset": subset,
            "validation_fraction": validation_fraction,
            "test_fraction": test_fraction,
            "data_seed": data_seed,
            "batch_size": batch_size,
            "epochs": epochs,
            "jit_compile": jit_compile,
            "space": space,
            "sampler": sampler,
            "pruner": pruner,
            "baselines": baselines,
        }
        ref = _model_ref(model)
        arrays = _has_arrays(data)
        if name is None:
            label = ref.name.rpartition(":")[2]
            data_label = "arrays" if arrays else Path(os.fspath(data)).stem  # type: ignore[arg-type]
            settings["name"] = f"{label}-{data_label}"
        pairs = _assignments(ref, data, settings, data_dir)
        raw = _nested(pairs)
        spec = parse_study(
            render(raw), SOURCE, base_dir=Path.cwd(), default_name=str(settings["name"])
        )
        self._setup(spec, raw, ref, overridden=False, arrays=arrays)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str] | None = None,
        overrides: Sequence[str] = (),
        **settings: Unpack[StudySettings],
    ) -> Study:
        """The study of a study file: a path, the name of a shipped study (``"mnist"``), or
        None for the embedded default (digits).

        ``overrides`` are ``sweeper tune --set`` items (``"train.epochs=1"``), and each keyword
        given replaces that setting of the file in the same way (``epochs=1``): the study is
        the one ``sweeper tune FILE --set ...`` runs, and the two resume each other. ``space``,
        ``sampler`` and ``pruner`` replace the keys they give and keep the file's others.
        """
        given: dict[str, Any] = dict(settings)
        model = given.pop("model", None)
        data = given.pop("data", None)
        data_dir = given.pop("data_dir", None)
        ref = _model_ref(model) if model is not None else None
        pairs = _assignments(ref, data, given, data_dir)
        items = [*overrides, *(f"{dotted}={toml_value(value)}" for dotted, value in pairs)]
        spec = load_study_file(None if path is None else Path(path), items)
        raw = tomllib.loads(spec.text)
        apply_overrides(raw, overrides, spec.source)
        study = cls.__new__(cls)
        study._setup(
            spec, _nested(pairs, raw), ref, overridden=bool(items), arrays=_has_arrays(data)
        )
        return study

    def _setup(
        self,
        spec: StudySpec,
        raw: dict[str, Any],
        ref: _ModelRef | None,
        *,
        overridden: bool,
        arrays: bool,
    ) -> None:
        self.spec = spec
        self._raw = raw
        self._model = ref
        self._overridden = overridden
        if arrays:
            load_dataset(spec.data)  # arrays that are no images and labels are refused now

    # -- what it is ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The study's name in the store."""
        return self.spec.name

    @property
    def hash(self) -> str:
        """The study's identity in the store: its text and its overrides (``spec.hash``)."""
        return self.spec.hash

    @property
    def in_process_only(self) -> bool:
        """Whether its model is a function that only this process can call (a notebook's)."""
        return self._model is not None and self._model.why_local is not None

    def __repr__(self) -> str:
        s = self.spec
        epochs = f"{s.train.epochs} epoch{'' if s.train.epochs == 1 else 's'}"
        return (
            f"Study({s.name!r}: {s.train.model} on {s.data.name}, {epochs}, batch "
            f"{s.train.batch_size}, schedules {', '.join(s.space.families())}, "
            f"{len(s.baselines)} baselines)"
        )

    def to_toml(self) -> str:
        """The study file's text: :func:`~sweeper.config.parse_study` reads it back to an equal
        spec (its own text for a file read as it is, so the same hash).

        A study whose model is a notebook's function has no file: it raises
        :class:`~sweeper.errors.ConfigError` saying to put the function in a module.
        """
        if self._model is not None and self._model.why_local is not None:
            raise self._model.refuse("a study file")
        if not self._overridden:
            return self.spec.text
        raw = json.loads(json.dumps(self._raw))  # a copy
        raw.setdefault("study", {})["name"] = self.spec.name  # a file's default name is its own
        if self.spec.data.path is not None:  # relative to the file it came from: made absolute
            raw.setdefault("data", {})["path"] = self.spec.data.path
        return render(raw)

    @contextmanager
    def _registered(self) -> Iterator[None]:
        """The model function given, called by this process while the block runs."""
        if self._model is None or self._model.fn is None:
            yield
            return
        with in_process_model(self._model.name, self._model.fn):
            yield

    # -- running it ---------------------------------------------------------------------------
    def run(
        self,
        *,
        storage: str | None = None,
        n_trials: int | None = None,
        budget_epochs: int | None = None,
        timeout: float | None = None,
        workers: int = 1,
        workers_per_gpu: int = 1,
        study_name: str | None = None,
        allow_changed: bool = False,
        checkpoint_dir: str | None = None,
        progress: Progress | None = None,
    ) -> TuneSummary:
        """Run the study as ``sweeper tune`` does and return what the run did, printing nothing
        (``progress`` is called with each finished trial). :meth:`tune` is this plus the
        progress, the summary and the notebook's interrupt; the command line calls this.

        A stop by Ctrl-C or SIGTERM either returns a summary with ``interrupted`` set or raises
        :class:`~sweeper.interrupts.SweepInterrupted`; either way the store is resumable.
        """
        if workers > 1 and self._model is not None and self._model.why_local is not None:
            raise self._model.refuse("worker processes")
        from sweeper import study as study_mod
        from sweeper.backend import quiet_environment

        quiet_environment()
        with self._registered():
            return study_mod.tune(
                self.spec,
                storage=storage,
                study_name=study_name,
                n_trials=n_trials,
                budget_epochs=budget_epochs,
                timeout=timeout,
                allow_changed=allow_changed,
                workers=workers,
                workers_per_gpu=workers_per_gpu,
                checkpoint_dir=checkpoint_dir,
                progress=progress,
            )

    def tune(
        self,
        *,
        storage: str | None = None,
        n_trials: int | None = None,
        budget_epochs: int | None = None,
        timeout: float | None = None,
        workers: int = 1,
        workers_per_gpu: int = 1,
        study_name: str | None = None,
        allow_changed: bool = False,
        checkpoint_dir: str | None = None,
        progress: bool | Progress | None = True,
    ) -> TuneResult:
        """Run the study until it holds ``n_trials`` finished trials (default: its own
        ``n_trials``); see :func:`sweeper.tune` for every argument. Returns a
        :class:`TuneResult`; an interrupt raises :class:`TuneInterrupted` (a
        ``KeyboardInterrupt``) with the store left resumable."""
        from sweeper.interrupts import SweepInterrupted
        from sweeper.store import resolve_url

        url = resolve_url(storage)
        name = study_name or self.name
        with (
            _console(progress is not False and progress is not None),
            _optuna_quiet(),
            reporting(progress, name) as callback,
        ):
            lines = isinstance(callback, ProgressLines)
            if lines:
                _print_lines([header_line(name, self.spec)])
            try:
                summary = self.run(
                    storage=url,
                    study_name=study_name,
                    n_trials=n_trials,
                    budget_epochs=budget_epochs,
                    timeout=timeout,
                    allow_changed=allow_changed,
                    workers=workers,
                    workers_per_gpu=workers_per_gpu,
                    checkpoint_dir=checkpoint_dir,
                    progress=callback,
                )
            except SweepInterrupted:
                raise TuneInterrupted(INTERRUPTED) from None
            except StudyChangedError as exc:
                raise StudyChangedError(
                    f"{exc} (from Python: the same arguments, another study_name=, or "
                    "allow_changed=True)"
                ) from None
            if lines:
                _print_lines(summary_lines(summary, python=True))
        result = TuneResult(summary.study_name, url, summary=summary, study=self)
        if summary.interrupted:
            raise TuneInterrupted(INTERRUPTED, result)
        return result

    def lr_find(
        self,
        *,
        storage: str | None = None,
        optimizer: str | None = None,
        start: float = 1e-7,
        end: float = 10.0,
        steps: int = 200,
        study_name: str | None = None,
        plot: str | os.PathLike[str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[LrFindResult]:
        """The learning-rate range test, as ``sweeper lr-find``: for each optimizer of the
        space (or only ``optimizer``) the model trains while the rate grows exponentially from
        ``start`` to ``end`` over ``steps`` batches; each result (its suggested ``low`` ..
        ``high``, the steepest-descent and lowest-loss rates) is stored with the study, and
        ``plot`` names an image file to draw the loss against the rate into. ``progress`` is
        called with one line before each test."""
        from sweeper import lrfind
        from sweeper.store import Store

        if plot is not None:
            lrfind.check_plot_path(os.fspath(plot))
        optimizers = lrfind.study_optimizers(self.spec.space)
        if optimizer is not None:
            optimizers = [o for o in optimizers if o.name == optimizer]
            if not optimizers:
                raise lrfind.LrFindError(
                    f"optimizer {optimizer!r} is not in the study's space; it has "
                    f"{', '.join(o.name for o in lrfind.study_optimizers(self.spec.space))}"
                )
        s = self.spec
        store = Store(storage)
        results = []
        try:
            with self._registered():
                for opt in optimizers:
                    if progress is not None:
                        progress(
                            f"range test: {s.train.model} on {s.data.name}, {opt.describe()}, "
                            f"batch {s.train.batch_size}, rate {start:g} -> {end:g} over "
                            f"{steps} steps"
                        )
                    result = lrfind.lr_find(s, opt, start=start, end=end, steps=steps)
                    results.append(lrfind.save_lr_find(store, result, study_name or s.name, s.hash))
        finally:
            store.close()
        if plot is not None:
            lrfind.draw([lrfind.plot_data(r) for r in results], os.fspath(plot))
        return results


class TuneInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C, SIGTERM or Kernel → Interrupt; the store is resumable.

    ``result`` is the :class:`TuneResult` of the study when the run ended in order (None when it
    stopped while starting).
    """

    def __init__(self, message: str, result: TuneResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def header_line(name: str, spec: StudySpec) -> str:
    """The line a run starts with: what trains on what, and the families searched."""
    t = spec.train
    return (
        f"tuning {name!r} ({spec.source}): {t.model} on {spec.data.name}, {t.epochs} "
        f"epoch{'' if t.epochs == 1 else 's'}, batch {t.batch_size}, "
        f"schedules {', '.join(spec.space.families())}"
    )


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr, flush=True)


@contextmanager
def _console(show: bool) -> Iterator[None]:
    """The notices meant for the person at the console as plain lines on stderr, unless the
    application has given them a handler of its own."""
    from sweeper.backend import CONSOLE

    if not show or CONSOLE.handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = CONSOLE.level, CONSOLE.propagate
    CONSOLE.addHandler(handler)
    CONSOLE.setLevel(logging.INFO)
    CONSOLE.propagate = False
    try:
        yield
    finally:
        CONSOLE.removeHandler(handler)
        CONSOLE.setLevel(level)
        CONSOLE.propagate = propagate


@contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Optuna's own line per trial off while a study runs (the progress shows each trial)."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


@contextmanager
def _trusted(digest: str) -> Iterator[None]:
    """Let this process run the stored definition of hash ``digest``: it built that study."""
    from sweeper.worker import TRUSTED_HASH_ENV

    previous = os.environ.get(TRUSTED_HASH_ENV)
    os.environ[TRUSTED_HASH_ENV] = digest
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(TRUSTED_HASH_ENV, None)
        else:
            os.environ[TRUSTED_HASH_ENV] = previous


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Best:
    """The best complete trial of a study."""

    number: int
    value: float  # its validation accuracy
    params: dict[str, Any]  # the searched parameters, as Optuna stores them
    schedule: str  # the schedule it trained with, e.g. "cosine(initial_lr=0.1, ...)"
    baseline: str | None = None  # the baseline's name when it is one


class TuneResult:
    """A study in the store: its best trial, its trials, importance, plots, report, evaluation.

    Everything is read from the store when asked for (other workers may still add trials);
    nothing here imports Keras except :meth:`evaluate`, which trains.
    """

    def __init__(
        self,
        study_name: str,
        storage: str,
        *,
        summary: TuneSummary | None = None,
        study: Study | None = None,
    ) -> None:
        self.study_name = study_name
        self._url = storage
        self.summary = summary
        """What the run did (:class:`sweeper.study.TuneSummary`); None for :func:`load`."""
        self.study = study
        """The :class:`Study` that ran; None for :func:`load`."""

    @property
    def storage(self) -> str:
        """The store's URL, its password masked."""
        from sweeper.store import mask_url

        return mask_url(self._url)

    def data(self) -> StudyData:
        """The study as read from the store now (:class:`sweeper.analysis.StudyData`)."""
        from sweeper import analysis as an

        return an.load(self._url, self.study_name)

    @staticmethod
    def _best_of(trial: Any) -> Best:
        from sweeper import analysis as an

        return Best(
            number=trial.number,
            value=float(trial.value),
            params=dict(trial.params),
            schedule=an.describe(trial),
            baseline=an.baseline_of(trial),
        )

    @property
    def best(self) -> Best | None:
        """The best complete trial (baselines included), or None before one completed."""
        ranked = self.data().ranked()
        return self._best_of(ranked[0]) if ranked else None

    @property
    def best_baseline(self) -> Best | None:
        """The best complete baseline trial, or None."""
        from sweeper import analysis as an

        found = an.best_trials(self.data(), 1).best_baseline
        return self._best_of(found) if found is not None else None

    @property
    def gain(self) -> float | None:
        """Best tuned value minus best baseline value (None without both)."""
        from sweeper import analysis as an

        return an.best_trials(self.data(), 1).gain

    @property
    def trials(self) -> pandas.DataFrame | list[dict[str, Any]]:
        """One row per trial: number, state, value, family, schedule, baseline, optimizer,
        duration_s, times, reason, epochs (reported) and ``param_<name>`` per parameter; a
        pandas DataFrame when pandas is installed, else a list of dicts."""
        from sweeper.report import trial_record

        rows = []
        for trial in self.data().trials:
            row = trial_record(trial)
            params = row.pop("params")
            row["epochs"] = len(trial.intermediate_values)
            row.update({f"param_{k}": v for k, v in params.items()})
            rows.append(row)
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows)

    def importance(
        self, evaluator: str = "ped-anova", *, max_trials: int | None = None
    ) -> ImportanceReport:
        """Parameter importance over the tuned trials, overall (``.overall.values``, a dict
        parameter -> share) and per family (``.families``), as ``sweeper importance``.

        ``evaluator``: ``ped-anova``, ``fanova`` or ``mean-decrease-impurity``. Raises
        :class:`~sweeper.analysis.TooFewTrialsError` below 4 complete tuned trials.
        """
        from sweeper import analysis as an

        return an.importances(self.data(), evaluator, max_trials=max_trials)

    def plot(
        self,
        kind: str = "history",
        *,
        top: int = 5,
        family: str | None = None,
        evaluator: str = "ped-anova",
    ) -> Figure:
        """One figure of the study, as ``sweeper plot`` draws it: a matplotlib ``Figure``,
        shown inline when it is the last value of a notebook cell.

        ``kind``: history, importance, lr-curves (the ``top`` best trials), learning-curves,
        families, parallel, slice or contour (one schedule ``family``, default the best).
        Raises :class:`~sweeper.plots.PlotUnavailableError` when the study cannot show it yet.
        """
        from sweeper import analysis as an
        from sweeper import plots

        if kind not in plots.KINDS:
            raise plots.UnknownPlotKindError(
                f"unknown plot kind {kind!r}; choose one of: {', '.join(plots.KINDS)}"
            )
        data = self.data()
        rows = an.read_epochs(self._url, self.study_name) if kind == "learning-curves" else None
        with _figures():
            fig = plots.draw(
                data, kind, top=top, family=family, evaluator=evaluator, epoch_rows=rows
            )
            plots.close(fig)  # not kept by pyplot: the figure is the caller's
        return fig

    def report(
        self, path: str | os.PathLike[str] = ".", *, top: int = 10, evaluator: str = "ped-anova"
    ) -> Path:
        """Write the study's HTML report, as ``sweeper report``: to ``path`` when it ends in
        ``.html``, else to ``path/<study>-report.html``. Returns the file's path."""
        from sweeper.report import build_report, write_report

        target = Path(path)
        with _figures():
            if target.suffix.lower() in (".html", ".htm"):
                page = build_report(self._url, self.study_name, top=top, evaluator=evaluator)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(page, encoding="utf-8")
                return target
            return write_report(self._url, self.study_name, target, top=top, evaluator=evaluator)

    def evaluate(
        self,
        *,
        top: int = 3,
        repeats: int = 3,
        epochs: int | None = None,
        progress: bool | Callable[[EvalRun], None] | None = True,
    ) -> Evaluation:
        """Did tuning help? Retrain the ``top`` best tuned trials and the best baseline on
        train + validation, ``repeats`` seeds each, and score them on the held-out test split,
        as ``sweeper evaluate`` (every run stored). ``epochs`` defaults to the study's;
        ``progress`` prints one line per run (or is called with each run)."""
        from sweeper.evaluate import evaluate

        callback: Callable[[EvalRun], None] | None
        callback = _print_run if progress is True else (progress or None)
        study = self.study
        with (
            study._registered() if study is not None else _nothing(),
            _trusted(study.hash) if study is not None else _nothing(),
            _console(callback is not None),
        ):
            return evaluate(
                self.study_name,
                storage=self._url,
                top=top,
                repeats=repeats,
                epochs=epochs,
                progress=callback,
            )

    def __repr__(self) -> str:
        try:
            return self._describe()
        except SweeperError:
            return f"TuneResult(study {self.study_name!r} in {self.storage})"

    def _describe(self) -> str:
        from sweeper import analysis as an

        data = self.data()
        c = an.counts(data)
        lines = [
            f"study {self.study_name!r} in {self.storage}: {len(data.trials)} trials "
            f"({c['complete']} complete, {c['pruned']} pruned, {c['paused']} paused, "
            f"{c['failed']} failed)"
        ]
        found = an.best_trials(data, 1)
        if not found.top:
            lines.append("no complete trial yet")
        else:
            best = self._best_of(found.top[0])
            params = "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in best.params.items()
            )
            lines += [
                f"best: trial {best.number}, val_accuracy {best.value:.4f}",
                f"  schedule: {best.schedule}",
                f"  params:   {params or '(none searched)'}",
            ]
        if found.best_baseline is not None:
            gain = f"; tuning gains {found.gain:+.4f}" if found.gain is not None else ""
            lines.append(
                f"best baseline: {an.baseline_of(found.best_baseline)}, val_accuracy "
                f"{value_text(found.best_baseline.value)}{gain}"
            )
        return "\n".join(lines)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _print_run(run: EvalRun) -> None:
    loss = "diverged" if run.test_loss is None else f"loss {run.test_loss:.4f}"
    print(
        f"  trial {run.trial_number:<4} seed {run.seed:<3} test_acc={run.test_accuracy:.4f}  "
        f"{loss}  {run.seconds:5.1f}s  {run.label}",
        file=sys.stderr,
        flush=True,
    )


@contextmanager
def _figures() -> Iterator[None]:
    """Draw without leaving pyplot on another backend, and let a notebook show figures.

    The drawing functions use the Agg backend. In a notebook, the kernel's own (inline) backend
    is set up first and put back afterwards, and a ``Figure`` shown as a cell's value renders
    as a PNG.
    """
    import matplotlib

    notebook = in_notebook()
    if notebook:
        import matplotlib.pyplot
    before = matplotlib.get_backend() if "matplotlib.pyplot" in sys.modules else None
    try:
        yield
    finally:
        if before is not None and matplotlib.get_backend() != before:
            import matplotlib.pyplot as plt

            plt.switch_backend(before)
        if notebook:
            _show_figures_inline()


def _figure_png(fig: Any) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _show_figures_inline() -> None:
    """Make the notebook render a ``Figure`` value as a PNG (the inline backend does so too)."""
    from matplotlib.figure import Figure

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, _figure_png)


# --------------------------------------------------------------------------------------------
# The entry points
# --------------------------------------------------------------------------------------------


def load(study_name: str, storage: str | None = None) -> TuneResult:
    """The results of a study already in the store (tuned by the API or by ``sweeper tune``).

    ``storage`` defaults to ``$SWEEPER_STORAGE``, else ``sqlite:///sweeper.db`` here. Raises
    :class:`~sweeper.errors.SweeperError` when the store or the study does not exist.
    """
    from sweeper import analysis as an
    from sweeper.store import resolve_url

    url = resolve_url(storage)
    an.load(url, study_name)
    return TuneResult(study_name, url)


@dataclass(frozen=True)
class WorkerRun:
    """What :func:`join` did: trials run by this worker, whether it was stopped, the target."""

    ran: int
    interrupted: bool
    target: int


def join(
    study_name: str,
    *,
    storage: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    checkpoint_dir: str | None = None,
    study_file: str | os.PathLike[str] | None = None,
    trust_store: bool = False,
    progress: Progress | None = None,
) -> WorkerRun:
    """Join a study already in the store as one more worker, as ``sweeper worker`` does, from
    any machine that reaches the store: trials run until it holds ``n_trials`` finished ones
    (default: the target it was started with) or ``timeout`` seconds have passed.

    The study's definition is read from the store; one that imports a user model runs only
    when ``study_file`` (or the stored source path here) holds the same definition, or with
    ``trust_store``.
    """
    from sweeper.backend import quiet_environment
    from sweeper.store import Store
    from sweeper.study import join_study

    quiet_environment()
    store = Store(storage)
    ran, interrupted, target = join_study(
        store,
        study_name,
        n_trials=n_trials,
        timeout=timeout,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        trust_store=trust_store,
        study_file=None if study_file is None else os.fspath(study_file),
    )
    return WorkerRun(ran, interrupted, target)


def tune(
    model: Model,
    data: Data,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    n_trials: int | None = None,
    budget_epochs: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    jit_compile: bool | str | None = None,
    space: Mapping[str, Any] | None = None,
    sampler: str | Mapping[str, Any] | None = None,
    pruner: str | Mapping[str, Any] | None = None,
    baselines: Sequence[Mapping[str, Any]] | None = None,
    seed: int | None = None,
    metric: str | None = None,
    max_failure_rate: float | None = None,
    failure_window: int | None = None,
    data_path: str | os.PathLike[str] | None = None,
    subset: int | None = None,
    validation_fraction: float | None = None,
    test_fraction: float | None = None,
    data_seed: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    workers: int = 1,
    workers_per_gpu: int = 1,
    allow_changed: bool = False,
    checkpoint_dir: str | None = None,
    progress: bool | Progress | None = True,
) -> TuneResult:
    """Find the best learning-rate schedule for ``model`` on ``data``; the study is stored, and
    calling again with the same arguments resumes it (only what is missing runs).

    Every setting of a study file is a keyword (README, "Study file reference"); one left out
    (None) takes the study file's default. This runs ``Study(model, data, ...).tune(...)``,
    which runs :func:`sweeper.study.tune` like ``sweeper tune``. A bad setting raises
    :class:`~sweeper.errors.SweeperError` (one line) before anything is stored; Ctrl-C or
    Kernel → Interrupt stops after the batch in progress, puts the running trial back in the
    queue and raises ``KeyboardInterrupt``: call again to resume.

    Args:
        model: the network: a built-in name (``"mnist-cnn"``, ``"fashion-cnn"``,
            ``"cifar-cnn"``), ``"module:function"``, or a function ``build(input_shape,
            num_classes) -> keras.Model`` ending in a softmax. A function of a notebook or
            script runs in this process only (``workers=1``).
        data: a dataset name (``"digits"``, ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``,
            ``"idx"``, ``"npz"``), an ``.npz`` path, or NumPy arrays: ``(x, y)`` (images
            ``(N, H, W[, C])`` uint8 or floats in [0, 1], labels class indices; a test split is
            carved by ``test_fraction``), ``((x, y), (x_test, y_test))`` (the second pair is the
            held-out test split, as Keras's ``load_data()`` returns it), a mapping with those
            ``.npz`` keys, or a ``keras.utils.PyDataset`` of ``(images, labels)`` batches (or
            a pair of them, training and test), read once into arrays. Validation is carved
            from the training data by ``validation_fraction``. Arrays are stored once as
            ``.npz`` under ``data_dir``.
        storage: SQLAlchemy URL of the store [default: ``$SWEEPER_STORAGE`` or
            ``sqlite:///sweeper.db`` in the working directory].
        study_name: the study's name in the store ([study] name) [default: the model's and
            the data's names, e.g. ``"build-arrays"``].
        n_trials: run until the study holds this many finished trials (like ``--n-trials``:
            not part of the study's identity, so a larger number extends it) [default: 20].
        budget_epochs: stop once this many epochs were trained for the study in all (like
            ``--budget-epochs``).
        epochs: epochs per trial ([train] epochs) [default: 5].
        batch_size: [train] batch_size [default: 64].
        jit_compile: [train] jit_compile: ``"auto"``, True or False [default: "auto"].
        space: the [space] section: ``{"schedules": ["constant", "cosine"], "initial_lr":
            (1e-3, 0.3, "log"), "decay_rate": (0.1, 0.9), "drop_every": [1, 2, 3],
            "staircase": True}``; a tuple ``(low, high[, "log"][, "int"])`` is a range, a list
            the choices, a plain value pins the dimension, and the study-file forms
            (``{"low": ..., "high": ..., "log": True}``, ``"auto"``) work too [default: every
            family, the README's default ranges].
        sampler: [sampler]: a type (``"tpe"``, ``"random"``, ``"grid"``) or a mapping such as
            ``{"type": "tpe", "n_startup_trials": 10}`` [default: tpe].
        pruner: [pruner]: a type (``"asha"``, ``"median"``, ``"successive_halving"``,
            ``"hyperband"``, ``"none"``) or a mapping with ``type``, ``min_resource``,
            ``reduction_factor``, ``n_startup_trials``, ``n_warmup_steps``, ``stall_factor``
            [default: asha].
        baselines: the [[baselines]] tables, run first: a list of mappings such as
            ``{"name": "constant 0.01", "schedule": "constant", "initial_lr": 0.01}``.
        seed: [study] seed, for the sampler and training [default: 0].
        metric: [study] metric [default: "val_accuracy", the only one].
        max_failure_rate: [study] max_failure_rate: stop when more than this share of the last
            ``failure_window`` trials failed [default: 0.5].
        failure_window: [study] failure_window [default: 10].
        data_path: [data] path: the offline files of a named dataset (relative to the working
            directory).
        subset: [data] subset: draw this many examples for train + validation.
        validation_fraction: [data] validation_fraction [default: 0.2].
        test_fraction: [data] test_fraction, for data without a test split [default: 0.2].
        data_seed: [data] seed of the splits [default: 0].
        data_dir: where arrays are written as ``.npz`` [default: ``$SWEEPER_DATA_DIR``, else
            ``~/.cache/sweeper/data``].
        timeout: start no new trial after this many seconds.
        workers: worker processes sharing the study (like ``--workers``); more than one needs
            a model that worker processes can import (a name, or a function of a module).
        workers_per_gpu: workers packed onto each GPU.
        allow_changed: continue a stored study of the same name whose settings differ.
        checkpoint_dir: where trials keep their per-epoch checkpoints [default:
            ``$SWEEPER_CHECKPOINTS`` or ``./sweeper-checkpoints``].
        progress: True: a bar in a Jupyter notebook (tqdm), one line per trial elsewhere;
            False: quiet; or a function called with each :class:`~sweeper.trials.TrialEvent`.

    Returns:
        A :class:`TuneResult`: ``best``, ``trials``, ``importance()``, ``plot(kind)``,
        ``report(path)``, ``evaluate()``.
    """
    study = Study(
        model,
        data,
        name=study_name,
        seed=seed,
        metric=metric,
        max_failure_rate=max_failure_rate,
        failure_window=failure_window,
        data_path=data_path,
        subset=subset,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        data_seed=data_seed,
        batch_size=batch_size,
        epochs=epochs,
        jit_compile=jit_compile,
        space=space,
        sampler=sampler,
        pruner=pruner,
        baselines=baselines,
        data_dir=data_dir,
    )
    return study.tune(
        storage=storage,
        n_trials=n_trials,
        budget_epochs=budget_epochs,
        timeout=timeout,
        workers=workers,
        workers_per_gpu=workers_per_gpu,
        allow_changed=allow_changed,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
    )


def same_definition(a: StudySpec, b: StudySpec) -> bool:
    """Whether two specs define the same study, whatever their text, source and overrides
    (a study file and the TOML that :meth:`Study.to_toml` renders from its settings)."""
    return dataclasses.replace(a, text="", source="", overrides=()) == dataclasses.replace(
        b, text="", source="", overrides=()
    )
