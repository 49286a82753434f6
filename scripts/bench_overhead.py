"""What sweeper costs on top of plain Keras training: the same configurations, two ways.

K fixed configurations are written as ``[[baselines]]`` of a study file (random sampler, no
pruner, ``n_trials = K``, so every trial is one of them) and run

* through ``sweeper.search.runner.tune`` (SQLite store, per-epoch rows, per-epoch checkpoints, pruning
  callback, everything a real sweep does), and
* through a bare loop: ``build_model``, compile SGD with the same Keras schedule, ``fit`` with
  ``validation_data``, same epochs, batch size and seed, ``keras.backend.clear_session()`` first,

in one process on the same arrays, interleaved (bare, sweeper, bare, sweeper, ...) after a warm-up
of both paths. It prints the wall seconds of each pass and the ratio sweeper / bare. Target: <= 1.05.

The sweeper passes are instrumented (``model.fit``, ``gc.collect()``, checkpoint saves, epoch
rows, the pruning callback, ``prepare_study``, and everything outside ``run_trial``), so the share
of each part is timed, not guessed; the "attributed" ratio adds only those timed parts to the bare
pass and is not disturbed by other jobs on the machine. By default a second sweeper variant,
"lean", runs with the two largest costs switched off by monkeypatching (no per-epoch checkpoint,
no per-trial ``gc.collect()``), to measure what removing them would give. A control at the end
alternates single bare and sweeper trials one by one and compares their ``model.fit`` times.

    python scripts/bench_overhead.py              # 8 configurations, 3 rounds (~8 min)
    python scripts/bench_overhead.py --quick      # 3 configurations, 2 rounds (~2.5 min)
    python scripts/bench_overhead.py --variants full,no-gc,no-checkpoint,lean
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import machine_lines, print_table

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "studies" / "data" / "mnist-t10k"
TARGET = 1.05
FAMILIES = (
    "constant",
    "time",
    "step",
    "exponential",
    "piecewise",
    "polynomial",
    "inverse_time",
    "cosine",
)

# Every value a family uses is given, so nothing is left to the sampler.
CONFIGS: tuple[dict[str, Any], ...] = (
    {"name": "constant 0.05", "schedule": "constant", "initial_lr": 0.05},
    {"name": "time 0.1/1e-3", "schedule": "time", "initial_lr": 0.1, "time_decay": 0.001},
    {
        "name": "step 0.1 x0.5/epoch",
        "schedule": "step",
        "initial_lr": 0.1,
        "decay_rate": 0.5,
        "drop_every": 1.0,
    },
    {
        "name": "exponential 0.1 x0.5/epoch",
        "schedule": "exponential",
        "initial_lr": 0.1,
        "decay_rate": 0.5,
        "drop_every": 1.0,
        "staircase": False,
    },
    {
        "name": "piecewise 0.1/0.03/0.01",
        "schedule": "piecewise",
        "boundaries": [150, 300],
        "values": [0.1, 0.03, 0.01],
    },
    {
        "name": "polynomial 0.1 -> 0.001",
        "schedule": "polynomial",
        "initial_lr": 0.1,
        "power": 1.0,
        "end_lr_factor": 0.01,
    },
    {
        "name": "inverse_time 0.1, staircase",
        "schedule": "inverse_time",
        "initial_lr": 0.1,
        "decay_rate": 0.5,
        "drop_every": 1.0,
        "staircase": True,
    },
    {"name": "cosine 0.1", "schedule": "cosine", "initial_lr": 0.1},
)

VARIANTS = ("full", "no-checkpoint", "no-gc", "lean")
VARIANT_DOC = {
    "full": "sweeper as shipped",
    "no-checkpoint": "run_trial(backup_dir=None): no per-epoch BackupAndRestore",
    "no-gc": "the gc.collect() at the start of each trial skipped",
    "lean": "no-checkpoint and no-gc together",
}


# --------------------------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Study file
# --------------------------------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def study_text(
    data: Path, configs: tuple[dict[str, Any], ...], epochs: int, batch_size: int, seed: int
) -> str:
    families = sorted({c["schedule"] for c in configs}, key=FAMILIES.index)
    lines = [
        "[study]",
        'name = "overhead"',
        f"n_trials = {len(configs)}",
        f"seed = {seed}",
        "",
        "[data]",
        'dataset = "mnist"',
        f"path = {_toml(str(data))}",
        "validation_fraction = 0.2",
        "test_fraction = 0.01",
        "",
        "[train]",
        'model = "mnist-cnn"',
        f"batch_size = {batch_size}",
        f"epochs = {epochs}",
        "",
        "[sampler]",
        'type = "random"',
        "",
        "[pruner]",
        'type = "none"',
        "",
        "[space]",
        f"schedules = {_toml(families)}",
        'optimizer = "sgd"',
    ]
    for config in configs:
        lines += ["", "[[baselines]]"]
        lines += [f"{k} = {_toml(v)}" for k, v in config.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Timers and patches
# --------------------------------------------------------------------------------------------


@dataclass
class Timers:
    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, dt: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + dt
        self.calls[key] = self.calls.get(key, 0) + 1


def _timed(
    fn: Callable[..., Any], timers: Timers, key: str, cpu: bool = False
) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            timers.add(key, time.perf_counter() - t0)
            if cpu:
                timers.add(f"{key} cpu", time.process_time() - c0)

    return wrapper


@contextlib.contextmanager
def patched(patches: list[tuple[Any, str, Any]]) -> Iterator[None]:
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, value in patches:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def _fit_timer(timers: Timers) -> tuple[Any, str, Any]:
    import keras

    return (keras.Model, "fit", _timed(keras.Model.fit, timers, "model.fit", cpu=True))


@contextlib.contextmanager
def instrumented(variant: str, timers: Timers) -> Iterator[None]:
    """Time the parts of a sweeper trial; switch parts off for the ablation variants."""
    import keras
    from optuna_integration import KerasPruningCallback

    import sweeper.search.runner as study_mod
    import sweeper.training.train_trial as training
    from sweeper.store.store import Store

    original_run_trial = training.run_trial
    skip_checkpoint = variant in ("no-checkpoint", "lean")
    skip_gc = variant in ("no-gc", "lean")

    def run_trial(*args: Any, **kwargs: Any) -> Any:
        if skip_checkpoint:
            kwargs["backup_dir"] = None
        return original_run_trial(*args, **kwargs)

    def no_collect(*_args: Any) -> int:
        return 0

    collect = no_collect if skip_gc else _timed(gc.collect, timers, "gc.collect")

    class GcProxy:
        """The ``gc`` module as sweeper.training.train_trial sees it, with ``collect`` replaced."""

        def __getattr__(self, name: str) -> Any:
            return collect if name == "collect" else getattr(gc, name)

    bar = keras.callbacks.BackupAndRestore
    patches: list[tuple[Any, str, Any]] = [
        (training, "run_trial", _timed(run_trial, timers, "run_trial")),
        (training, "gc", GcProxy()),
        _fit_timer(timers),
        (study_mod, "prepare_study", _timed(study_mod.prepare_study, timers, "prepare_study")),
        (Store, "add_epoch", _timed(Store.add_epoch, timers, "epoch rows")),
        (bar, "on_epoch_end", _timed(bar.on_epoch_end, timers, "checkpoint save")),
        (bar, "on_train_end", _timed(bar.on_train_end, timers, "checkpoint delete")),
        (
            KerasPruningCallback,
            "on_epoch_end",
            _timed(KerasPruningCallback.on_epoch_end, timers, "pruning callback"),
        ),
    ]
    with patched(patches):
        yield


# --------------------------------------------------------------------------------------------
# The two ways
# --------------------------------------------------------------------------------------------


@dataclass
class PassResult:
    kind: str
    round: int
    seconds: float
    cpu_seconds: float
    val_acc: list[float]
    timers: Timers
    schedules: list[dict[str, Any]] = field(default_factory=list)


def bare_pass(spec: Any, schedules: list[Any], round_no: int) -> PassResult:
    import keras

    from sweeper.training.data import load_dataset
    from sweeper.training.models import build_model

    ds = load_dataset(spec.data)
    accs: list[float] = []
    timers = Timers()
    with patched([_fit_timer(timers)]):
        t0, c0 = time.perf_counter(), time.process_time()
        for schedule in schedules:
            keras.backend.clear_session()
            keras.utils.set_random_seed(spec.seed)
            model = build_model(spec.train.model, ds.input_shape, ds.num_classes)
            model.compile(
                optimizer=keras.optimizers.SGD(learning_rate=schedule.keras()),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                jit_compile=spec.train.jit_compile,
            )
            history = model.fit(
                ds.x_train,
                ds.y_train,
                batch_size=spec.train.batch_size,
                epochs=spec.train.epochs,
                validation_data=(ds.x_val, ds.y_val),
                shuffle=True,
                verbose=0,
            )
            accs.append(float(history.history["val_accuracy"][-1]))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return PassResult("bare", round_no, seconds, cpu, accs, timers)


def sweeper_pass(spec: Any, tmp: Path, variant: str, round_no: int, tag: str) -> PassResult:
    import optuna

    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import tune
    from sweeper.search.trial_record import SCHEDULE_ATTR

    timers = Timers()
    db = tmp / f"{tag}.db"
    url = f"sqlite:///{db}"
    with instrumented(variant, timers):
        t0, c0 = time.perf_counter(), time.process_time()
        summary = tune(spec, RunOptions(storage=url, checkpoint_dir=str(tmp / f"ckpt-{tag}")))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if summary.counts["complete"] != len(spec.baselines):
        raise SystemExit(f"sweeper pass {tag}: unexpected trial states {summary.counts}")
    study = optuna.load_study(study_name=summary.study_name, storage=url)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    accs = [float(t.value) for t in trials if t.value is not None]
    schedules = [dict(t.user_attrs[SCHEDULE_ATTR]) for t in trials]
    del study
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return PassResult(variant, round_no, seconds, cpu, accs, timers, schedules)


def control(spec: Any, schedule: Any, tmp: Path, pairs: int) -> None:
    """Bare fit and sweeper trial alternating one by one (one configuration): is model.fit
    itself slower inside sweeper, or is a pass-level difference load noise?"""
    import optuna

    from sweeper.store.store import Store
    from sweeper.training.data import load_dataset
    from sweeper.training.train_trial import TrainSettings

    ds = load_dataset(spec.data)
    store = Store(f"sqlite:///{tmp / 'control.db'}")
    study = optuna.create_study(
        storage=store.optuna_storage(), study_name="control", direction="maximize"
    )
    settings = TrainSettings(**{**spec.train.__dict__, "seed": spec.seed})
    samples: dict[str, list[tuple[float, float, float]]] = {"bare": [], "sweeper": []}

    def sweeper_trial() -> Timers:
        import sweeper.training.train_trial as training

        timers = Timers()
        with instrumented("full", timers):

            def objective(trial: optuna.Trial) -> float:
                def on_epoch(record: Any) -> None:
                    store.add_epoch("control", trial._trial_id, trial.number, record.to_dict())

                result = training.run_trial(
                    ds,
                    schedule,
                    None,
                    settings,
                    trial=trial,
                    on_epoch=on_epoch,
                    backup_dir=str(tmp / f"control-ckpt-{trial.number}"),
                )
                return float(result.value or 0.0)

            study.optimize(objective, n_trials=1)
        return timers

    for i in range(2 * pairs):
        kind = ("bare", "sweeper")[(i + i // 2) % 2]  # bare, sweeper, sweeper, bare, ...
        if kind == "bare":
            timers = bare_pass(spec, [schedule], 0).timers
            callbacks = 0.0
        else:
            timers = sweeper_trial()
            callbacks = sum(
                timers.seconds.get(k, 0.0)
                for k in ("checkpoint save", "checkpoint delete", "epoch rows", "pruning callback")
            )
        fit = timers.seconds["model.fit"]
        samples[kind].append((fit, timers.seconds["model.fit cpu"], fit - callbacks))
    store.close()
    ratios = [
        [s[j] / b[j] for s, b in zip(samples["sweeper"], samples["bare"], strict=True)]
        for j in range(3)
    ]
    print(
        f"control: {pairs} pairs of one-configuration trials alternating (bare, sweeper, "
        "sweeper, bare, ...); sweeper/bare ratio of model.fit, median over pairs:"
    )
    print(
        f"  wall {statistics.median(ratios[0]):.3f} (min-to-min "
        f"{min(x[0] for x in samples['sweeper']) / min(x[0] for x in samples['bare']):.3f}), "
        f"CPU {statistics.median(ratios[1]):.3f}, wall without sweeper's timed callbacks "
        f"{statistics.median(ratios[2]):.3f}"
    )
    print(
        "  (near 1.00 without callbacks: training itself runs as fast inside sweeper; the pairs "
        "are short, so under load a single pair can be off by 20% or more)"
    )
    print()


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def _mean(results: list[PassResult], key: str) -> float:
    return statistics.fmean(x.timers.seconds.get(key, 0.0) for x in results)


def _calls(results: list[PassResult], key: str) -> float:
    return statistics.fmean(x.timers.calls.get(key, 0) for x in results)


def report(results: list[PassResult], variants: list[str], n_trials: int, epochs: int) -> None:
    ways = ["bare", *variants]
    by = {k: [x for x in results if x.kind == k] for k in ways}
    rounds = sorted({x.round for x in results})

    # ------------------------------------------------------------------ per-round wall times
    rows = []
    ratios: dict[str, list[float]] = {v: [] for v in variants}
    for r in rounds:
        bare = next(x for x in by["bare"] if x.round == r)
        row = [str(r), f"{bare.seconds:.2f}"]
        for v in variants:
            s = next(x for x in by[v] if x.round == r)
            ratios[v].append(s.seconds / bare.seconds)
            row += [f"{s.seconds:.2f}", f"{s.seconds / bare.seconds:.3f}"]
        rows.append(row)
    wall = {k: sum(x.seconds for x in by[k]) for k in ways}
    best = {k: min(x.seconds for x in by[k]) for k in ways}
    cpu = {k: sum(x.cpu_seconds for x in by[k]) for k in ways}
    for label, values in (("sum", wall), ("best", best)):
        row = [label, f"{values['bare']:.2f}"]
        for v in variants:
            row += [f"{values[v]:.2f}", f"{values[v] / values['bare']:.3f}"]
        rows.append(row)
    headers = ["round", "bare s"]
    for v in variants:
        headers += [f"{v} s", f"{v}/bare"]
    print(f"wall seconds per pass of {n_trials} configurations x {epochs} epochs, ratio to bare:")
    print_table(headers, rows)
    print("  (sum: all rounds added; best: the fastest pass of each way, least disturbed by load)")
    print()

    # ------------------------------------------------------------------ where the time goes
    bare_fit = _mean(by["bare"], "model.fit")
    bare_mean = statistics.fmean(x.seconds for x in by["bare"])
    full = by["full"]
    full_mean = statistics.fmean(x.seconds for x in full)
    run_trial = _mean(full, "run_trial")
    fit = _mean(full, "model.fit")
    setup_bare = bare_mean - bare_fit
    print(
        f"where the time goes, mean seconds per pass ({n_trials} trials, {n_trials * epochs} "
        f"epochs); share = of the bare pass ({bare_mean:.2f} s):"
    )
    rows = []

    def add(part: str, sec: float, calls: float | None, how: str) -> None:
        per = f"{1000 * sec / calls:.1f}" if calls else "-"
        rows.append(
            [
                part,
                f"{sec:.3f}",
                f"{calls:.0f}" if calls else "-",
                per,
                f"{sec / bare_mean:+.1%}",
                how,
            ]
        )

    add("bare: model.fit", bare_fit, n_trials, "timed")
    add("bare: clear_session+build+compile", setup_bare, n_trials, "pass - fit")
    add("sweeper: model.fit (with callbacks)", fit, n_trials, "timed")
    for key in ("checkpoint save", "checkpoint delete", "epoch rows", "pruning callback"):
        add(f"  of which {key}", _mean(full, key), _calls(full, key), "timed")
    add(
        "  fit without those callbacks - bare fit",
        fit
        - sum(
            _mean(full, k)
            for k in ("checkpoint save", "checkpoint delete", "epoch rows", "pruning callback")
        )
        - bare_fit,
        n_trials,
        "difference, not timed",
    )
    add("sweeper: run_trial set-up (excl. fit)", run_trial - fit, n_trials, "run_trial - fit")
    add("  of which gc.collect()", _mean(full, "gc.collect"), _calls(full, "gc.collect"), "timed")
    add("sweeper: prepare_study (once per study)", _mean(full, "prepare_study"), 1, "timed")
    add(
        "sweeper: trial loop outside run_trial",
        full_mean - run_trial - _mean(full, "prepare_study"),
        n_trials,
        "pass - run_trial - prepare",
    )
    add("sweeper: whole pass - bare pass", full_mean - bare_mean, None, "difference")
    print_table(["part", "seconds", "calls", "ms/call", "share", "how"], rows)
    print(
        "  (trial loop outside run_trial: asking the study for a trial, sampling, user attributes,"
        " tell, the heartbeat thread, the failure-rate and finished-count queries; prepare_study:"
        " study creation, study file, baselines enqueued)"
    )
    print()

    # ------------------------------------------------------------------ sanity and result
    first_bare = by["bare"][0]
    diffs = [
        abs(a - b)
        for k in variants
        for x in by[k]
        for a, b in zip(x.val_acc, first_bare.val_acc, strict=True)
    ]
    print(
        f"largest |final val_accuracy, sweeper - bare| over all passes: {max(diffs):.4f} "
        "(0: the same training, bit for bit)"
    )
    print(f"load average at end (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    total = wall["full"] / wall["bare"]
    median = statistics.median(ratios["full"])
    best_ratio = best["full"] / best["bare"]
    verdict = "met" if best_ratio <= TARGET and median <= TARGET else "missed"
    print(
        f"RESULT sweeper/bare wall-time ratio: best passes {best_ratio:.3f}, median of rounds "
        f"{median:.3f}, all rounds {total:.3f}; target <= {TARGET}: {verdict}"
    )
    print("RESULT per variant (attributed = 1 + timed sweeper-only costs / bare pass):")
    rows = []
    for v in variants:
        extra = attributed(by[v])
        rows.append(
            [
                v,
                f"{best[v] / best['bare']:.3f}",
                f"{statistics.median(ratios[v]):.3f}",
                f"{wall[v] / wall['bare']:.3f}",
                f"{cpu[v] / cpu['bare']:.3f}",
                f"{1 + extra / bare_mean:.3f}",
                "met" if 1 + extra / bare_mean <= TARGET else "missed",
                VARIANT_DOC[v],
            ]
        )
    print_table(
        ["variant", "best", "median", "sum", "CPU", "attributed", "attributed <= 1.05", "what"],
        rows,
    )


SWEEPER_ONLY = (
    "gc.collect",
    "checkpoint save",
    "checkpoint delete",
    "epoch rows",
    "pruning callback",
)


def attributed(results: list[PassResult]) -> float:
    """Seconds per pass in parts only sweeper has, each timed rather than taken as a (noisy)
    difference of two passes: the timed parts inside ``run_trial`` plus everything outside it
    (study set-up and the trial loop)."""
    inside = sum(_mean(results, k) for k in SWEEPER_ONLY)
    outside = statistics.fmean(x.seconds for x in results) - _mean(results, "run_trial")
    return inside + outside


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=8, help="K configurations (1..8)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MNIST t10k IDX folder")
    parser.add_argument(
        "--variants",
        default="full,lean",
        help="comma-separated sweeper variants to interleave with the bare loop: "
        + "; ".join(f"{k}: {v}" for k, v in VARIANT_DOC.items()),
    )
    parser.add_argument(
        "--control-pairs",
        type=int,
        default=4,
        help="pairs of single trials alternating bare/sweeper after the passes (0: none)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 configurations, 2 rounds, 2 control pairs (~2.5 min)",
    )
    parser.add_argument("--small", action="store_true", help="the same as --quick")
    args = parser.parse_args(argv)
    if args.quick or args.small:
        args.configs, args.rounds = min(args.configs, 3), min(args.rounds, 2)
        args.control_pairs = min(args.control_pairs, 2)
        args.control_pairs = min(args.control_pairs, 2)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if any(v not in VARIANTS for v in variants) or "full" not in variants:
        parser.error(f"--variants must include 'full' and use only {', '.join(VARIANTS)}")
    if not 1 <= args.configs <= len(CONFIGS):
        parser.error(f"--configs must lie in 1..{len(CONFIGS)}")

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        "bench_overhead: sweeper.search.runner.tune vs a bare model.fit loop, same configurations"
    )
    for line in machine_lines():
        print(line)
    print(f"command: python {' '.join(sys.argv)}")

    from sweeper.studyfile.config import parse_study
    from sweeper.training.data import load_dataset
    from sweeper.training.schedules import from_dimensions
    from sweeper.training.train_trial import steps_per_epoch

    configs = CONFIGS[: args.configs]
    data = args.data.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmpdir:
        tmp = Path(tmpdir)
        text = study_text(data, configs, args.epochs, args.batch_size, args.seed)
        spec = parse_study(text, str(tmp / "overhead.toml"), base_dir=tmp)
        ds = load_dataset(spec.data)
        spe = steps_per_epoch(len(ds.x_train), spec.train.batch_size)
        schedules = []
        for c in configs:
            values = {k: v for k, v in c.items() if k != "name"}
            if "values" in values:
                values.setdefault("initial_lr", values["values"][0])
            family = str(values["schedule"])
            schedules.append(
                from_dimensions(family, values, steps_per_epoch=spe, epochs=args.epochs)
            )
        print(
            f"workload: {ds.summary()}; {spec.train.model}, batch {spec.train.batch_size}, "
            f"{spec.train.epochs} epochs of {spe} steps, {len(configs)} configurations "
            f"({', '.join(c['name'] for c in configs)}); {args.rounds} rounds of "
            f"{' / '.join(['bare', *variants])}, order alternating"
        )
        for v in variants:
            print(f"  {v}: {VARIANT_DOC[v]}")

        # warm-up: Keras (tracing machinery, oneDNN kernels) and the sweeper path
        t0 = time.perf_counter()
        warm_text = study_text(data, configs[:1], 1, args.batch_size, args.seed)
        warm = parse_study(warm_text, str(tmp / "warm.toml"), base_dir=tmp)
        bare_pass(warm, schedules[:1], 0)
        sweeper_pass(warm, tmp, "full", 0, "warm")
        print(f"warm-up (one 1-epoch run each way): {time.perf_counter() - t0:.1f} s")
        print()

        results: list[PassResult] = []
        for r in range(1, args.rounds + 1):
            order = ["bare", *variants] if r % 2 else [*variants, "bare"]
            for kind in order:
                if kind == "bare":
                    res = bare_pass(spec, schedules, r)
                else:
                    res = sweeper_pass(spec, tmp, kind, r, f"{kind}-{r}")
                    if res.schedules != [s.to_dict() for s in schedules]:
                        raise SystemExit(
                            f"{kind}: sweeper trained other schedules than the bare loop"
                        )
                results.append(res)
                print(f"  round {r} {kind:<14} {res.seconds:7.2f} s", flush=True)
        print()
        if args.control_pairs > 0:
            control(spec, schedules[0], tmp, args.control_pairs)
        report(results, variants, len(configs), args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
