"""A whole study with packed trials against the same study one trial at a time.

The shipped ``studies/mnist-t10k.toml`` (the real MNIST test set, mnist-cnn, SGD, batch 64, its
baselines, TPE and ASHA) runs for each seed twice in one process, ``[train] pack = 1`` and
``pack = K`` (``--pack``, default 4), with the same sampler seed and the same number of trials;
the order of the two alternates from seed to seed so that neither always meets the same machine
load. Printed per run: the best validation accuracy, the wall time, the epochs trained and the
trials per hour; then, over the seeds, mean +- std of each and the wall-time ratio (pack 1 /
pack K) per seed.

    python scripts/bench_pack_study.py                       # 3 seeds, 30 trials: ~25 min
    python scripts/bench_pack_study.py --quick               # 1 seed, 8 trials on 2,000 images
    python scripts/bench_pack_study.py --pack 8 --set study.n_trials=40
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "mnist-t10k.toml"


@dataclass
class Run:
    pack: int
    seed: int
    seconds: float
    best: float | None
    epochs: int
    trials: int

    @property
    def per_hour(self) -> float:
        return self.trials * 3600.0 / self.seconds if self.seconds > 0 else 0.0


def run_one(pack: int, seed: int, overrides: list[str], folder: Path) -> Run:
    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import tune
    from sweeper.studyfile.config import load_study_file

    spec = load_study_file(STUDY, [f"study.seed={seed}", f"train.pack={pack}", *overrides])
    url = f"sqlite:///{folder / f'pack{pack}-seed{seed}.db'}"
    t0 = time.perf_counter()
    # a checkpoint folder per run: the studies share a name, their trials must not share folders
    summary = tune(
        spec, RunOptions(storage=url, checkpoint_dir=str(folder / f"ckpt-{pack}-{seed}"))
    )
    seconds = time.perf_counter() - t0
    c = summary.counts
    return Run(
        pack,
        seed,
        seconds,
        summary.best_value,
        summary.epochs_spent,
        c["complete"] + c["pruned"] + c["paused"] + c["failed"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pack", type=int, default=4, help="trials at once [default: 4]")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 [default: 3]")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting of the study in every run (repeatable)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 seed, 8 trials on 2,000 images (~3 min)"
    )
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    if args.quick:
        args.seeds = 1
        overrides = ["data.subset=2000", "study.n_trials=8", *overrides]

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("bench_pack_study: one study with packed trials vs one trial at a time")
    for line in machine_lines():
        print(line)
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"study: {STUDY.relative_to(ROOT)}; pack 1 vs pack {args.pack}; seeds 0..{args.seeds - 1}"
    )
    if overrides:
        print(f"overrides: {' '.join(overrides)}")
    print()

    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-pack-study-") as tmp:
        for seed in range(args.seeds):
            order = [1, args.pack] if seed % 2 == 0 else [args.pack, 1]
            for pack in order:
                r = run_one(pack, seed, overrides, Path(tmp))
                runs.append(r)
                best = "-" if r.best is None else f"{r.best:.4f}"
                print(
                    f"  seed {seed} pack {pack:<2} {r.seconds:7.1f} s  best {best}  "
                    f"{r.epochs:3d} epochs  {r.trials:3d} trials  {r.per_hour:5.0f} trials/h",
                    flush=True,
                )
    print()
    rows = []
    for pack in (1, args.pack):
        mine = [r for r in runs if r.pack == pack]
        bests = [r.best for r in mine if r.best is not None]
        rows.append(
            [
                f"pack {pack}",
                mean_std(bests) if bests else "-",
                mean_std([r.seconds for r in mine], ".0f"),
                mean_std([float(r.epochs) for r in mine], ".1f"),
                mean_std([r.per_hour for r in mine], ".0f"),
            ]
        )
    print(f"over {args.seeds} seed(s), mean +- std:")
    print_table(["run", "best val_accuracy", "wall s", "epochs", "trials/hour"], rows)
    ratios = []
    for seed in range(args.seeds):
        one = next(r for r in runs if r.seed == seed and r.pack == 1)
        many = next(r for r in runs if r.seed == seed and r.pack == args.pack)
        ratios.append(one.seconds / many.seconds)
    spread = f" +- {statistics.stdev(ratios):.2f}" if len(ratios) > 1 else ""
    print(
        f"RESULT wall time pack 1 / pack {args.pack}: {statistics.fmean(ratios):.2f}{spread} "
        f"(per seed: {', '.join(f'{x:.2f}' for x in ratios)})"
    )
    print(f"load average at end (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
