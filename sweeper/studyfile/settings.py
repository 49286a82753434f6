"""Every setting of a study file outside ``[space]``, declared once (:data:`TABLE`).

A :class:`Setting` is one ``section.key``: its type, default, limits or choices, one line of
documentation, and the keyword of the Python API that sets it (if one does). From the table come

* the keys each section accepts and ``--set`` checks (:data:`SECTION_KEYS`, with ``[space]``'s
  keys from :data:`sweeper.studyfile.dimensions.DIMENSIONS`);
* the parser's defaults, limits and choices (:meth:`Setting.read`, :func:`default`), and the
  spec dataclasses' defaults (:mod:`sweeper.studyfile.study_spec`);
* the API's keyword -> setting map (:data:`API_KEYWORDS`, used by :mod:`sweeper.api.settings`);

and ``tests/study/test_settings_table.py`` checks the rest against it: the README's study
file reference, the typed keywords of :class:`sweeper.api.settings.StudySettings`, and the
defaults of the training layer's own dataclasses (``DataSpec``, ``TrainSettings``), which sit
below this layer and cannot import it.

Checks that read more than one value, or that need a library (a model name, a URL, a sampler's
package), stay with the section's reader in :mod:`sweeper.studyfile.config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeper.studyfile.dimensions import DIMENSIONS
from sweeper.training.data import MAX_SEED
from sweeper.training.data_sources import DATASETS

if TYPE_CHECKING:
    from sweeper.studyfile.study_reader import Reader

# sanity limits: beyond them a value is a typo, not a plan
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 20
MAX_PACK = 64  # trials trained at once in one model (see sweeper.training.packing)
MAX_TRIALS = 10_000_000


@dataclass(frozen=True)
class Kind:
    """One ``type`` of ``[sampler]`` or ``[pruner]``: its name, what it is, and the package it
    needs beyond Optuna (module, how to get it). Its factory is in :mod:`sweeper.search.samplers_pruners`,
    keyed by the same name (a test holds the two to the same names)."""

    name: str
    doc: str
    needs: tuple[str, str] | None = None


SAMPLER_KINDS: tuple[Kind, ...] = (
    Kind("tpe", "Optuna's TPESampler (the default)"),
    Kind("random", "Optuna's RandomSampler"),
    Kind("grid", "every point of a space whose searched dimensions are lists"),
    Kind(
        "gp",
        "Optuna's GPSampler (Gaussian process)",
        ("torch", "PyTorch (Optuna's GPSampler runs on it); pip install 'sweeper[gp]'"),
    ),
    Kind(
        "cmaes",
        "Optuna's CmaEsSampler",
        ("cmaes", "the cmaes package (Optuna's CmaEsSampler runs on it); pip install cmaes"),
    ),
)
PRUNER_KINDS: tuple[Kind, ...] = (
    Kind("asha", "sweeper's asynchronous successive halving: pauses and continues (the default)"),
    Kind("median", "Optuna's MedianPruner"),
    Kind("successive_halving", "Optuna's SuccessiveHalvingPruner (stops, never continues)"),
    Kind("hyperband", "Optuna's HyperbandPruner (stops, never continues)"),
    Kind("none", "no pruner: every trial trains its full length"),
)
SAMPLERS = tuple(k.name for k in SAMPLER_KINDS)
PRUNERS = tuple(k.name for k in PRUNER_KINDS)
# asha's comparison at a rung: every configuration there, or those annealed no further
# (sweeper.search.promotion.peers)
COMPARE_MODES = ("all", "annealed")


@dataclass(frozen=True)
class Setting:
    """One ``section.key`` of a study file."""

    section: str
    key: str
    default: Any  # None: unset unless given
    kind: str = "str"  # "int", "float", "str", "choice", "path", "url", "model", "jit"
    doc: str = ""  # one line, as the README's reference says it
    low: float | None = None  # int and float: the smallest value taken
    high: float | None = None  # int and float: the largest value taken (None: no limit)
    choices: tuple[str, ...] = ()  # choice: the values taken
    keyword: str | None = None  # the Python API's keyword for it (None: not a keyword)
    example: Any = None  # the value README's reference shows when there is no default

    def shown(self) -> Any:
        """The value README's reference shows: the default, or an example."""
        return self.default if self.default is not None else self.example

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"

    def read(self, r: Reader, table: Mapping[str, Any]) -> Any:
        """This setting's value in ``table`` (its default when absent), checked for its kind's
        limits or choices; one line naming the file and key when it is not."""
        where = f"[{self.section}]"
        if self.key not in table and self.default is None:
            return None
        if self.kind == "int":
            return r.integer(
                table,
                self.key,
                where,
                self.default,
                int(self.low if self.low is not None else 0),
                None if self.high is None else int(self.high),
            )
        if self.kind == "choice":
            return r.choice(table, self.key, where, self.default, self.choices)
        if self.kind == "float":
            value = table.get(self.key, self.default)
            bottom = self.low if self.low is not None else float("-inf")
            top = self.high if self.high is not None else float("inf")
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not bottom <= value <= top
            ):
                raise r.fail(f"{where} {self.key}", f"must lie in {self.limits()}, got {value!r}")
            return float(value)
        return table.get(self.key, self.default)

    def limits(self) -> str:
        """``[low, high]`` as the error lines say it."""
        low = "(-inf" if self.low is None else f"[{self.low:g}"
        high = "inf)" if self.high is None else f"{self.high:g}]"
        return f"{low}, {high}"


def _int(section: str, key: str, default: int | None, doc: str, low: int, high: int | None = None,
         keyword: str | None = None) -> Setting:  # fmt: skip
    return Setting(section, key, default, "int", doc, low=low, high=high, keyword=keyword)


TABLE: tuple[Setting, ...] = (
    Setting("study", "name", None, example="my-study", doc="the study's name in the store (default: the file's name)", kind="str", keyword="name"),
    _int("study", "n_trials", 20, "stop when this many configurations have finished (--n-trials wins)", 1, MAX_TRIALS, "n_trials"),
    Setting("study", "budget_epochs", None, example=225, kind="int", low=1, high=MAX_TRIALS, keyword="budget_epochs",
            doc="optional: stop once this many epochs were trained in all (--budget-epochs wins)"),
    _int("study", "seed", 0, f"sampler and training seed (0 .. {MAX_SEED}, as NumPy and Keras take)", 0, MAX_SEED, "seed"),
    Setting("study", "metric", "val_accuracy", kind="choice", choices=("val_accuracy",), keyword="metric",
            doc="maximised; the value of a trial is its last epoch's validation accuracy"),
    Setting("study", "max_failure_rate", 0.5, kind="float", low=0, high=1, keyword="max_failure_rate",
            doc="stop when more than this share of the last failure_window trials failed"),
    _int("study", "failure_window", 10, "the trials max_failure_rate looks back over", 1, None, "failure_window"),
    Setting("study", "artifacts", None, example="file:///shared/checkpoints", kind="url",
            doc="file:///shared/folder or s3://bucket/prefix: checkpoints every machine reads (--artifacts wins)"),
    Setting("data", "dataset", "digits", kind="choice", choices=tuple(DATASETS),
            doc=f"{' | '.join(DATASETS)} (labels: class indices 0..K-1, at least 10 examples, 2 classes and 2 examples per class)"),
    Setting("data", "path", None, example="data/mnist", kind="path", keyword="data_path",
            doc="offline folder/file, relative to this file; mnist/fashion-mnist/cifar10 download without it"),
    Setting("data", "subset", None, example=2000, kind="int", low=1, keyword="subset",
            doc="optional: draw this many examples for train + validation"),
    Setting("data", "validation_fraction", 0.2, kind="float", low=0, high=1, keyword="validation_fraction",
            doc="carved from the training data, never from the test set"),
    Setting("data", "test_fraction", 0.2, kind="float", low=0, high=1, keyword="test_fraction",
            doc="only when the source has a single split (digits, a lone t10k pair, npz x/y)"),
    _int("data", "seed", 0, "the split's and the subset's seed", 0, MAX_SEED, "data_seed"),
    Setting("train", "model", "mnist-cnn", kind="model",
            doc="mnist-cnn | fashion-cnn | cifar-cnn | package.module:function(input_shape, num_classes)"),
    _int("train", "batch_size", 64, "examples per step", 1, MAX_BATCH_SIZE, "batch_size"),
    _int("train", "epochs", 5, "the length of a configuration's full training", 1, MAX_EPOCHS, "epochs"),
    Setting("train", "jit_compile", "auto", kind="jit", keyword="jit_compile",
            doc="Keras's choice: XLA on TensorFlow only with a GPU, jit on JAX; or true / false"),
    _int("train", "pack", 1, f"trials a worker trains at once in one model (1..{MAX_PACK}; --pack wins)", 1, MAX_PACK, "pack"),
    Setting("sampler", "type", "tpe", kind="choice", choices=SAMPLERS,
            doc=" | ".join(SAMPLERS) + " (grid: every dimension a list)"),
    _int("sampler", "n_startup_trials", 10, "random configurations before the sampler models", 0),
    Setting("sampler", "reference", "cosine", kind="str",
            doc='trained first, from the top of the searched initial_lr (a third lower when it stalls), its full length ("none": off)'),
    Setting("pruner", "type", "asha", kind="choice", choices=PRUNERS,
            doc=" | ".join(PRUNERS)),
    _int("pruner", "min_resource", 1, "asha, successive_halving, hyperband: the first rung, in epochs", 1),
    _int("pruner", "reduction_factor", 3, "asha, successive_halving, hyperband: the best 1/3 go on at each rung", 2),
    _int("pruner", "brackets", 1, "asha: > 1 spreads configurations over Hyperband's brackets (bracket b skips the first b rungs)", 1),
    Setting("pruner", "compare", "all", kind="choice", choices=COMPARE_MODES,
            doc="asha: all | annealed (a rung compares a configuration only with those whose rate has fallen no further)"),
    _int("pruner", "n_startup_trials", 4, "median: trials before pruning starts", 0),
    _int("pruner", "n_warmup_steps", 1, "median: epochs before pruning starts", 0),
    Setting("pruner", "stall_factor", 1.5, kind="float", low=0, high=10,
            doc="stop a tuned trial at <= 1.5 x chance val accuracy after its first epoch (0: off)"),
)  # fmt: skip

SETTINGS: dict[str, Setting] = {s.path: s for s in TABLE}

# every key of each section of a study file: each section's reader checks its table against
# it, and `--set` its paths (sweeper.studyfile.config.apply_overrides)
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    section: ("schedules", *DIMENSIONS)
    if section == "space"
    else tuple(s.key for s in TABLE if s.section == section)
    for section in ("study", "data", "train", "space", "sampler", "pruner")
}
TOP_LEVEL_KEYS = (*SECTION_KEYS, "baselines")

# the Python API's keyword -> the setting it sets, in the table's order
API_KEYWORDS: dict[str, Setting] = {s.keyword: s for s in TABLE if s.keyword is not None}


def toml_value(value: Any) -> str:
    """``value`` as a study file writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def reference() -> str:
    """README's study file reference for every section but ``[space]``: each setting as
    ``key = value  # doc``, the value its default (or an example where it has none)."""
    blocks = []
    for section in SECTION_KEYS:
        rows = [s for s in TABLE if s.section == section]
        if rows:
            lines = [f"[{section}]"]
            for s in rows:
                assignment = f"{s.key} = {toml_value(s.shown())}"
                lines.append(f"{assignment.ljust(23)}  # {s.doc}")
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def default(section: str, key: str) -> Any:
    """The default of ``section.key``."""
    return SETTINGS[f"{section}.{key}"].default
