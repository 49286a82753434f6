"""Do the pruners save epochs without losing the best trial?

The same study runs once per pruner ("arm") and per repeat; within a repeat every arm has the same
seed (sampler and training) and the same trial budget, and the arms run in rotated order so that
no arm always meets the same machine load. For each arm it prints the epochs trained (rows in
``sweeper_epochs``), the wall time and the best validation accuracy, as mean +- std over the
repeats, and the saving in epochs against no pruning.

Target: >= 40% fewer epochs than ``none``, with the best value within one standard deviation of
``none``'s (mean best >= mean best of none - std of none).

An arm is a pruner type, optionally with settings: ``median``, ``successive_halving``,
``hyperband``, ``none``, or e.g. ``median:n_warmup_steps=0,n_startup_trials=2``. A bare type
uses the study file's settings (the shipped defaults).

    python scripts/bench_pruning.py                  # digits study, 12 trials, 4 arms x 3 repeats
    python scripts/bench_pruning.py --n-trials 24    # the study file's own budget (~20 min)
    python scripts/bench_pruning.py --quick          # 6 trials of 4 epochs, 2 repeats
    python scripts/bench_pruning.py --arms none,median:n_warmup_steps=1,successive_halving
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import machine_lines, mean_std, print_table

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_ARMS = "none,median,successive_halving,hyperband"
EPOCH_SAVING_TARGET = 0.40


def arm_overrides(arm: str) -> list[str]:
    """``median:n_warmup_steps=0,n_startup_trials=2`` -> study-file overrides."""
    kind, _, settings = arm.partition(":")
    out = [f"pruner.type={kind}"]
    for item in filter(None, (x.strip() for x in settings.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"arm {arm!r}: write settings as key=value, got {item!r}")
        out.append(f"pruner.{key.strip()}={value.strip()}")
    return out


@dataclass
class Outcome:
    arm: str
    seed: int
    seconds: float
    epochs: int
    best: float | None
    complete: int
    pruned: int
    failed: int


def run_one(
    study_file: str | None, overrides: list[str], arm: str, seed: int, n_trials: int, tmp: Path
) -> Outcome:
    import sqlalchemy as sa

    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import tune
    from sweeper.studyfile.config import load_study_file

    spec = load_study_file(study_file, [*overrides, f"study.seed={seed}", *arm_overrides(arm)])
    tag = f"{arm.replace(':', '_').replace(',', '_').replace('=', '')}-{seed}"
    url = f"sqlite:///{tmp / (tag + '.db')}"
    t0 = time.perf_counter()
    summary = tune(
        spec, RunOptions(storage=url, n_trials=n_trials, checkpoint_dir=str(tmp / "ckpt"))
    )
    seconds = time.perf_counter() - t0
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        epochs = int(conn.execute(sa.text("SELECT COUNT(*) FROM sweeper_epochs")).scalar_one())
    engine.dispose()
    c = summary.counts
    return Outcome(
        arm, seed, seconds, epochs, summary.best_value, c["complete"], c["pruned"], c["failed"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--study", default=None, help="study file [default: the embedded digits study]"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a study-file setting, e.g. --set data.subset=3000 (repeatable)",
    )
    parser.add_argument(
        "--arms",
        default=DEFAULT_ARMS,
        help="pruner arms separated by ',' (or ';'), each TYPE or TYPE:key=value,key=value "
        f"[default: {DEFAULT_ARMS}]",
    )
    parser.add_argument(
        "--n-trials",
        type=int,
        default=12,
        help="trial budget per study (the digits study file says 24; 12 keeps 4 arms x 3 "
        "repeats near 10 minutes on 2 busy cores) [default: 12]",
    )
    parser.add_argument("--repeats", type=int, default=3, help="seeds 0..repeats-1")
    parser.add_argument(
        "--quick", action="store_true", help="6 trials of 4 epochs, 2 repeats (~2.5 min)"
    )
    parser.add_argument("--small", action="store_true", help="the same as --quick")
    args = parser.parse_args(argv)
    if args.quick or args.small:
        args.n_trials = min(args.n_trials, 6)
        args.repeats = min(args.repeats, 2)
        args.overrides = ["train.epochs=4", *args.overrides]
    arms = split_arms(args.arms)
    if "none" not in arms:
        arms.insert(0, "none")

    import optuna

    from sweeper.studyfile.config import load_study_file

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("bench_pruning: epochs trained and best value per pruner, same seeds and budget")
    for line in machine_lines():
        print(line)
    print(f"command: python {' '.join(sys.argv)}")
    base = load_study_file(args.study, args.overrides)
    n_trials = args.n_trials
    from sweeper.training.data import load_dataset

    ds = load_dataset(base.data)
    print(
        f"study: {base.source} ({ds.summary()}); {base.train.model}, {base.train.epochs} epochs, "
        f"batch {base.train.batch_size}; sampler {base.sampler.kind} "
        f"(n_startup_trials {base.sampler.n_startup_trials}); {n_trials} trials, of which "
        f"{min(len(base.baselines), n_trials)} enqueued baselines; seeds 0..{args.repeats - 1}"
    )
    p = base.pruner
    print(
        f"study file's pruner settings (used by a bare arm name): n_startup_trials "
        f"{p.n_startup_trials}, n_warmup_steps {p.n_warmup_steps} (median); min_resource "
        f"{p.min_resource}, reduction_factor {p.reduction_factor} (successive_halving, hyperband)"
    )
    if args.overrides:
        print(f"overrides: {' '.join(args.overrides)}")
    print()

    outcomes: list[Outcome] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmpdir:
        for seed in range(args.repeats):
            k = seed % len(arms)
            for arm in arms[k:] + arms[:k]:
                o = run_one(args.study, args.overrides, arm, seed, n_trials, Path(tmpdir))
                outcomes.append(o)
                best = "-" if o.best is None else f"{o.best:.4f}"
                print(
                    f"  seed {seed} {arm:<40} {o.seconds:6.1f} s  {o.epochs:4d} epochs  "
                    f"best {best}  ({o.complete} complete, {o.pruned} pruned, {o.failed} failed)",
                    flush=True,
                )
    print(f"all runs: {time.perf_counter() - t_all:.0f} s")
    print()

    none = [o for o in outcomes if o.arm == "none"]
    none_best = [o.best for o in none if o.best is not None]
    none_mean = statistics.fmean(none_best) if none_best else float("nan")
    none_std = statistics.stdev(none_best) if len(none_best) > 1 else 0.0
    rows = []
    verdicts: list[str] = []
    for arm in arms:
        mine = [o for o in outcomes if o.arm == arm]
        pairs = [(o, next(n for n in none if n.seed == o.seed)) for o in mine]
        epochs_saved = 1 - sum(o.epochs for o in mine) / sum(n.epochs for _, n in pairs)
        time_ratio = statistics.fmean(o.seconds / n.seconds for o, n in pairs)
        bests = [o.best for o in mine if o.best is not None]
        best_mean = statistics.fmean(bests) if bests else float("nan")
        within = best_mean >= none_mean - none_std
        ok = arm == "none" or (epochs_saved >= EPOCH_SAVING_TARGET and within)
        rows.append(
            [
                arm,
                mean_std([float(o.epochs) for o in mine], ".1f"),
                f"{epochs_saved:.0%}",
                mean_std([o.seconds for o in mine], ".1f"),
                f"{time_ratio:.2f}",
                mean_std(bests) if bests else "-",
                mean_std([float(o.pruned) for o in mine], ".1f"),
                "-" if arm == "none" else ("met" if ok else "missed"),
            ]
        )
        if arm != "none":
            verdicts.append(
                f"RESULT {arm}: {epochs_saved:.0%} fewer epochs than none (target >= "
                f"{EPOCH_SAVING_TARGET:.0%}: {'yes' if epochs_saved >= EPOCH_SAVING_TARGET else 'no'}), "
                f"best {best_mean:.4f} vs none {none_mean:.4f} +- {none_std:.4f} (within one std: "
                f"{'yes' if within else 'no'}); target {'met' if ok else 'missed'}"
            )
    print(f"per arm over {args.repeats} repeats (mean +- std); ratios are against 'none':")
    print_table(
        [
            "arm",
            "epochs trained",
            "saved",
            "wall s",
            "wall/none",
            "best val_accuracy",
            "pruned trials",
            "target",
        ],
        rows,
    )
    print(f"load average at end (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    for line in verdicts:
        print(line)
    return 0


def split_arms(text: str) -> list[str]:
    """Arms separated by ';', or by ',' where the next item starts with a pruner type."""
    from sweeper.studyfile.settings import PRUNERS

    if ";" in text:
        return [a.strip() for a in text.split(";") if a.strip()]
    arms: list[str] = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        if item.partition(":")[0] in PRUNERS or not arms:
            arms.append(item)
        else:
            arms[-1] += "," + item  # a further setting of the previous arm
    return arms


if __name__ == "__main__":
    sys.exit(main())
