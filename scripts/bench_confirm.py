"""Does ``sweeper confirm`` pick a better winner than the study's single validation run?

The shipped ``studies/mnist-t10k.toml`` study (the real MNIST test set: 6,000 train / 2,000
validation / 2,000 test images, ``mnist-cnn``, SGD, 30 trials of 3 epochs, ASHA) is tuned once
per study seed (``study.seed`` = 0 .. 4 by default: each a different search). For each study:

* ``val-best``: the complete configuration (baselines excluded) with the best single validation
  run, the one the study picks;
* ``confirmed``: the winner of ``confirm --top 3 --seeds 3`` (:func:`sweeper.retraining.confirm.confirm`,
  the library call behind the command): the best mean validation accuracy over 3 retraining
  seeds of the top 3.

Each of the two (one, when they agree) is then trained as ``sweeper evaluate`` trains it: a fresh
network on the training and validation splits together, for the study's length, its schedule
rebuilt for the merged split's steps per epoch, ``--test-seeds`` seeds (default 5, the same
seeds for both: paired), scored once on the 2,000 test images. Printed per study: the two
configurations, their test accuracy (mean +- s.e. over the seeds), their paired difference, the
epochs the study trained and the epochs confirm added; then over the studies: how often the two
differ, the mean difference confirmed - val-best (+- s.e. over the studies; 0 where they agree)
and the cost of confirm in epochs. ``P(beats)``: confirm's probability that its winner beats
the runner-up (paired t over its seeds, :mod:`sweeper.retraining.confirmation`).

    python scripts/bench_confirm.py                 # 5 studies, ~30-40 min on 2 shared cores
    python scripts/bench_confirm.py --quick         # 1 study of 12 trials, top 2, 2 seeds
    python scripts/bench_confirm.py --out runs.json
    python scripts/bench_confirm.py --from-json runs.json   # the tables again, from saved runs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
if str(ROOT) not in sys.path:  # this checkout's sweeper, installed or not
    sys.path.insert(0, str(ROOT))

from benchlib import machine_lines, print_table  # noqa: E402

STUDY = ROOT / "studies" / "mnist-t10k.toml"
TEST_SEED0 = 1000  # the test runs' seeds: 1000, 1001, ... (no study or confirm run used them)


def mean_se(values: list[float], fmt: str = ".4f") -> str:
    """mean +- standard error (no spread for a single value); ``fmt`` formats the mean."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:{fmt}}"
    se = statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:{fmt}} +- {se:.4f}"


def one_study(
    tmp: Path, seed: int, overrides: list[str], top: int, seeds: int, test_seeds: int
) -> dict[str, Any]:
    """Tune the study with ``study.seed = seed``, confirm its top, test both winners."""
    import numpy as np
    import optuna

    from sweeper.retraining.confirm import confirm
    from sweeper.retraining.confirmation import candidates
    from sweeper.retraining.retrain import train_and_test, trial_config
    from sweeper.search.configurations import configurations
    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import tune
    from sweeper.store.store import Store
    from sweeper.studyfile.config import load_study_file
    from sweeper.training.data import load_dataset
    from sweeper.training.train_trial import steps_per_epoch

    spec = load_study_file(STUDY, [f"study.seed={seed}", *overrides])
    name = f"confirm-{seed}"
    url = f"sqlite:///{tmp / (name + '.db')}"
    t0 = time.perf_counter()
    summary = tune(spec, RunOptions(storage=url, study_name=name, checkpoint_dir=str(tmp / "ckpt")))
    tune_seconds = time.perf_counter() - t0
    tune_epochs = Store(url).epochs_spent(name)
    study = optuna.load_study(study_name=name, storage=url)
    configs = configurations(study.get_trials(deepcopy=False))
    val_best = candidates(configs)[0]
    print(
        f"study seed {seed}: {summary.ran} trials, {tune_epochs} epochs, {tune_seconds:.0f} s; "
        f"val-best trial {val_best.last.number} ({val_best.value:.4f})",
        flush=True,
    )
    t0 = time.perf_counter()
    confirmed = confirm(name, storage=url, top=top, seeds=seeds)
    confirm_seconds = time.perf_counter() - t0
    winner = confirmed.winner
    assert winner is not None
    cmp = confirmed.comparison
    print(
        f"  confirm --top {top} --seeds {seeds}: "
        + ", ".join(
            f"trial {c.trial_number} {c.mean or 0.0:.4f} (val {c.study_value:.4f})"
            for c in confirmed.configs
        )
        + f"; winner trial {winner.trial_number}"
        + ("" if cmp is None or cmp.probability is None else f", P(beats) {cmp.probability:.2f}")
        + f"; {confirmed.epochs_trained} epochs, {confirm_seconds:.0f} s",
        flush=True,
    )
    dataset = load_dataset(spec.data)
    x = np.concatenate([dataset.x_train, dataset.x_val])
    y = np.concatenate([dataset.y_train, dataset.y_val])
    spe = steps_per_epoch(len(x), spec.train.batch_size)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    tested: dict[int, list[float]] = {}
    for number in dict.fromkeys([val_best.last.number, winner.trial_number]):
        config = trial_config(trials[number], spec.space)
        run = (config.schedule(spe, spec.train.epochs), config.optimizer)
        tested[number] = []
        for k in range(test_seeds):
            acc, _ = train_and_test(x, y, dataset, run, spec.train, TEST_SEED0 + k)
            tested[number].append(acc)
        print(f"  trial {number}: test {mean_se(tested[number])}", flush=True)
    return {
        "study_seed": seed,
        "trials": summary.ran,
        "tune_epochs": tune_epochs,
        "tune_seconds": round(tune_seconds, 1),
        "confirm_epochs": confirmed.epochs_trained,
        "confirm_seconds": round(confirm_seconds, 1),
        "val_best": val_best.last.number,
        "val_best_value": val_best.value,
        "winner": winner.trial_number,
        "winner_mean": winner.mean,
        "probability": None if cmp is None else cmp.probability,
        "confirmed": [
            {"trial": c.trial_number, "val": c.study_value, "runs": c.accuracies}
            for c in confirmed.configs
        ],
        "test": {str(k): v for k, v in tested.items()},
    }


def summarize(results: list[dict[str, Any]], top: int, seeds: int, test_seeds: int) -> None:
    print(
        f"\nval-best single run vs confirmed winner (confirm --top {top} --seeds {seeds}); "
        f"test accuracy over {test_seeds} retraining seeds on train+validation, mean +- s.e."
    )
    rows, diffs = [], []
    for r in results:
        a, b = r["test"][str(r["val_best"])], r["test"][str(r["winner"])]
        d = [y - x for x, y in zip(a, b, strict=True)]
        diffs.append(statistics.fmean(d))
        rows.append(
            [
                str(r["study_seed"]),
                f"{r['val_best']} ({r['val_best_value']:.4f})",
                f"{r['winner']} ({r['winner_mean']:.4f})",
                "yes" if r["winner"] != r["val_best"] else "no",
                mean_se(a),
                mean_se(b),
                mean_se(d, "+.4f") if r["winner"] != r["val_best"] else "0",
                "-" if r["probability"] is None else f"{r['probability']:.2f}",
                str(r["tune_epochs"]),
                str(r["confirm_epochs"]),
            ]
        )
    print_table(
        [
            "seed",
            "val-best trial (val)",
            "confirmed (mean)",
            "differ",
            "test val-best",
            "test confirmed",
            "confirmed - val-best",
            "P(beats)",
            "epochs tune",
            "+ confirm",
        ],
        rows,
    )
    n = len(results)
    differ = sum(r["winner"] != r["val_best"] for r in results)
    tune_epochs = statistics.fmean(r["tune_epochs"] for r in results)
    confirm_epochs = statistics.fmean(r["confirm_epochs"] for r in results)
    print(f"\nthe confirmed winner differs from the val-best run in {differ} of {n} studies")
    print(
        f"test accuracy, confirmed - val-best, per study (0 where they agree): "
        f"{mean_se(diffs, '+.4f')} over {n} studies"
    )
    print(
        f"cost: {confirm_epochs:.0f} epochs per study on top of the search's {tune_epochs:.0f} "
        f"(+{confirm_epochs / tune_epochs:.0%})"
    )
    optimism = [r["val_best_value"] - statistics.fmean(r["confirmed"][0]["runs"]) for r in results]
    print(
        "the val-best's single validation run minus its mean over confirm's seeds (the "
        f"selection's optimism): {mean_se(optimism, '+.4f')} over {n} studies"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study-seeds", default="0,1,2,3,4")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3, help="confirm's seeds")
    parser.add_argument("--test-seeds", type=int, default=5)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", help="write every study's runs as JSON")
    parser.add_argument("--from-json", help="print the tables again from a file of --out")
    args = parser.parse_args(argv)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        summarize(results, args.top, args.seeds, args.test_seeds)
        return 0
    if args.quick:
        args.study_seeds, args.top, args.seeds, args.test_seeds = "0", 2, 2, 2
        args.overrides = ["study.n_trials=12", *args.overrides]
    study_seeds = [int(s) for s in args.study_seeds.split(",") if s]

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for line in machine_lines():
        print(line)
    print(
        f"command: python scripts/bench_confirm.py --study-seeds {args.study_seeds} --top "
        f"{args.top} --seeds {args.seeds} --test-seeds {args.test_seeds}"
        + "".join(f" --set {o}" for o in args.overrides),
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-confirm-") as tmp_name:
        for seed in study_seeds:
            results.append(
                one_study(
                    Path(tmp_name), seed, args.overrides, args.top, args.seeds, args.test_seeds
                )
            )
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=1))
    summarize(results, args.top, args.seeds, args.test_seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
