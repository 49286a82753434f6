#!/usr/bin/env python3
"""Throughput of ``sweeper tune --workers N``: trials/hour with 1 and with 2 workers.

Both runs train the same study (studies/mnist-t10k.toml, shrunk), with the same number of trials,
each on a fresh SQLite file, without a pruner (every trial trains all its epochs, so trials are
comparable) and without baselines (only sampled trials). Two figures per run:

* wall: the whole command, start-up of the workers included;
* trials: from the first trial's start to the last trial's end, as stored in the study.

Usage: python3 scripts/bench_workers.py [--trials 12] [--epochs 3] [--subset 2000] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "mnist-t10k.toml"
THROUGHPUT = re.compile(r"throughput: (\d+) trials/hour")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def run(workers: int, args: argparse.Namespace, work: Path) -> dict[str, float]:
    folder = work / f"workers-{workers}"
    folder.mkdir()
    db = folder / "bench.db"
    cmd = [
        sys.executable, "-m", "sweeper", "tune", str(STUDY),
        "--storage", f"sqlite:///{db}", "--n-trials", str(args.trials),
        "--workers", str(workers), "--checkpoint-dir", str(folder / "ckpt"),
        "--set", f"data.subset={args.subset}", "--set", f"train.epochs={args.epochs}",
        "--set", f"train.batch_size={args.batch_size}", "--set", "pruner.type=none",
        "--set", "baselines=[]",
    ]  # fmt: skip
    env = {
        k: v for k, v in os.environ.items() if k not in ("SWEEPER_STORAGE", "SWEEPER_CHECKPOINTS")
    }
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        sys.exit(f"sweeper tune --workers {workers} failed ({proc.returncode}):\n{tail}")
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT datetime_start, datetime_complete FROM trials WHERE state = 'COMPLETE'"
        ).fetchall()
    if len(rows) != args.trials:
        sys.exit(f"--workers {workers}: {len(rows)} complete trials, expected {args.trials}")
    starts = [parse_time(a) for a, _ in rows]
    ends = [parse_time(b) for _, b in rows]
    span = (max(ends) - min(starts)).total_seconds()
    per_trial = sum((b - a).total_seconds() for a, b in zip(starts, ends, strict=True)) / len(rows)
    own = THROUGHPUT.search(output)
    return {
        "wall_s": wall,
        "wall_tph": args.trials * 3600 / wall,
        "span_s": span,
        "span_tph": args.trials * 3600 / span,
        "trial_s": per_trial,
        "sweeper_tph": float(own.group(1)) if own else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]

    print(
        f"machine: {os.cpu_count()} CPU cores ({cpu_model()}), Python {platform.python_version()}"
    )
    print(
        f"study: {STUDY.relative_to(ROOT)}, {args.trials} trials x {args.epochs} epochs, "
        f"subset {args.subset}, batch {args.batch_size}, pruner none, fresh SQLite file per run"
    )
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sweeper-bench-") as tmp:
        for workers in counts:
            results[workers] = run(workers, args, Path(tmp))
            r = results[workers]
            print(
                f"workers={workers}: wall {r['wall_s']:6.1f} s -> {r['wall_tph']:6.0f} trials/hour; "
                f"trials {r['span_s']:6.1f} s -> {r['span_tph']:6.0f} trials/hour; "
                f"{r['trial_s']:.2f} s per trial; sweeper says {r['sweeper_tph']:.0f} trials/hour",
                flush=True,
            )
    base = counts[0]
    for workers in counts[1:]:
        a, b = results[base], results[workers]
        print(
            f"ratio {workers} vs {base} workers: wall {b['wall_tph'] / a['wall_tph']:.2f}x, "
            f"trials {b['span_tph'] / a['span_tph']:.2f}x"
        )


if __name__ == "__main__":
    main()
