"""Which schedule space finds a good schedule in a fixed number of epochs?

Four arms search the same problem, the real MNIST test set shipped in studies/data/mnist-t10k
(6,000 train / 2,000 validation images, as studies/mnist-t10k.toml carves it), with mnist-cnn and
plain SGD, each under the same epoch budget (``[study] budget_epochs``: the study stops once that
many epochs were trained for it) and the same seeds:

* ``families-tpe``: the tutorials' nine families as one categorical dimension, each with its own
  conditional parameters (studies/mnist-t10k.toml's space), TPE;
* ``shape-tpe``: the one continuous family ``shape`` (warm-up, hold, polynomial decay, end
  ratio, initial rate; every dimension in every trial), TPE;
* ``shape-gp``: the same space with Optuna's GPSampler;
* ``schedule-free``: schedule-free SGD at a constant rate (5% warm-up), only the rate searched, TPE.

No baselines run and nothing is pruned, so every arm spends its budget on full tuned trials. For
each arm it prints, as mean +- std over the seeds, the best validation accuracy of a finished
trial and the epochs trained (in the study's training order, from its ledger) until an epoch
first reached the target validation accuracy.

    python scripts/bench_space.py                   # 5 seeds, 60 epochs (20 trials) per arm:
                                                    # 20 studies, a few hours on 2 CPU cores
    python scripts/bench_space.py --quick           # 1 seed, 6 epochs, 2,000 images (~2 min)
    python scripts/bench_space.py --budget 90 --target 0.97 --arms shape-tpe,shape-gp

Then, as ``sweeper evaluate`` does, the best trial of the winning arm (the arm with the best mean)
and of the best classic arm (families-tpe; the runner-up when families-tpe wins) are retrained on
train + validation ``--evaluate`` times each (seeds 0, 1, ...) and tested on the held-out 20%: test
accuracy mean +- std of each and their difference with its standard error. Each arm's trial is the
best over its seeds' studies.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import machine_lines, mean_std, print_table

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
MNIST_T10K = ROOT / "studies" / "data" / "mnist-t10k"
TUTORIAL_FAMILIES = (
    "constant",
    "time",
    "step",
    "exponential",
    "piecewise",
    "polynomial",
    "inverse_time",
    "cosine",
    "cosine_restarts",
)

# studies/mnist-t10k.toml's data, model and rate range; each arm adds its [sampler] and [space]
BASE = """
[study]
name = "{name}"
seed = {seed}
n_trials = {n_trials}
budget_epochs = {budget}

[data]
dataset = "mnist"
path = "{path}"
validation_fraction = 0.2
test_fraction = 0.2

[train]
model = "mnist-cnn"
batch_size = 64
epochs = {epochs}

[sampler]
type = "{sampler}"
n_startup_trials = {startup}

[pruner]
type = "none"
"""

# the continuous shape space, searched by TPE and by GP alike
SHAPE_SPACE = """
[space]
schedules = "shape"
initial_lr = {{ low = 0.001, high = 0.3, log = true }}
optimizer = "sgd"
"""

ARMS = {
    "families-tpe": (
        "tpe",
        """
[space]
schedules = [{families}]
initial_lr = {{ low = 0.001, high = 0.3, log = true }}
decay_rate = {{ low = 0.1, high = 0.9 }}
drop_every = {{ low = 1.0, high = 3.0 }}
time_decay = {{ low = 1e-5, high = 0.01, log = true }}
power = {{ low = 0.5, high = 3.0 }}
end_lr_factor = {{ low = 0.001, high = 0.5, log = true }}
restart_epochs = {{ low = 0.5, high = 2.0 }}
optimizer = "sgd"
""",
    ),
    "shape-tpe": ("tpe", SHAPE_SPACE),
    "shape-gp": ("gp", SHAPE_SPACE),
    "schedule-free": (
        "tpe",
        """
[space]
schedules = "constant"
initial_lr = {{ low = 0.001, high = 0.3, log = true }}
optimizer = "sgd_schedule_free"
schedule_free_warmup = 0.05
""",
    ),
}


def study_text(arm: str, seed: int, budget: int, epochs: int, startup: int) -> str:
    sampler, space = ARMS[arm]
    families = ", ".join(f'"{f}"' for f in TUTORIAL_FAMILIES)
    return BASE.format(
        name=f"{arm}-{seed}",
        seed=seed,
        n_trials=budget,  # the budget stops the study first: every trial trains an epoch or more
        budget=budget,
        path=MNIST_T10K.as_posix(),
        epochs=epochs,
        sampler=sampler,
        startup=startup,
    ) + space.format(families=families)


@dataclass
class Outcome:
    arm: str
    seed: int
    seconds: float
    epochs: int
    trials: int
    best: float | None
    to_target: int | None  # epochs trained until one reached the target, None if none did
    url: str  # the study's store, kept for the evaluation
    name: str


def run_one(
    arm: str, seed: int, args: argparse.Namespace, overrides: list[str], tmp: Path
) -> Outcome:
    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import tune
    from sweeper.store.store import Store
    from sweeper.studyfile.config import parse_study

    text = study_text(arm, seed, args.budget, args.epochs, args.startup)
    spec = parse_study(text, f"<{arm}>", base_dir=ROOT, overrides=overrides)
    url = f"sqlite:///{tmp / f'{arm}-{seed}.db'}"
    t0 = time.perf_counter()
    summary = tune(spec, RunOptions(storage=url, checkpoint_dir=str(tmp / "ckpt")))
    seconds = time.perf_counter() - t0
    store = Store(url)
    ledger = store.ledger(spec.name)
    store.close()
    to_target = next(
        (
            i + 1
            for i, row in enumerate(ledger)
            if row["val_accuracy"] is not None and row["val_accuracy"] >= args.target
        ),
        None,
    )
    c = summary.counts
    return Outcome(
        arm,
        seed,
        seconds,
        len(ledger),
        c["complete"] + c["pruned"] + c["failed"],
        summary.best_value,
        to_target,
        url,
        spec.name,
    )


def evaluate_arm(outcomes: list[Outcome], arm: str, repeats: int) -> tuple[str, list[float]]:
    """Retrain the best trial of ``arm`` over its seeds ``repeats`` times: (label, test accuracies)."""
    from sweeper.retraining.evaluate import evaluate

    mine = [o for o in outcomes if o.arm == arm and o.best is not None]
    best = max(mine, key=lambda o: o.best or 0.0)
    result = evaluate(best.name, storage=best.url, top=1, repeats=repeats)
    config = result.configs[0]
    print(f"  {arm:<14} seed {best.seed}'s trial {config.trial_number}: {config.label}", flush=True)
    for run in config.runs:
        print(f"    run seed {run.seed}: test accuracy {run.test_accuracy:.4f}", flush=True)
    return config.label, config.accuracies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--arms", default=",".join(ARMS), help=f"arms, ',' separated [default: {','.join(ARMS)}]"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 [default: 5]")
    parser.add_argument(
        "--budget", type=int, default=60, help="epochs trained per arm and seed [default: 60]"
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial [default: 3]")
    parser.add_argument(
        "--startup", type=int, default=6, help="random start-up trials per study [default: 6]"
    )
    parser.add_argument(
        "--target",
        type=float,
        default=0.97,
        help="validation accuracy whose first epoch is counted [default: 0.97]",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a study setting in every arm, e.g. --set data.subset=3000 (repeatable)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 seed, 6 epochs of 2-epoch trials on 2,000 images, target 0.8 (~2 min)",
    )
    parser.add_argument(
        "--evaluate",
        type=int,
        default=5,
        metavar="N",
        help="retrain the winner and the best classic arm N times each and test them "
        "(0: skip) [default: 5; 2 with --quick]",
    )
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    if args.quick:
        args.seeds, args.budget, args.epochs, args.startup = 1, 6, 2, 2
        args.target = min(args.target, 0.8)
        args.evaluate = min(args.evaluate, 2)
        overrides = ["data.subset=2000", *overrides]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arm {unknown[0]!r}; choose from {', '.join(ARMS)}")

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("bench_space: best validation accuracy per schedule space, same epoch budget and seeds")
    for line in machine_lines():
        print(line)
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"data: MNIST test set from {MNIST_T10K.relative_to(ROOT)} (80/20 train/validation of "
        f"the 80% not held out), mnist-cnn, SGD, batch 64, {args.epochs} epochs per trial; "
        f"budget {args.budget} epochs per study; {args.startup} random start-up trials; no "
        f"pruning, no baselines; seeds 0..{args.seeds - 1}; target val_accuracy {args.target:g}"
    )
    if overrides:
        print(f"overrides: {' '.join(overrides)}")
    print()

    outcomes: list[Outcome] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-space-") as tmpdir:
        for seed in range(args.seeds):
            k = seed % len(arms)  # rotated order: no arm always meets the same machine load
            for arm in arms[k:] + arms[:k]:
                o = run_one(arm, seed, args, overrides, Path(tmpdir))
                outcomes.append(o)
                best = "-" if o.best is None else f"{o.best:.4f}"
                reached = "not reached" if o.to_target is None else f"after {o.to_target} epochs"
                print(
                    f"  seed {seed} {arm:<14} {o.seconds:6.1f} s  {o.epochs:3d} epochs  "
                    f"{o.trials:3d} trials  best {best}  target {reached}",
                    flush=True,
                )
        print(f"all runs: {time.perf_counter() - t_all:.0f} s")
        print()
        print_arms(outcomes, arms, args)
        means = {
            arm: statistics.fmean([o.best for o in outcomes if o.arm == arm and o.best is not None])
            for arm in arms
            if any(o.arm == arm and o.best is not None for o in outcomes)
        }
        if len(means) > 1:
            top = max(means, key=lambda a: means[a])
            print(f"RESULT best mean val_accuracy: {top} ({means[top]:.4f})")
            classic = "families-tpe"
            if top == classic or classic not in means:
                classic = max((a for a in means if a != top), key=lambda a: means[a])
            if args.evaluate > 0:
                print_evaluation(outcomes, top, classic, args.evaluate)
    return 0


def print_arms(outcomes: list[Outcome], arms: list[str], args: argparse.Namespace) -> None:
    rows = []
    for arm in arms:
        mine = [o for o in outcomes if o.arm == arm]
        bests = [o.best for o in mine if o.best is not None]
        reached = [float(o.to_target) for o in mine if o.to_target is not None]
        rows.append(
            [
                arm,
                ARMS[arm][0],
                mean_std(bests) if bests else "-",
                (mean_std(reached, ".1f") if reached else "-") + f" ({len(reached)}/{len(mine)})",
                mean_std([float(o.trials) for o in mine], ".1f"),
                mean_std([float(o.epochs) for o in mine], ".1f"),
                mean_std([o.seconds for o in mine], ".0f"),
            ]
        )
    print(f"per arm over {args.seeds} seed(s) (mean +- std):")
    print_table(
        [
            "arm",
            "sampler",
            "best val_accuracy",
            f"epochs to {args.target:g} (reached)",
            "trials",
            "epochs",
            "wall s",
        ],
        rows,
    )
    print(f"load average at end (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def print_evaluation(outcomes: list[Outcome], winner: str, classic: str, repeats: int) -> None:
    print()
    print(
        f"test accuracy after retraining on train + validation, {repeats} runs each "
        "(sweeper evaluate --top 1):"
    )
    accs = {arm: evaluate_arm(outcomes, arm, repeats)[1] for arm in (winner, classic)}
    for arm, values in accs.items():
        print(f"  {arm:<14} test accuracy {mean_std(values)}")
    a, b = accs[winner], accs[classic]
    se = math.sqrt(
        (statistics.variance(a) / len(a) if len(a) > 1 else 0.0)
        + (statistics.variance(b) / len(b) if len(b) > 1 else 0.0)
    )
    diff = statistics.fmean(a) - statistics.fmean(b)
    ratio = f" ({diff / se:+.1f} SE)" if se > 0 else ""
    print(f"RESULT {winner} - {classic}: {diff:+.4f} +- {se:.4f} test accuracy{ratio}")


if __name__ == "__main__":
    sys.exit(main())
