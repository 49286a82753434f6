"""Time the read-only commands on a large synthetic study.

Builds a SQLite store holding one study of N trials (10,000 by default) shaped like a real sweeper
study of the embedded ``digits`` study file: baselines first, then every schedule family with its
conditional dimensions, complete / pruned / diverged / failed / running / waiting trials, the
per-trial user attributes the tuner writes, val_accuracy as intermediate values, and one
``sweeper_epochs`` row per finished epoch. Trials go in through ``optuna.create_trial`` and
``study.add_trials``; epoch rows through a bulk ORM insert.

Then each read-only command runs in its own process (``python -m sweeper ...``) and its wall time
is printed. Targets: under 1 s for ``status``, under 10 s for every other command.

    python scripts/bench_analysis.py                       # 10,000 trials in a temporary folder
    python scripts/bench_analysis.py --trials 2000 --keep /tmp/bench
    python scripts/bench_analysis.py --keep /tmp/bench --reuse   # time it again, no rebuild
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweeper.analysis.plots import KINDS as PLOT_KINDS
from sweeper.testing import STUDY, build_synthetic_store

STATUS_TARGET = 1.0
COMMAND_TARGET = 10.0


def _commands(url: str, out: Path) -> list[tuple[str, list[str]]]:
    s = ["--storage", url]
    cmds: list[tuple[str, list[str]]] = [
        ("status", ["status", *s]),
        ("best", ["best", STUDY, "--top", "10", *s]),
        ("importance (ped-anova)", ["importance", STUDY, *s]),
        ("importance (fanova)", ["importance", STUDY, "--evaluator", "fanova", *s]),
        (
            "importance (mean-decrease-impurity)",
            ["importance", STUDY, "--evaluator", "mean-decrease-impurity", *s],
        ),
    ]
    cmds += [(f"plot {k}", ["plot", STUDY, k, "--out", str(out / "plots"), *s]) for k in PLOT_KINDS]
    cmds += [
        ("report", ["report", STUDY, "--out", str(out / "report"), *s]),
        ("export csv", ["export", STUDY, "--format", "csv", "--out", str(out / "t.csv"), *s]),
        ("export json", ["export", STUDY, "--format", "json", "--out", str(out / "t.json"), *s]),
        (
            "export json --epochs",
            ["export", STUDY, "--format", "json", "--epochs", "--out", str(out / "e.json"), *s],
        ),
    ]
    return cmds


def run_benchmark(url: str, out: Path, repeat: int = 1) -> list[tuple[str, float, bool, int]]:
    """Each command's wall time (the fastest of ``repeat`` runs), whether it met its target."""
    results = []
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for label, args in _commands(url, out):
        seconds = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "sweeper", *args],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            seconds = min(seconds, time.perf_counter() - t0)
        target = STATUS_TARGET if label == "status" else COMMAND_TARGET
        results.append((label, seconds, seconds < target, proc.returncode))
        if proc.returncode != 0:
            print(f"{label}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}", file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--keep", metavar="DIR", help="build in DIR and keep the files")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: time the store already in DIR"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each command N times, report the fastest"
    )
    args = parser.parse_args()

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sweeper-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        db = folder / "bench.db"
        if args.reuse and db.exists():
            url = f"sqlite:///{db}"
            print(f"timing the existing store {url}")
        else:
            t0 = time.perf_counter()
            url = build_synthetic_store(db, args.trials)
            print(f"built {args.trials} trials in {time.perf_counter() - t0:.1f} s: {url}")
        results = run_benchmark(url, folder, max(args.repeat, 1))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"{os.cpu_count()} CPUs, load average {load:.1f}; fastest of {args.repeat} run(s)")
        print(f"{'command':<38} {'seconds':>8}  target")
        for label, seconds, ok, rc in results:
            target = STATUS_TARGET if label == "status" else COMMAND_TARGET
            verdict = "met" if ok and rc == 0 else ("FAILED" if rc else "MISSED")
            print(f"{label:<38} {seconds:8.2f}  < {target:g} s {verdict}")
        return 0 if all(ok and rc == 0 for _, _, ok, rc in results) else 1
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
