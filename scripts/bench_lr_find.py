"""Does ``initial_lr = "auto"`` (the LR range test) beat a wide hand-set range?

Two studies per seed on a shrunk MNIST-t10k study (no baselines), the same trial budget and the
same sampler seed: one with ``initial_lr = { low = 1e-4, high = 1.0, log = true }``, one with
``initial_lr = "auto"``, whose log-uniform bounds come from the LR range test run once at the
start of the study (``sweeper.search.lrfind``). Printed per arm, over the seeds: the best validation
accuracy, how many trials ended below 50% validation accuracy (diverged trials included), how
many diverged, the wall time; and the range the test found for each seed.

    python scripts/bench_lr_find.py              # 3 seeds x 12 trials x 2 arms (~4 min)
    python scripts/bench_lr_find.py --quick      # 2 seeds x 6 trials (~1.5 min)
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import machine_lines, mean_std, print_table

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "studies" / "data" / "mnist-t10k"
FIXED_RANGE = "{ low = 1e-4, high = 1.0, log = true }"
ARMS = {"fixed": FIXED_RANGE, "auto": '"auto"'}
BELOW = 0.5


def study_text(
    data: Path,
    initial_lr: str,
    *,
    n_trials: int,
    seed: int,
    subset: int,
    epochs: int,
    batch_size: int,
    sampler: str,
    schedules: list[str],
) -> str:
    families = ", ".join(f'"{s}"' for s in schedules)
    return f"""[study]
name = "lrfind-bench"
n_trials = {n_trials}
seed = {seed}

[data]
dataset = "mnist"
path = "{data}"
subset = {subset}
validation_fraction = 0.2
test_fraction = 0.2

[train]
model = "mnist-cnn"
batch_size = {batch_size}
epochs = {epochs}

[sampler]
type = "{sampler}"
n_startup_trials = {max(1, n_trials // 2)}

[pruner]
type = "none"

[space]
schedules = [{families}]
initial_lr = {initial_lr}
decay_rate = {{ low = 0.1, high = 0.9 }}
drop_every = {{ low = 1.0, high = 3.0 }}
optimizer = "sgd"
"""


@dataclass
class Outcome:
    arm: str
    seed: int
    seconds: float
    range_test_seconds: float
    best: float | None
    finals: list[float]  # each trial's final validation accuracy (0 for a diverged trial)
    diverged: int
    lr_range: tuple[float, float] | None
    lrs: list[float] = field(default_factory=list)


def run_one(text: str, arm: str, seed: int, tmp: Path) -> Outcome:
    import optuna
    from optuna.trial import TrialState

    import sweeper.search.lrfind as lrfind
    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import tune
    from sweeper.search.trial_record import OUTCOME_ATTR
    from sweeper.studyfile.config import parse_study

    spent = [0.0]
    original = lrfind.suggest_range

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    spec = parse_study(text, str(tmp / f"{arm}-{seed}.toml"), base_dir=tmp)
    url = f"sqlite:///{tmp / f'{arm}-{seed}.db'}"
    lrfind.suggest_range = timed
    try:
        t0 = time.perf_counter()
        summary = tune(spec, RunOptions(storage=url, checkpoint_dir=str(tmp / "ckpt")))
        seconds = time.perf_counter() - t0
    finally:
        lrfind.suggest_range = original
    study = optuna.load_study(study_name=summary.study_name, storage=url)
    finals: list[float] = []
    lrs: list[float] = []
    diverged = 0
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(OUTCOME_ATTR) == "diverged":
            diverged += 1
            finals.append(0.0)
        elif t.state == TrialState.COMPLETE and t.value is not None:
            finals.append(float(t.value))
        else:
            values = [v for _, v in sorted(t.intermediate_values.items())]
            finals.append(float(values[-1]) if values else 0.0)
        if "initial_lr" in t.params:
            lrs.append(float(t.params["initial_lr"]))
    lr_range = next(iter(summary.lr_ranges.values()), None)
    return Outcome(
        arm, seed, seconds, spent[0], summary.best_value, finals, diverged, lr_range, lrs
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MNIST t10k IDX folder")
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--subset", type=int, default=3000, help="train + validation examples")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sampler", choices=("random", "tpe"), default="random")
    parser.add_argument(
        "--schedules", default="constant,exponential,step", help="comma-separated families"
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds x 6 trials (~1.5 min)")
    parser.add_argument("--small", action="store_true", help="the same as --quick")
    args = parser.parse_args(argv)
    if args.quick or args.small:
        args.n_trials, args.seeds = min(args.n_trials, 6), min(args.seeds, 2)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("bench_lr_find: initial_lr from a wide fixed range vs from the LR range test ('auto')")
    for line in machine_lines():
        print(line)
    print(f"command: python {' '.join(sys.argv)}")
    schedules = [s.strip() for s in args.schedules.split(",") if s.strip()]
    common: dict[str, Any] = {
        "n_trials": args.n_trials,
        "subset": args.subset,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "sampler": args.sampler,
        "schedules": schedules,
    }
    print(
        f"study: MNIST t10k ({args.data}), subset {args.subset} "
        f"({int(args.subset * 0.8)} train / {int(args.subset * 0.2)} validation), mnist-cnn, SGD, "
        f"batch {args.batch_size}, {args.epochs} epochs, schedules {', '.join(schedules)}, "
        f"{args.sampler} sampler, no pruner, no baselines; {args.n_trials} trials per study; "
        f"seeds 0..{args.seeds - 1} (sampler, training and range test)"
    )
    print(f'arms: fixed initial_lr = {FIXED_RANGE}; auto initial_lr = "auto"')
    print()

    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bench-lrfind-") as tmpdir:
        tmp = Path(tmpdir)
        for seed in range(args.seeds):
            order = list(ARMS) if seed % 2 == 0 else list(reversed(ARMS))
            for arm in order:
                text = study_text(args.data.resolve(), ARMS[arm], seed=seed, **common)
                o = run_one(text, arm, seed, tmp)
                outcomes.append(o)
                low = sum(1 for v in o.finals if v < BELOW)
                rng = f"  range [{o.lr_range[0]:.3g}, {o.lr_range[1]:.3g}]" if o.lr_range else ""
                best = "-" if o.best is None else f"{o.best:.4f}"
                print(
                    f"  seed {seed} {arm:<5} {o.seconds:6.1f} s  best {best}  "
                    f"{low:2d}/{len(o.finals)} below {BELOW:.0%}  {o.diverged} diverged{rng}",
                    flush=True,
                )
    print()

    rows = []
    for arm in ARMS:
        mine = [o for o in outcomes if o.arm == arm]
        bests = [o.best if o.best is not None else 0.0 for o in mine]
        lows = [float(sum(1 for v in o.finals if v < BELOW)) for o in mine]
        rows.append(
            [
                arm,
                mean_std(bests),
                f"{mean_std(lows, '.1f')} of {args.n_trials}",
                mean_std([float(o.diverged) for o in mine], ".1f"),
                mean_std([statistics.median(o.finals) for o in mine]),
                mean_std([o.seconds for o in mine], ".1f"),
                mean_std([o.range_test_seconds for o in mine], ".1f"),
            ]
        )
    print(f"per arm over {args.seeds} seeds (mean +- std):")
    print_table(
        [
            "arm",
            "best val_accuracy",
            f"trials < {BELOW:.0%}",
            "diverged",
            "median trial",
            "wall s",
            "range test s",
        ],
        rows,
    )
    print()
    print("auto range found by the LR range test (SGD), per seed:")
    for o in outcomes:
        if o.arm == "auto" and o.lr_range:
            ratio = o.lr_range[1] / o.lr_range[0]
            print(
                f"  seed {o.seed}: initial_lr in [{o.lr_range[0]:.3g}, {o.lr_range[1]:.3g}] "
                f"({ratio:.0f}x wide; the fixed arm searches 1e-4..1.0, 10000x)"
            )
    print(f"load average at end (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    by = {arm: [o for o in outcomes if o.arm == arm] for arm in ARMS}
    best = {a: statistics.fmean(o.best or 0.0 for o in v) for a, v in by.items()}
    low = {
        a: statistics.fmean(sum(1 for x in o.finals if x < BELOW) for o in v) for a, v in by.items()
    }
    print(
        f"RESULT best val_accuracy auto - fixed = {best['auto'] - best['fixed']:+.4f} "
        f"(auto {best['auto']:.4f}, fixed {best['fixed']:.4f}); trials below {BELOW:.0%}: "
        f"auto {low['auto']:.1f} vs fixed {low['fixed']:.1f} of {args.n_trials}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
