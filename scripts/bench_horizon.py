"""A schedule tuned on short trials, trained for longer: which rescaling rule carries it best?

The shipped ``studies/mnist-t10k.toml`` study (the real MNIST test set, 6,000 train / 2,000
validation / 2,000 test images, ``mnist-cnn``, SGD, 30 trials of 3 epochs, ASHA) is tuned once.
Its best configuration is then trained as a user trains a final model: a fresh network on the
training and validation splits together (8,000 images, so more steps per epoch than the trials
had), for 3x and 9x the trials' length (9 and 27 epochs), its schedule rebuilt by
``sweeper.training.handover.Tuned`` under each rule:

* ``fraction``: warm-ups, drops and decay ends at the same share of the run;
* ``epochs``: what was tuned in epochs stays in epochs; a decay over the run spans the new run.

Beside them, at each length:

* ``ceiling``: the best configuration of the same study tuned directly at that length (trials
  of 9 or 27 epochs; the same file, ``train.epochs`` set), trained the same way: how much of
  it a short study recovers;
* ``baseline``: the tutorial baseline that scored best on validation in the short study,
  rebuilt at that length as the study file states it (``sweeper evaluate``'s rebuild).

Every run is scored once on the 2,000 test images, which no trial saw. Seeds: ``--choose-seeds``
(default 0-4) decide the default rule; ``--report-seeds`` (default 5-9), which played no part in
the choice, report it. Printed: test accuracy mean +- s.e. per arm, length and seed group, and
the paired difference fraction - epochs (mean +- s.e. over seeds).

    python scripts/bench_horizon.py                     # ~70 min on 2 loaded cores
    python scripts/bench_horizon.py --quick             # one seed, lengths 6, ~5 min
    python scripts/bench_horizon.py --out runs.json     # keep every run
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from benchlib import machine_lines, print_table  # noqa: E402

STUDY = ROOT / "studies" / "mnist-t10k.toml"
RULES = ("fraction", "epochs")


def tune_study(tmp: Path, epochs: int) -> tuple[Any, Any, Any]:
    """The study tuned with trials of ``epochs`` epochs: its spec, best tuned trial and best
    baseline trial, and the study's steps per epoch."""
    import optuna

    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import tune
    from sweeper.search.trial_record import BASELINE_ATTR
    from sweeper.studyfile.config import load_study_file

    spec = load_study_file(STUDY, [f"train.epochs={epochs}"])
    name = f"horizon-{epochs}"
    url = f"sqlite:///{tmp / (name + '.db')}"
    t0 = time.perf_counter()
    summary = tune(spec, RunOptions(storage=url, study_name=name, checkpoint_dir=str(tmp / "ckpt")))
    print(
        f"tuned '{name}': {summary.ran} trials of {epochs} epochs, "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    study = optuna.load_study(study_name=name, storage=url)
    complete = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    complete = [t for t in complete if t.state.name == "COMPLETE"]
    complete.sort(key=lambda t: (-float(t.value), t.number))
    tuned = [t for t in complete if not t.user_attrs.get(BASELINE_ATTR)]
    baseline = next((t for t in complete if t.user_attrs.get(BASELINE_ATTR)), None)
    return spec, (tuned, baseline), study.user_attrs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--choose-seeds", default="0,1,2,3,4")
    parser.add_argument("--report-seeds", default="5,6,7,8,9")
    parser.add_argument("--lengths", default="9,27", help="final run lengths in epochs")
    parser.add_argument("--short", type=int, default=3, help="the short study's epochs")
    parser.add_argument(
        "--top", type=int, default=2, help="the short study's best K configurations (rules)"
    )
    parser.add_argument(
        "--per-family",
        action="store_true",
        help="instead: the best configuration of each family whose schedule the rules rebuild "
        "differently, both rules, the choose seeds only",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", help="write every run as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.choose_seeds, args.report_seeds, args.lengths = "0", "1", "6"
    choose = [int(s) for s in args.choose_seeds.split(",") if s]
    report = [int(s) for s in args.report_seeds.split(",") if s]
    lengths = [int(x) for x in args.lengths.split(",")]

    import numpy as np
    import optuna

    from sweeper.analysis.queries import baseline_of
    from sweeper.retraining.retrain import train_and_test, trial_config
    from sweeper.search.outcomes import tuned_of
    from sweeper.training.data import load_dataset
    from sweeper.training.train_trial import steps_per_epoch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for line in machine_lines():
        print(line)
    if args.per_family:
        return per_family(choose, lengths, args.short, args.out)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-horizon-") as tmp_name:
        tmp = Path(tmp_name)
        spec, (tops, base), attrs = tune_study(tmp, args.short)
        shorts = [
            tuned_of(t, int(attrs["epochs"]), int(attrs["steps_per_epoch"]))
            for t in tops[: args.top]
        ]
        for rank, (t, short) in enumerate(zip(tops, shorts, strict=False), start=1):
            print(
                f"short study #{rank}: trial {t.number}, val {t.value:.4f}, {short.schedule.describe()}"
            )
        if base is not None:
            print(f"best baseline: {baseline_of(base)} (val {base.value:.4f})")
        dataset = load_dataset(spec.data)
        x = np.concatenate([dataset.x_train, dataset.x_val])
        y = np.concatenate([dataset.y_train, dataset.y_val])
        spe = steps_per_epoch(len(x), spec.train.batch_size)
        print(f"final runs: {len(x)} images, {spe} steps per epoch; test {len(dataset.y_test)}")

        def train(arm: str, length: int, seed: int, schedule: Any, optimizer: Any) -> None:
            settings = replace(spec.train, epochs=length)
            t0 = time.perf_counter()
            acc, loss = train_and_test(x, y, dataset, (schedule, optimizer), settings, seed)
            runs.append(
                {
                    "arm": arm,
                    "length": length,
                    "seed": seed,
                    "test_accuracy": acc,
                    "test_loss": loss,
                    "schedule": schedule.describe(),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(f"  {arm:<9} {length:>3} epochs seed {seed}: test {acc:.4f}", flush=True)

        for length in lengths:
            for rank, short in enumerate(shorts, start=1):
                for rule in RULES:
                    horizon = short.horizon(length, spe, rule)
                    print(short.length_line(horizon), flush=True)
                    schedule = short.schedule_for(horizon)
                    optimizer = short.optimizer_spec_for(horizon)
                    arm = rule if rank == 1 else f"{rule}#{rank}"
                    for seed in choose + report:
                        train(arm, length, seed, schedule, optimizer)
            if base is not None:
                config = trial_config(base, spec.space)
                schedule = config.schedule(spe, length)
                for seed in choose + report:
                    train("baseline", length, seed, schedule, config.optimizer)
            _, ([top, *_], _), long_attrs = tune_study(tmp, length)
            ceiling = tuned_of(top, int(long_attrs["epochs"]), int(long_attrs["steps_per_epoch"]))
            print(f"ceiling at {length}: trial {top.number}, val {top.value:.4f}")
            horizon = ceiling.horizon(length, spe, "epochs")  # the same length: data size only
            for seed in choose + report:
                train(
                    "ceiling",
                    length,
                    seed,
                    ceiling.schedule_for(horizon),
                    ceiling.optimizer_spec_for(horizon),
                )
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=1))
    summarize(runs, lengths, {"choose": choose, "report": report})
    return 0


def per_family(seeds: list[int], lengths: list[int], short_epochs: int, out: str | None) -> int:
    """The rules on every family of the short study: its best complete configuration of each
    family the two rules rebuild differently (a decay over the whole run is rebuilt the same by
    both), trained at each length on ``seeds``."""
    import numpy as np

    from sweeper.retraining.retrain import train_and_test
    from sweeper.search.outcomes import tuned_of
    from sweeper.training.data import load_dataset
    from sweeper.training.train_trial import steps_per_epoch

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-horizon-") as tmp_name:
        spec, (tops, _), attrs = tune_study(Path(tmp_name), short_epochs)
    dataset = load_dataset(spec.data)
    x = np.concatenate([dataset.x_train, dataset.x_val])
    y = np.concatenate([dataset.y_train, dataset.y_val])
    spe = steps_per_epoch(len(x), spec.train.batch_size)
    best: dict[str, Any] = {}
    for t in tops:  # best first
        tuned = tuned_of(t, int(attrs["epochs"]), int(attrs["steps_per_epoch"]))
        best.setdefault(tuned.schedule.family, (t, tuned))
    for length in lengths:
        for family, (t, tuned) in best.items():
            built = {rule: tuned.schedule_for(tuned.horizon(length, spe, rule)) for rule in RULES}
            if built["fraction"] == built["epochs"]:
                continue
            print(f"{family}: trial {t.number}, val {t.value:.4f}", flush=True)
            for rule in RULES:
                horizon = tuned.horizon(length, spe, rule)
                print("  " + tuned.length_line(horizon), flush=True)
                settings = replace(spec.train, epochs=length)
                optimizer = tuned.optimizer_spec_for(horizon)
                for seed in seeds:
                    acc, _ = train_and_test(x, y, dataset, (built[rule], optimizer), settings, seed)
                    runs.append(
                        {
                            "family": family,
                            "arm": rule,
                            "length": length,
                            "seed": seed,
                            "test_accuracy": acc,
                            "schedule": built[rule].describe(),
                        }
                    )
                    print(
                        f"    {rule:<9} {length:>3} epochs seed {seed}: test {acc:.4f}", flush=True
                    )
    if out:
        Path(out).write_text(json.dumps(runs, indent=1))
    print(f"\ntest accuracy, mean +- s.e., seeds {','.join(map(str, seeds))}, per family")
    rows = []
    for length in lengths:
        diffs: list[float] = []
        for family in best:
            scores = {
                (r["arm"], r["seed"]): r["test_accuracy"]
                for r in runs
                if r["family"] == family and r["length"] == length
            }
            if not scores:
                continue
            pairs = [scores[("fraction", s)] - scores[("epochs", s)] for s in seeds]
            diffs += pairs
            rows.append(
                [
                    f"{family} {length} epochs",
                    mean_se([scores[("fraction", s)] for s in seeds]),
                    mean_se([scores[("epochs", s)] for s in seeds]),
                    mean_se(pairs),
                ]
            )
        print(
            f"RESULT per-family {length}: fraction - epochs {mean_se(diffs)} over {len(diffs)} pairs"
        )
    print_table(["family, length", "fraction", "epochs", "fraction - epochs"], rows)
    return 0


def rule_difference(runs: list[dict[str, Any]], length: int, seeds: list[int]) -> str:
    """fraction - epochs over every configuration (rank) and seed, paired."""
    acc = {
        (r["arm"], r["seed"]): r["test_accuracy"]
        for r in runs
        if r["length"] == length and r["seed"] in seeds
    }
    diffs = [
        value - acc[(arm.replace("fraction", "epochs"), seed)]
        for (arm, seed), value in acc.items()
        if arm.startswith("fraction") and (arm.replace("fraction", "epochs"), seed) in acc
    ]
    return f"{mean_se(diffs)} over {len(diffs)} pairs"


def mean_se(values: list[float]) -> str:
    if not values:
        return "-"
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} +- {se:.4f}"


def summarize(runs: list[dict[str, Any]], lengths: list[int], groups: dict[str, list[int]]) -> None:
    arms = ["fraction", "epochs", "ceiling", "baseline"]
    for group, seeds in groups.items():
        if not seeds:
            continue
        print(f"\ntest accuracy, mean +- s.e., seeds {','.join(map(str, seeds))} ({group})")
        rows = []
        for length in lengths:
            cells = [f"{length} epochs"]
            acc: dict[str, dict[int, float]] = {}
            for arm in arms:
                acc[arm] = {
                    r["seed"]: r["test_accuracy"]
                    for r in runs
                    if r["arm"] == arm and r["length"] == length and r["seed"] in seeds
                }
                cells.append(mean_se(list(acc[arm].values())))
            both = sorted(set(acc["fraction"]) & set(acc["epochs"]))
            cells.append(mean_se([acc["fraction"][s] - acc["epochs"][s] for s in both]))
            if acc["ceiling"] and acc["baseline"] and acc["fraction"]:
                best_rule = max(
                    ("fraction", "epochs"), key=lambda a: statistics.fmean(acc[a].values())
                )
                gap = statistics.fmean(acc["ceiling"].values()) - statistics.fmean(
                    acc["baseline"].values()
                )
                got = statistics.fmean(acc[best_rule].values()) - statistics.fmean(
                    acc["baseline"].values()
                )
                cells.append(f"{100 * got / gap:.0f}%" if gap > 0 else "-")
            else:
                cells.append("-")
            rows.append(cells)
            print(f"RESULT {group} {length}: " + "  ".join(cells[1:]))
            print(
                f"RESULT {group} {length}: fraction - epochs, every configuration: "
                + rule_difference(runs, length, seeds)
            )
        print_table(
            ["length", *arms, "fraction - epochs", "ceiling recovered"],
            rows,
        )


if __name__ == "__main__":
    raise SystemExit(main())
