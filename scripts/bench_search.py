"""Search efficiency: the best validation accuracy each tuner finds per epoch it trains.

Several tuners ("arms") search the same learning-rate schedules for the same model on the same
data, each held to the same budget of trained epochs: every epoch any trial trains counts, whether
the trial is later pruned, promoted, continued or finished. A Keras callback records the
validation accuracy of each trained epoch in training order, the arm's "anytime curve", and stops
the arm when the budget is spent. "Best within b epochs" is the highest validation accuracy among
the first b epochs of the curve; the tables report b = 25, 75 and 225 (those within
``--budget``, and the budget itself), all read from the one run per arm and seed. All peers really
run; no figure is quoted.

Arms:

* ``kt-hyperband``: KerasTuner's Hyperband (max_epochs 9, factor 3; promoted trials continue from
  the saved weights, with a fresh optimizer, as KerasTuner does);
* ``kt-random``: KerasTuner's RandomSearch, trials of 9 epochs;
* ``optuna-loop``: a plain Optuna loop, TPESampler(seed) + MedianPruner() +
  KerasPruningCallback, trials of 9 epochs, objective = last val_accuracy, in-memory study;
* ``sweeper``: ``sweeper.search.runner.tune`` with the study file's default [sampler] and [pruner];
* ``sweeper-previous``: the same with the former defaults, TPE (10 start-up trials) + median
  pruner (4 start-up trials, 1 warm-up epoch), no reference configuration.

Shared by every arm: the real MNIST test set of studies/data/mnist-t10k, loaded once with
sweeper's loader (7,900 train / 2,000 validation images, the split printed); sweeper's
``mnist-cnn``; plain SGD (no momentum), batch 64, trials of up to 9 epochs; the space: schedule
family in {constant, time, exponential, step, cosine}, initial_lr log-uniform in [1e-4, 0.3] and
each family's own dimensions with sweeper's default ranges. Every arm trains the schedule that
sweeper's own code (``sweeper.training.schedules.from_dimensions``) builds for its values, defined over 9
epochs whatever the rung. The arms of a seed run in rotated order, each seeded
(``keras.utils.set_random_seed``).

Printed per budget b: each arm's best within b (mean +- std over the seeds), the configurations
it tried within b, then the epochs each arm took to reach X = kt-hyperband's mean best within 75
epochs (or the budget, if smaller): their mean, each seed's, and the first budget b at which the
seeds' mean best within b reaches X (defined even when a seed never reaches it); the wall time and
the epochs trained; per budget (and at 40 epochs), sweeper's mean against kt-hyperband's and, over
the seeds both ran, the mean and standard error of the paired difference. ``--reach-x`` sets X
instead, to hold runs of other seeds (or without kt-hyperband) to a known X.

Targets (sweeper's defaults against kt-hyperband): a mean best >= kt-hyperband's at every budget;
ahead at 75 epochs by more than one standard error of the difference; X reached in <= 40 epochs.

    python scripts/bench_search.py             # 5 arms x 3 seeds x 225 epochs (~2.5 h, 2 cores)
    python scripts/bench_search.py --quick     # one seed, 25 epochs per arm (~5 min)
    python scripts/bench_search.py --arms sweeper,kt-hyperband --seeds 0,1,2,3,4 --out runs.json
    python scripts/bench_search.py --from-json runs.json   # the tables again, from saved curves
    python scripts/bench_search.py --from-json a.json,b.json   # runs of other seeds together
    python scripts/bench_search.py --from-json c.json --reach-x 0.9837   # X known from a.json

More arms, for the suite:

* ``dehb``: DEHB (differential evolution + Hyperband; fidelities 1, 3, 9 epochs, factor 3);
* ``smac``: SMAC3's multi-fidelity facade (Hyperband + random forest), the same fidelities; both
  train every evaluation from epoch 0, as they do (scripts/bench_peers.py drives them);
* ``optuna-hyperband``: the plain Optuna loop with ``HyperbandPruner`` (1 to 9 epochs, factor 3);
* ``sweeper-top-ref``: sweeper's defaults before the suite: the reference configuration at the top of
  the range only, stopped like any trial when it stalls (the run patches the step down away).
* ``sweeper-no-ref``: sweeper's defaults with no reference configuration (``sampler.reference=none``);
* ``sweeper-range-ref``: sweeper's defaults with the task's initial_lr range narrowed by the LR range
  test first (``range_test = true``; its batches count as epochs), the reference stepping down from
  the top of the narrowed range.
* ``sweeper-step2``: sweeper's defaults with a reference that steps down to half its rate, not a
  third (closer to the top where the top diverges, one more epoch per factor of ten);
* ``sweeper-brackets``: sweeper's defaults with ``pruner.brackets=3``: about one configuration in
  six trains its full length without a rung (a hedge against rungs that favour schedules which
  anneal early);
* ``sweeper-annealed``: sweeper's defaults with ``pruner.compare=annealed``: a rung compares a
  configuration only with those whose rate has fallen no further than its own by then.

**Choosing a default** (``--choose``): the candidates ``sweeper`` (the reference that steps down),
``sweeper-top-ref``, ``sweeper-no-ref``, ``sweeper-range-ref``, ``sweeper-step2``,
``sweeper-brackets`` and ``sweeper-annealed`` as a suite of their own, on seeds apart from the
reporting ones, ranked per task at 25 and at 75 epochs; the CHOICE line names the candidate with
the lowest mean of its two mean ranks (a tie keeps ``sweeper``).

**The suite** (``--suite``): six tasks that differ in where the good rates are, each a job per arm
(a process of this script, ``--jobs`` at a time, curves in ``--out-dir``; a job whose curves are
saved is kept unless ``--rerun``), then per budget a task x arm table of mean +- standard error,
each arm's rank per task and its mean rank, and the targets: sweeper's defaults have the best mean
rank at 25 and 75 epochs; on no task behind the best peer by more than one standard error at 75;
on ``wide-sgd`` ahead of kt-hyperband and DEHB by more than one. Tasks (``--task`` runs one):
``cnn-sgd`` (mnist-cnn, SGD, rates near 0.3 learn best), ``wide-sgd`` (no pooling and a wide
dense layer, scripts/bench_models.py: 0.3 stays at chance), ``cnn-momentum`` (SGD momentum 0.9),
``cnn-adam`` (Adam, initial_lr in [1e-5, 1e-1]), ``mlp-sgd`` (a user's MLP), ``digits-sgd``
(scikit-learn digits, batch 16); the MNIST ones on 4,000 train / 1,000 validation images of the
shipped set. ``mnist-cnn`` (the default, all images) is section 7's benchmark.

    python scripts/bench_search.py --suite --seeds 5,6,7 --budget 75 --out-dir suite-runs
    python scripts/bench_search.py --suite --quick      # one seed, 12 epochs per job (~15 min)
    python scripts/bench_search.py --from-json suite-runs   # the suite's tables again
    python scripts/bench_search.py --suite --choose --seeds 0,1,2 --budget 75 --out-dir choose-runs

Needs the peers (the ``bench`` extra, pinned in .ci/constraints.txt, and DEHB apart):
``python3 -m pip install -c .ci/constraints.txt -e '.[bench]'`` then
``python3 -m pip install --no-deps dehb==0.1.2``.

The ``sweeper`` arms stop by ``[study] budget_epochs`` and read their curve from the store's
ledger of trained epochs (``Store.ledger``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchlib import machine_lines, mean_std, print_table

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # this checkout's sweeper, installed or not
    sys.path.insert(0, str(ROOT))
# --choose: the candidates for the sweeper defaults (the first is the one a tie keeps)
CANDIDATES = (
    "sweeper",
    "sweeper-top-ref",
    "sweeper-no-ref",
    "sweeper-range-ref",
    "sweeper-step2",
    "sweeper-brackets",
    "sweeper-annealed",
)
SWEEPER_ARMS = (*CANDIDATES, "sweeper-previous")
ARMS = (
    "kt-hyperband",
    "kt-random",
    "optuna-loop",
    *SWEEPER_ARMS,
    "dehb",
    "smac",
    "optuna-hyperband",
)
# section 7's benchmark, the arms a run without --arms compares
SECTION7_ARMS = ("kt-hyperband", "kt-random", "optuna-loop", "sweeper", "sweeper-previous")
# the suite's arms, in the order its jobs start (the ones the targets compare first)
SUITE_ARMS = (
    "sweeper",
    "kt-hyperband",
    "dehb",
    "smac",
    "optuna-hyperband",
    "sweeper-top-ref",
    "optuna-loop",
    "kt-random",
)
# the settings a candidate runs with on top of the defaults
CANDIDATE_SETS = {
    "sweeper-no-ref": ["sampler.reference=none"],
    "sweeper-brackets": ["pruner.brackets=3"],
    "sweeper-annealed": ["pruner.compare=annealed"],
}
STEP2 = 2.0  # sweeper-step2: the reference steps down to half its rate, not a third
REFERENCE = "kt-hyperband"
CANDIDATE = "sweeper"
BUDGETS = (25, 75, 225)
REACH_AT = 75  # X = the reference's mean best within this many epochs
REACH_TARGET = 40  # the candidate should reach X within this many epochs
EPOCHS = 9
BATCH = 64
# KerasTuner's oracle draws the k-th hyperparameter value of a run from random.Random(seed + k), so
# seeds s and s + 1 replay one stream shifted by one draw: runs "of five seeds" would try nearly the
# same configurations. Each bench seed gets a stream that starts this far from the next one's.
KT_SEED_STRIDE = 1_000_003
FAMILIES = ("constant", "time", "exponential", "step", "cosine")
SWEEPER_SET: list[str] = []  # --sweeper-set: settings the "sweeper" arm runs with instead

PREVIOUS_DEFAULTS = [  # sweeper's [sampler] and [pruner] defaults before the change measured here
    "sampler.type=tpe",
    "sampler.n_startup_trials=10",
    "pruner.type=median",
    "pruner.n_startup_trials=4",
    "pruner.n_warmup_steps=1",
    "sampler.reference=none",
]


@dataclass(frozen=True)
class Task:
    """One task of the suite: data, network, optimizer and the searched initial rate. Every arm
    searches the same five families over it with the same budget."""

    name: str
    what: str  # what makes a rate good here, in words
    model: str  # a built-in model or bench_models:FUNCTION (scripts/bench_models.py)
    dataset: str = "mnist"  # "mnist" (the shipped MNIST test set) or "digits" (scikit-learn)
    subset: int | None = None  # examples drawn for train + validation (None: all)
    optimizer: str = "sgd"
    momentum: float = 0.0
    lr: tuple[float, float] = (1e-4, 0.3)
    batch: int = BATCH


MNIST_SUBSET = 5000  # 4,000 train / 1,000 validation images: an epoch in a second or two
TASKS = {
    t.name: t
    for t in (
        # §7's benchmark: all 9,900 train and validation images
        Task("mnist-cnn", "the benchmark of section 7 (all images)", "mnist-cnn"),
        Task(
            "cnn-sgd",
            "mnist-cnn, plain SGD: rates near the top learn best",
            "mnist-cnn",
            subset=MNIST_SUBSET,
        ),
        Task(
            "wide-sgd",
            "no pooling, a wide dense layer: large rates diverge",
            "bench_models:wide_cnn",
            subset=MNIST_SUBSET,
        ),
        Task(
            "cnn-momentum",
            "SGD with momentum 0.9: the good rate is about 10x lower",
            "mnist-cnn",
            subset=MNIST_SUBSET,
            momentum=0.9,
        ),
        Task(
            "cnn-adam",
            "Adam over 1e-5..1e-1: good rates in the lower half",
            "mnist-cnn",
            subset=MNIST_SUBSET,
            optimizer="adam",
            lr=(1e-5, 1e-1),
        ),
        Task(
            "mlp-sgd",
            "a user's MLP (no convolution), plain SGD",
            "bench_models:mlp",
            subset=MNIST_SUBSET,
        ),
        Task(
            "digits-sgd",
            "scikit-learn digits (8x8), mnist-cnn, SGD, batch 16",
            "mnist-cnn",
            dataset="digits",
            batch=16,
        ),
    )
}
DEFAULT_TASK = "mnist-cnn"
SUITE = ("cnn-sgd", "wide-sgd", "cnn-momentum", "cnn-adam", "mlp-sgd", "digits-sgd")
TASK = [TASKS[DEFAULT_TASK]]  # the task this process runs (--task)


def study_text(
    budget_epochs: int | None, task: Task | None = None, range_test: bool = False
) -> str:
    """The study file of the sweeper arms (no [sampler], [pruner] or baselines: the defaults);
    ``range_test``: the initial_lr range narrowed by the LR range test first."""
    task = task or TASK[0]
    budget = f"budget_epochs = {budget_epochs}\n" if budget_epochs is not None else ""
    families = ", ".join(f'"{f}"' for f in FAMILIES)
    if task.dataset == "mnist":
        data = (
            'dataset = "mnist"\npath = "studies/data/mnist-t10k"\nvalidation_fraction = 0.2\n'
            "test_fraction = 0.01\n"
        )
    else:
        data = f'dataset = "{task.dataset}"\n'
    if task.subset is not None:
        data += f"subset = {task.subset}\n"
    momentum = f"momentum = {task.momentum}\n" if task.momentum else ""
    narrowed = ", range_test = true" if range_test else ""
    return f"""\
[study]
name = "bench-search"
seed = 0
n_trials = 500
{budget}
[data]
{data}
[train]
model = "{task.model}"
batch_size = {task.batch}
epochs = {EPOCHS}

[space]
schedules = [{families}]
initial_lr = {{ low = {task.lr[0]}, high = {task.lr[1]}, log = true{narrowed} }}
optimizer = "{task.optimizer}"
{momentum}"""


class BudgetSpent(BaseException):
    """Raised by the epoch counter once the budget is trained: a BaseException, because
    KerasTuner (and Optuna) catch Exception per trial."""


@dataclass
class Setup:
    task: Task
    dataset: Any  # sweeper.training.data.Dataset
    space: Any  # sweeper.studyfile.config.SpaceSpec
    steps_per_epoch: int
    budget: int
    tmp: Path


@dataclass
class Run:
    arm: str
    seed: int
    seconds: float
    curve: list[float]  # val_accuracy of each trained epoch, in training order (<= budget)
    configs: list[str]  # the configuration each of those epochs trained
    trained: int  # epochs trained in all (the sweeper fallback may overshoot the budget)
    task: str = DEFAULT_TASK


def _finite(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return 0.0
    return out if math.isfinite(out) else 0.0


def config_key(family: str, values: Any) -> str:
    return json.dumps({"schedule": family, **dict(values)}, sort_keys=True, default=str)


def make_counter(budget: int) -> Any:
    """A callback counting every trained epoch; it raises BudgetSpent at the budget."""
    import keras

    class EpochCounter(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.curve: list[float] = []
            self.configs: list[str] = []
            self.config = "?"  # set by whoever builds the model

        def __deepcopy__(self, memo: dict[int, Any]) -> EpochCounter:
            return self  # KerasTuner deep-copies the callbacks of each trial: keep one count

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.curve.append(_finite((logs or {}).get("val_accuracy")))
            self.configs.append(self.config)
            if len(self.curve) >= budget:
                raise BudgetSpent

    return EpochCounter()


def compiled_model(setup: Setup, family: str, values: Any) -> Any:
    """The task's network under sweeper's schedule for these values, the task's optimizer."""
    from sweeper.training.models import build_model
    from sweeper.training.optimizers import OptimizerSpec
    from sweeper.training.schedules import from_dimensions

    ds = setup.dataset
    schedule = from_dimensions(
        family, dict(values), steps_per_epoch=setup.steps_per_epoch, epochs=EPOCHS
    )
    task = setup.task
    model = build_model(task.model, ds.input_shape, ds.num_classes, None)
    model.compile(
        optimizer=OptimizerSpec(task.optimizer, task.momentum).build(schedule.keras()),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def fit_kwargs(setup: Setup) -> dict[str, Any]:
    ds = setup.dataset
    return {
        "batch_size": setup.task.batch,
        "epochs": EPOCHS,
        "validation_data": (ds.x_val, ds.y_val),
        "shuffle": True,
        "verbose": 0,
    }


def run_keras_tuner(setup: Setup, seed: int, arm: str) -> Run:
    import keras
    import keras_tuner as kt

    from sweeper.search.space import dimensions_for
    from sweeper.studyfile.dimensions import DIMENSIONS, Choices, Fixed, Range

    optimizer_dims = ("optimizer", "momentum", "nesterov")  # pinned: plain SGD
    counter = make_counter(setup.budget)

    def build(hp: Any) -> Any:
        family = hp.Choice("schedule", list(FAMILIES))
        values: dict[str, Any] = {}
        for name, dim in setup.space.dims.items():
            parents = [f for f in FAMILIES if f in DIMENSIONS[name].families]
            if not parents or name in optimizer_dims:
                continue
            if isinstance(dim, Fixed):
                value = dim.value if family in parents else None
            else:
                with hp.conditional_scope("schedule", parents):
                    if isinstance(dim, Choices):
                        value = hp.Choice(name, list(dim.values))
                        if value is not None and all(isinstance(v, bool) for v in dim.values):
                            value = bool(value)  # KerasTuner hands booleans back as 0 / 1
                    else:
                        assert isinstance(dim, Range) and not dim.integer, (name, dim)
                        sampling = "log" if dim.log else "linear"
                        value = hp.Float(name, dim.low, dim.high, sampling=sampling)
            if family in parents:
                values[name] = value
        assert set(values) == set(dimensions_for(family)) - set(optimizer_dims), values
        counter.config = config_key(family, values)
        return compiled_model(setup, family, values)

    keras.utils.set_random_seed(seed)
    common: dict[str, Any] = {
        "objective": "val_accuracy",
        "seed": 1 + seed * KT_SEED_STRIDE,
        "overwrite": True,
        "directory": str(setup.tmp / "kt"),
        "project_name": f"{arm}-{seed}",
    }
    t0 = time.perf_counter()
    if arm == "kt-hyperband":
        # one Hyperband iteration trains at least 9 epochs: never stop before the budget
        iterations = math.ceil(setup.budget / EPOCHS) + 1
        tuner: Any = kt.Hyperband(
            build, max_epochs=EPOCHS, factor=3, hyperband_iterations=iterations, **common
        )
    else:
        tuner = kt.RandomSearch(
            build, max_trials=setup.budget + 1, executions_per_trial=1, **common
        )
    ds = setup.dataset
    with contextlib.suppress(BudgetSpent):
        tuner.search(ds.x_train, ds.y_train, callbacks=[counter], **fit_kwargs(setup))
    seconds = time.perf_counter() - t0
    return Run(
        arm, seed, seconds, counter.curve, counter.configs, len(counter.curve), setup.task.name
    )


def run_optuna_loop(setup: Setup, seed: int, arm: str = "optuna-loop") -> Run:
    """What a user writes by hand: TPE + median pruning (``optuna-loop``) or Optuna's
    HyperbandPruner (``optuna-hyperband``: rungs at 1, 3, 9 epochs, factor 3), a trial = one
    9-epoch fit reporting each epoch."""
    import keras
    import optuna
    from optuna_integration import KerasPruningCallback

    from sweeper.search.space import sample

    counter = make_counter(setup.budget)
    ds = setup.dataset

    def objective(trial: optuna.Trial) -> float:
        config = sample(trial, setup.space)  # the same define-by-run space as sweeper's
        counter.config = config_key(config.family, config.values)
        keras.backend.clear_session()
        model = compiled_model(setup, config.family, config.values)
        history = model.fit(
            ds.x_train,
            ds.y_train,
            callbacks=[counter, KerasPruningCallback(trial, "val_accuracy")],
            **fit_kwargs(setup),
        )
        return float(history.history["val_accuracy"][-1])

    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=(
            optuna.pruners.HyperbandPruner(min_resource=1, max_resource=EPOCHS, reduction_factor=3)
            if arm == "optuna-hyperband"
            else optuna.pruners.MedianPruner()
        ),
    )
    with contextlib.suppress(BudgetSpent):
        study.optimize(objective, n_trials=setup.budget + 1)
    seconds = time.perf_counter() - t0
    return Run(
        arm, seed, seconds, counter.curve, counter.configs, len(counter.curve), setup.task.name
    )


def peer_dims(setup: Setup) -> list[dict[str, Any]]:
    """The searched space as the DEHB and SMAC peers take it (scripts/bench_peers.py): the
    schedule family, then each family's own dimensions, conditional on it."""
    from sweeper.studyfile.dimensions import DIMENSIONS, Choices, Fixed, Range

    dims: list[dict[str, Any]] = [{"name": "schedule", "kind": "choice", "values": list(FAMILIES)}]
    for name, dim in setup.space.dims.items():
        parents = [f for f in FAMILIES if f in DIMENSIONS[name].families]
        if not parents or name in ("optimizer", "momentum", "nesterov") or isinstance(dim, Fixed):
            continue
        if isinstance(dim, Choices):
            dims.append(
                {"name": name, "kind": "choice", "values": list(dim.values), "parents": parents}
            )
        else:
            assert isinstance(dim, Range) and not dim.integer, (name, dim)
            dims.append(
                {
                    "name": name,
                    "kind": "float",
                    "low": dim.low,
                    "high": dim.high,
                    "log": dim.log,
                    "parents": parents,
                }
            )
    return dims


def run_multi_fidelity_peer(setup: Setup, seed: int, arm: str) -> Run:
    """DEHB or SMAC3's multi-fidelity facade (Hyperband + random forest): fidelities of 1, 3 and 9
    epochs, every evaluation a fresh model trained from epoch 0 (as both do), every epoch counted."""
    import bench_peers
    import keras

    from sweeper.studyfile.dimensions import DIMENSIONS, Fixed

    counter = make_counter(setup.budget)
    ds = setup.dataset
    pinned = {
        name: dim.value
        for name, dim in setup.space.dims.items()
        if isinstance(dim, Fixed) and name not in ("optimizer", "momentum", "nesterov")
    }

    def train(family: str, values: dict[str, Any], epochs: int) -> float:
        full = dict(values)
        for name, value in pinned.items():  # a pinned dimension the family uses
            if family in DIMENSIONS[name].families:
                full[name] = value
        counter.config = config_key(family, full)
        keras.backend.clear_session()
        model = compiled_model(setup, family, full)
        kwargs = {**fit_kwargs(setup), "epochs": int(epochs)}
        history = model.fit(ds.x_train, ds.y_train, callbacks=[counter], **kwargs)
        return _finite(history.history["val_accuracy"][-1])

    run = bench_peers.run_dehb if arm == "dehb" else bench_peers.run_smac
    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    workdir = setup.tmp / f"{arm}-{seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    run(peer_dims(setup), train, seed, 1, EPOCHS, BudgetSpent, workdir)
    seconds = time.perf_counter() - t0
    return Run(
        arm, seed, seconds, counter.curve, counter.configs, len(counter.curve), setup.task.name
    )


def run_sweeper(setup: Setup, seed: int, arm: str) -> Run:
    import keras
    import optuna

    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import tune
    from sweeper.store.store import Store
    from sweeper.studyfile.config import parse_study

    overrides = [f"study.seed={seed}"]
    if arm == "sweeper-previous":
        overrides += PREVIOUS_DEFAULTS
    elif arm == "sweeper":
        overrides += SWEEPER_SET
    overrides += CANDIDATE_SETS.get(arm, [])
    text = study_text(setup.budget, setup.task, range_test=arm == "sweeper-range-ref")
    spec = parse_study(text, "<bench_search>", base_dir=ROOT, overrides=overrides)
    n_trials = 500  # the budget stops the study
    name = f"{arm}-{seed}"
    url = f"sqlite:///{setup.tmp / (name + '.db')}"
    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    with top_reference_only(arm == "sweeper-top-ref"), reference_rules(arm):
        tune(
            spec,
            RunOptions(
                storage=url,
                study_name=name,
                n_trials=n_trials,
                checkpoint_dir=str(setup.tmp / f"ckpt-{name}"),
            ),
        )
    seconds = time.perf_counter() - t0
    store = Store(url)
    try:
        rows = store.ledger(name)
        tested = range_test_epochs(store, spec, name, setup.steps_per_epoch)
    finally:
        store.close()
    study = optuna.load_study(study_name=name, storage=url)
    params = {t.number: config_key("", t.params) for t in study.get_trials(deepcopy=False)}
    # an LR range test that narrowed the space trained too: its epochs come first, so the
    # study's last epochs fall outside the budget
    curve = [0.0] * tested + [_finite(r.get("val_accuracy")) for r in rows]
    configs = ["lr range test"] * tested + [
        params.get(int(r["trial_number"]), str(r["trial_number"])) for r in rows
    ]
    return Run(
        arm,
        seed,
        seconds,
        curve[: setup.budget],
        configs[: setup.budget],
        len(curve),
        setup.task.name,
    )


@contextlib.contextmanager
def top_reference_only(on: bool) -> Any:
    """The defaults before the suite (``sweeper-top-ref``): the reference at the top of the range
    only, stopped when it stalls like any trial, never tried again lower."""
    from sweeper.search import reference

    if not on:
        yield
        return
    saved = reference.step_down, reference.is_last
    reference.step_down = lambda *a, **k: None  # type: ignore[assignment]
    reference.is_last = lambda *a, **k: False  # type: ignore[assignment]
    try:
        yield
    finally:
        reference.step_down, reference.is_last = saved


@contextlib.contextmanager
def reference_rules(arm: str) -> Any:
    """``sweeper-step2``: a reference that stalls or diverges is tried again at half its rate
    (:data:`STEP2`) instead of a third: a finer step, closer to the top on a network where the
    top diverges, one more epoch per factor of ten it has to go down."""
    from sweeper.search import reference

    saved = reference.STEP
    if arm == "sweeper-step2":
        reference.STEP = STEP2
    try:
        yield
    finally:
        reference.STEP = saved


def range_test_epochs(store: Any, spec: Any, name: str, steps_per_epoch: int) -> int:
    """The epochs (rounded up) that the study's LR range tests trained: their batches over
    the batches of an epoch."""
    from sweeper.search.lrfind import study_optimizers
    from sweeper.store.lrfind_store import latest_lr_find

    steps = 0
    for optimizer in study_optimizers(spec.space):
        result = latest_lr_find(store, name, spec.hash, optimizer)
        steps += len(result.lrs) if result is not None else 0
    return math.ceil(steps / steps_per_epoch)


def run_arm(setup: Setup, seed: int, arm: str) -> Run:
    if arm.startswith("kt-"):
        return run_keras_tuner(setup, seed, arm)
    if arm in ("optuna-loop", "optuna-hyperband"):
        return run_optuna_loop(setup, seed, arm)
    if arm in ("dehb", "smac"):
        return run_multi_fidelity_peer(setup, seed, arm)
    return run_sweeper(setup, seed, arm)


# -- the tables -----------------------------------------------------------------------------


def best_within(curve: list[float], b: int) -> float:
    return max(curve[:b], default=0.0)


def epochs_to_reach(curve: list[float], x: float) -> int | None:
    best = -math.inf
    for i, value in enumerate(curve):
        best = max(best, value)
        if best >= x:
            return i + 1
    return None


def mean_curve_reach(curves: list[list[float]], x: float) -> int | None:
    """The first b at which the seeds' mean best within b epochs is at least ``x``: the
    budget-wise reading of "epochs to reach X", defined even when a seed never reaches it."""
    n = min((len(c) for c in curves), default=0)
    for b in range(1, n + 1):
        if statistics.fmean(best_within(c, b) for c in curves) >= x:
            return b
    return None


def paired(c: dict[int, float], r: dict[int, float]) -> tuple[float, float, int] | None:
    """Mean and standard error of ``c - r`` over the seeds both hold (None below 2 seeds)."""
    diffs = [c[s] - r[s] for s in sorted(c.keys() & r.keys())]
    if len(diffs) < 2:
        return None
    return statistics.fmean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs)), len(diffs)


def report(runs: list[Run], arms: list[str], budget: int, reach_x: float | None = None) -> None:
    targets = sorted({b for b in BUDGETS if b <= budget} | {budget})
    budgets = sorted(set(targets) | ({REACH_TARGET} if budget >= REACH_TARGET else set()))
    by_arm = {arm: [r for r in runs if r.arm == arm] for arm in arms}
    n_seeds = len({r.seed for r in runs})

    def bests(arm: str, b: int) -> list[float]:
        return [best_within(r.curve, b) for r in by_arm[arm]]

    for b in budgets:
        print(f"best val_accuracy within {b} trained epochs (mean +- std over {n_seeds} seeds):")
        rows = [
            [
                arm,
                mean_std(bests(arm, b)),
                mean_std([float(len(set(r.configs[:b]))) for r in by_arm[arm]], ".1f"),
            ]
            for arm in arms
        ]
        print_table(["arm", f"best within {b}", f"configs tried within {b}"], rows)
        print()

    x: float | None = None
    if reach_x is not None:
        x = reach_x
        print(f"X = {x:.4f} (--reach-x)")
    elif by_arm.get(REFERENCE):
        at = min(REACH_AT, budget)
        x = statistics.fmean(bests(REFERENCE, at))
        print(f"X = {REFERENCE}'s mean best within {at} epochs = {x:.4f}")
    rows = []
    reach: dict[str, float | None] = {}
    reach_mean: int | None = None
    for arm in arms:
        mine = by_arm[arm]
        hits = [] if x is None else [epochs_to_reach(r.curve, x) for r in mine]
        reached = [float(h) for h in hits if h is not None]
        if x is None:
            cell = "-"
            reach[arm] = None
        elif len(reached) == len(mine):
            cell = mean_std(reached, ".1f")
            reach[arm] = statistics.fmean(reached)
        else:
            cell = f"not reached ({len(mine) - len(reached)} of {len(mine)} seeds)"
            reach[arm] = None
        per_seed = " ".join("-" if h is None else str(h) for h in hits)
        mean_at = None if x is None else mean_curve_reach([r.curve for r in mine], x)
        if arm == CANDIDATE:
            reach_mean = mean_at
        rows.append(
            [
                arm,
                cell,
                per_seed or "-",
                "-" if mean_at is None else str(mean_at),
                mean_std([r.seconds for r in mine], ".1f"),
                " ".join(str(r.trained) for r in mine),
            ]
        )
    print_table(
        [
            "arm",
            "epochs to reach X",
            "per seed",
            "mean best reaches X at",
            "wall s",
            "epochs trained (per seed)",
        ],
        rows,
    )
    print()

    if REFERENCE not in by_arm or CANDIDATE not in by_arm:
        return
    verdicts = []
    for b in budgets:
        c, r = bests(CANDIDATE, b), bests(REFERENCE, b)
        ok = statistics.fmean(c) >= statistics.fmean(r)
        if b in targets:
            verdicts.append(ok)
        pair = paired(
            {run.seed: best_within(run.curve, b) for run in by_arm[CANDIDATE]},
            {run.seed: best_within(run.curve, b) for run in by_arm[REFERENCE]},
        )
        same_seeds = (
            ""
            if pair is None
            else (f"; paired over {pair[2]} seeds {pair[0]:+.4f}, standard error {pair[1]:.4f}")
        )
        print(
            f"RESULT {b} epochs: {CANDIDATE} {statistics.fmean(c):.4f} vs {REFERENCE} "
            f"{statistics.fmean(r):.4f}"
            + (f" (target >=: {'yes' if ok else 'no'})" if b in targets else "")
            + same_seeds
        )
    if budget >= REACH_AT:
        c, r = bests(CANDIDATE, REACH_AT), bests(REFERENCE, REACH_AT)
        diff = statistics.fmean(c) - statistics.fmean(r)
        if len(c) > 1 and len(r) > 1:
            se = math.sqrt(statistics.variance(c) / len(c) + statistics.variance(r) / len(r))
            ok = diff > se
            print(
                f"RESULT {REACH_AT} epochs: {CANDIDATE} ahead by {diff:+.4f}, one standard error "
                f"of the difference {se:.4f} (target > 1 SE: {'yes' if ok else 'no'})"
            )
            verdicts.append(ok)
        else:
            print(f"RESULT {REACH_AT} epochs: ahead by {diff:+.4f}; one seed, no standard error")
    epochs = reach.get(CANDIDATE)
    ok = epochs is not None and epochs <= REACH_TARGET
    verdicts.append(ok)
    shown = "not reached" if epochs is None else f"{epochs:.1f} epochs"
    print(
        f"RESULT reach X: {CANDIDATE} {shown} (target <= {REACH_TARGET}: {'yes' if ok else 'no'})"
    )
    if reach_mean is not None:
        print(
            f"RESULT reach X, mean over seeds: {CANDIDATE}'s mean best within b epochs reaches X "
            f"at b = {reach_mean} ({'within' if reach_mean <= REACH_TARGET else 'beyond'} "
            f"{REACH_TARGET})"
        )
    print(f"RESULT targets {'met' if all(verdicts) else 'missed'}")


def describe_space(space: Any) -> str:
    from sweeper.studyfile.dimensions import Auto, Choices, Fixed, Range

    parts = []
    for name, dim in space.dims.items():
        if not space.used(name):
            continue
        if isinstance(dim, Auto) and dim.within is not None:
            w = dim.within
            parts.append(f"{name} [{w.low:g}, {w.high:g}] log, narrowed by an LR range test")
        elif isinstance(dim, Range):
            parts.append(f"{name} [{dim.low:g}, {dim.high:g}]{' log' if dim.log else ''}")
        elif isinstance(dim, Choices):
            parts.append(f"{name} {{{', '.join(map(str, dim.values))}}}")
        elif isinstance(dim, Fixed):
            parts.append(f"{name} = {dim.value}")
    return ", ".join(parts)


# -- main ------------------------------------------------------------------------------------


def parse_arms(text: str) -> list[str]:
    arms = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise SystemExit(
            f"--arms: unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}"
        )
    return list(dict.fromkeys(arms))


def from_json(paths: str, reach_x: float | None = None) -> int:
    """The tables of one or more saved ``--out`` files (comma separated), their runs together:
    the same budget and data, other seeds (a run of the same arm and seed counts once)."""
    runs: dict[tuple[str, str, int], Run] = {}
    arms: list[str] = []
    budgets, sources = set(), set()
    files = [p for path in paths.split(",") for p in _json_files(path)]
    for path in files:
        data = json.loads(path.read_text())
        print(f"bench_search: tables rebuilt from {path}")
        print(f"recorded run: {data['command']} ({data['date']}); {data['data']}")
        budgets.add(int(data["budget"]))
        sources.add(data["data"])
        arms += [a for a in data["arms"] if a not in arms]
        for r in data["runs"]:
            run = Run(**r)
            runs.setdefault((run.task, run.arm, run.seed), run)
    tasks = list(dict.fromkeys(r.task for r in runs.values()))
    if len(budgets) > 1 or (len(sources) > 1 and len(tasks) == 1):
        raise SystemExit("--from-json: the files hold runs of different budgets or data")
    print()
    if len(tasks) > 1:
        suite_report(list(runs.values()), arms, budgets.pop())
    else:
        report(list(runs.values()), arms, budgets.pop(), reach_x)
    return 0


def _json_files(path: str) -> list[Path]:
    """A saved --out file, or every one in a --suite folder."""
    p = Path(path)
    return sorted(p.glob("*.json")) if p.is_dir() else [p]


# -- the suite ---------------------------------------------------------------------------------


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (0 for one value)."""
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return statistics.fmean(values), se


def ranks(means: dict[str, float]) -> dict[str, float]:
    """Rank 1 = the highest mean; ties share the mean of their ranks."""
    order = sorted(means, key=lambda a: -means[a])
    out: dict[str, float] = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and means[order[j + 1]] == means[order[i]]:
            j += 1
        for a in order[i : j + 1]:
            out[a] = (i + j) / 2 + 1
        i = j + 1
    return out


def suite_report(runs: list[Run], arms: list[str], budget: int) -> None:
    """Per budget: the task x arm table of mean +- s.e. best within b, each arm's rank on each
    task and its mean rank; then the targets at 25 and 75 epochs."""
    tasks = [t for t in TASKS if any(r.task == t for r in runs)]
    cells: dict[tuple[str, str], list[float]] = {}
    budgets = sorted({b for b in (*BUDGETS, REACH_TARGET) if b <= budget} | {budget})
    mean_ranks: dict[int, dict[str, float]] = {}
    stats: dict[int, dict[tuple[str, str], tuple[float, float, int]]] = {}
    for b in budgets:
        stats[b] = {}
        for task in tasks:
            for arm in arms:
                mine = [r for r in runs if r.task == task and r.arm == arm]
                if mine:
                    cells[task, arm] = [best_within(r.curve, b) for r in mine]
                    m, se = mean_se(cells[task, arm])
                    stats[b][task, arm] = (m, se, len(mine))
        present = [a for a in arms if all((t, a) in stats[b] for t in tasks)]
        # each task ranks the arms run on it; the mean rank is for the arms run on every task
        per_task = {
            t: ranks({a: stats[b][t, a][0] for a in arms if (t, a) in stats[b]}) for t in tasks
        }
        mean_ranks[b] = {a: statistics.fmean(per_task[t][a] for t in tasks) for a in present}
        print(f"best val_accuracy within {b} trained epochs (mean +- s.e. over seeds; rank):")
        rows = []
        for task in tasks:
            row = [task]
            for arm in arms:
                if (task, arm) not in stats[b]:
                    row.append("-")
                    continue
                m, se, n = stats[b][task, arm]
                rank = per_task[task].get(arm)
                row.append(f"{m:.4f} +- {se:.4f} ({n})" + (f" #{rank:g}" if rank else ""))
            rows.append(row)
        rows.append(
            ["mean rank"] + [f"{mean_ranks[b][a]:.2f}" if a in mean_ranks[b] else "-" for a in arms]
        )
        print_table(["task", *arms], rows)
        print()
    if set(arms) <= set(CANDIDATES) and len(arms) > 1:
        choose(mean_ranks)
        return
    if CANDIDATE not in arms:
        return
    verdicts: list[bool] = []
    peers = [a for a in arms if a not in SWEEPER_ARMS]
    for b in (25, 75):
        if b not in mean_ranks or CANDIDATE not in mean_ranks[b]:
            continue
        best = min(mean_ranks[b].values())
        ok = mean_ranks[b][CANDIDATE] == best
        verdicts.append(ok)
        print(
            f"RESULT {b} epochs: {CANDIDATE}'s mean rank {mean_ranks[b][CANDIDATE]:.2f}, the best "
            f"{best:.2f} (target: the best: {'yes' if ok else 'no'})"
        )
    at = min(75, budget)
    for task in tasks:
        if (task, CANDIDATE) not in stats[at]:
            continue
        m, se, _ = stats[at][task, CANDIDATE]
        there = [a for a in peers if (task, a) in stats[at]]
        if not there:
            continue
        top = max(there, key=lambda a: stats[at][task, a][0])
        pm, pse, _ = stats[at][task, top]
        diff, joint = m - pm, math.sqrt(se**2 + pse**2)
        ok = diff >= -joint
        verdicts.append(ok)
        print(
            f"RESULT {task} at {at}: {CANDIDATE} {m:.4f} vs the best peer {top} {pm:.4f}: "
            f"{diff:+.4f}, one s.e. {joint:.4f} (target: not behind by more: "
            f"{'yes' if ok else 'no'})"
        )
    if ("wide-sgd", CANDIDATE) in stats[at]:
        m, se, _ = stats[at]["wide-sgd", CANDIDATE]
        for peer in ("kt-hyperband", "dehb"):
            if ("wide-sgd", peer) not in stats[at]:
                continue
            pm, pse, _ = stats[at]["wide-sgd", peer]
            diff, joint = m - pm, math.sqrt(se**2 + pse**2)
            ok = diff > joint
            verdicts.append(ok)
            print(
                f"RESULT wide-sgd at {at}: {CANDIDATE} ahead of {peer} by {diff:+.4f}, one s.e. "
                f"{joint:.4f} (target > 1 s.e.: {'yes' if ok else 'no'})"
            )
    print(f"RESULT suite targets {'met' if verdicts and all(verdicts) else 'missed'}")


def choose(mean_ranks: dict[int, dict[str, float]]) -> None:
    """The CHOICE line of ``--choose``: the candidate with the lowest mean of its mean ranks at 25
    and at 75 epochs (the budgets the targets name); a tie keeps the first of CANDIDATES."""
    at = [b for b in (25, 75) if b in mean_ranks]
    present = [a for a in CANDIDATES if all(a in mean_ranks[b] for b in at)]
    if not at or not present:
        return
    score = {a: statistics.fmean(mean_ranks[b][a] for b in at) for a in present}
    for a in present:
        ranks_at = ", ".join(f"{mean_ranks[b][a]:.2f} at {b}" for b in at)
        print(f"candidate {a}: mean rank {ranks_at}; score {score[a]:.2f}")
    best = min(present, key=lambda a: (score[a], CANDIDATES.index(a)))
    print(f"CHOICE {best} (the lowest mean of the mean ranks at {' and '.join(map(str, at))})")


def run_suite(args: argparse.Namespace, arms: list[str], tasks: list[str]) -> int:
    """Every (task, arm, seed) a job of its own: a process of this script writing its curves to
    ``--out-dir``, ``--jobs`` at a time, in the order of the arms, then the suite's tables. A
    run already in a file of the folder (any file: older ones hold several seeds) is kept."""
    import subprocess

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    done: set[tuple[str, str, int]] = set()
    for path in _json_files(str(out)):
        for r in json.loads(path.read_text())["runs"]:
            done.add((r["task"], r["arm"], int(r["seed"])))
    jobs = [(task, arm, seed) for arm in arms for task in tasks for seed in seeds]
    print(
        f"bench_search --suite: {len(jobs)} jobs ({len(tasks)} tasks x {len(arms)} arms x "
        f"{len(seeds)} seeds), budget {args.budget}, {args.jobs} at a time, into {out}/"
    )
    for task in tasks:
        print(f"  {task}: {TASKS[task].what}")
    running: list[tuple[subprocess.Popen[bytes], str, float]] = []
    t0 = time.perf_counter()

    def reap(block: bool) -> None:
        while running and (block or any(p.poll() is not None for p, _, _ in running)):
            for item in list(running):
                proc, label, start = item
                if proc.poll() is not None:
                    running.remove(item)
                    print(
                        f"  done {label}: rc {proc.returncode}, {time.perf_counter() - start:.0f} s",
                        flush=True,
                    )
            if block and running:
                time.sleep(2)
            else:
                break

    for task, arm, seed in jobs:
        stem = f"{task}--{arm}--seed{seed}"
        if (task, arm, seed) in done and not args.rerun:
            print(f"  kept {stem} (--rerun to run it again)")
            continue
        while len(running) >= args.jobs:
            reap(False)
            time.sleep(2)
        cmd = [
            sys.executable,
            __file__,
            "--task",
            task,
            "--arms",
            arm,
            "--seeds",
            str(seed),
            "--budget",
            str(args.budget),
            "--out",
            str(out / f"{stem}.json"),
        ]
        with open(out / f"{stem}.log", "w") as log:
            # SMAC iterates over a set of configurations: a fixed hash seed repeats its runs
            # one thread per job: --jobs processes share the cores
            env = {
                **os.environ,
                "PYTHONHASHSEED": "0",
                "TF_NUM_INTRAOP_THREADS": "1",
                "TF_NUM_INTEROP_THREADS": "1",
            }
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        running.append((proc, stem, time.perf_counter()))
        print(f"  started {stem}", flush=True)
    while running:
        reap(True)
    print(f"all jobs: {time.perf_counter() - t0:.0f} s")
    print()
    return from_json(str(out))


def save(
    path: str,
    command: str,
    data: str,
    budget: int,
    seeds: list[int],
    arms: list[str],
    runs: list[Run],
) -> None:
    blob = {
        "command": command,
        "date": machine_lines()[0].removeprefix("date: "),
        "data": data,
        "budget": budget,
        "seeds": seeds,
        "arms": arms,
        "runs": [asdict(r) for r in runs],
    }
    Path(path).write_text(json.dumps(blob, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="seeds, comma separated [default: 0,1,2]")
    parser.add_argument(
        "--budget", type=int, default=225, help="trained epochs per arm and seed [default: 225]"
    )
    parser.add_argument(
        "--arms",
        default=",".join(SECTION7_ARMS),
        help=f"comma separated, of {', '.join(ARMS)} [default: {','.join(SECTION7_ARMS)}]",
    )
    parser.add_argument("--quick", action="store_true", help="one seed, budget 25 (smoke test)")
    parser.add_argument("--out", default=None, help="write the anytime curves to this JSON file")
    parser.add_argument(
        "--from-json",
        default=None,
        help="print the tables of saved --out files (comma separated: their runs together)",
    )
    parser.add_argument(
        "--reach-x",
        type=float,
        default=None,
        metavar="X",
        help="the accuracy X of 'epochs to reach X' [default: kt-hyperband's mean best within 75 "
        "epochs in these runs]; set it to check other seeds, or runs without that arm, against "
        "a known X",
    )
    parser.add_argument(
        "--sweeper-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting of the 'sweeper' arm's study, to measure another default, e.g. "
        "--sweeper-set sampler.n_startup_trials=5 (repeatable)",
    )
    parser.add_argument(
        "--task",
        default=DEFAULT_TASK,
        choices=list(TASKS),
        help=f"the task one run measures [default: {DEFAULT_TASK}, section 7's benchmark]",
    )
    parser.add_argument(
        "--suite",
        action="store_true",
        help=f"every task of the suite ({', '.join(SUITE)}) x the suite's arms, one process per "
        "task and arm, then the task x arm tables and mean ranks",
    )
    parser.add_argument(
        "--choose",
        action="store_true",
        help=f"--suite with the reference candidates ({', '.join(CANDIDATES)}) as arms, then "
        "the CHOICE line; run it on seeds apart from the reporting ones",
    )
    parser.add_argument("--tasks", default=",".join(SUITE), help="--suite: the tasks to run")
    parser.add_argument("--jobs", type=int, default=2, help="--suite: processes at a time")
    parser.add_argument("--out-dir", default="suite-runs", help="--suite: where the curves go")
    parser.add_argument(
        "--rerun", action="store_true", help="--suite: run jobs whose curves are saved again"
    )
    args = parser.parse_args(argv)
    SWEEPER_SET[:] = args.sweeper_set
    TASK[0] = TASKS[args.task]
    if args.reach_x is not None and not 0.0 < args.reach_x <= 1.0:
        raise SystemExit(f"--reach-x must be an accuracy in (0, 1], got {args.reach_x}")
    if args.from_json:
        return from_json(args.from_json, args.reach_x)
    if args.suite:
        arms = parse_arms(args.arms) if args.arms != ",".join(SECTION7_ARMS) else list(SUITE_ARMS)
        if args.choose:
            arms = list(CANDIDATES)
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        unknown = [t for t in tasks if t not in TASKS]
        if unknown or not tasks:
            raise SystemExit(f"--tasks: unknown task(s) {unknown}; choose from {', '.join(TASKS)}")
        if args.quick:
            args.seeds, args.budget = args.seeds.split(",")[0], 12
        return run_suite(args, arms, tasks)
    arms = parse_arms(args.arms)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.quick:
        seeds, args.budget = seeds[:1], 25
    if args.budget < 1 or not seeds:
        raise SystemExit("--budget must be >= 1 and --seeds must name at least one seed")

    from sweeper.training.backend import load_keras

    load_keras()  # quietly, before KerasTuner imports TensorFlow
    from importlib import metadata

    import optuna

    from sweeper.studyfile.config import parse_study
    from sweeper.training.data import load_dataset
    from sweeper.training.train_trial import steps_per_epoch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("bench_search: best val_accuracy per trained epoch, tuners side by side, same budget")
    for line in machine_lines():
        print(line)
    peers = []
    for pkg in ("keras-tuner", "tensorboard", "optuna-integration", "dehb", "smac", "ConfigSpace"):
        try:
            peers.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            peers.append(f"{pkg} missing")
    print(f"peers: {', '.join(peers)}")
    command = f"python {' '.join(sys.argv)}"
    print(f"command: {command}")
    base = parse_study(study_text(None), "<bench_search>", base_dir=ROOT)
    ds = load_dataset(base.data)
    task = TASK[0]
    spe = steps_per_epoch(len(ds.x_train), task.batch)
    print(f"task {task.name}: {task.what}")
    print(
        f"data: {ds.summary()} (train {len(ds.y_train):,}, validation {len(ds.y_val):,}); "
        f"{task.model}, {task.optimizer}"
        + (f" (momentum {task.momentum})" if task.momentum else "")
        + f", batch {task.batch}, trials of up to {EPOCHS} epochs ({spe} steps each)"
    )
    print(f"space: schedule in {{{', '.join(FAMILIES)}}}; {describe_space(base.space)}")
    print(f"budget {args.budget} trained epochs per arm and seed; seeds {seeds}; arms {arms}")
    if SWEEPER_SET:
        print(f"the sweeper arm runs with: {' '.join(SWEEPER_SET)}")
    print()

    runs: list[Run] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmpdir:
        setup = Setup(task, ds, base.space, spe, args.budget, Path(tmpdir))
        for i, seed in enumerate(seeds):
            k = i % len(arms)
            for arm in arms[k:] + arms[:k]:
                run = run_arm(setup, seed, arm)
                runs.append(run)
                print(
                    f"  seed {seed} {arm:<16} {run.seconds:7.1f} s  {run.trained:4d} epochs "
                    f"trained  best {best_within(run.curve, args.budget):.4f}  "
                    f"{len(set(run.configs))} configs",
                    flush=True,
                )
                if args.out:  # after every run, so a run cut short keeps what it did
                    save(args.out, command, ds.summary(), args.budget, seeds, arms, runs)
    print(f"all runs: {time.perf_counter() - t_all:.0f} s")
    print(f"load average at end (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    report(runs, arms, args.budget, args.reach_x)
    if args.out:
        print(f"anytime curves written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
