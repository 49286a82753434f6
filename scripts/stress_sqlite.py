#!/usr/bin/env python3
"""Many workers on one SQLite file: ``sweeper tune --workers 4`` x 50 fast trials.

Each trial trains a one-layer model (tests/tiny_model.py) for one epoch on 400 digits, so the
store is written to several times a second by four processes. Prints the figures and exits
non-zero if a storage error appears in the output, a trial is missing, or the file is damaged.

Usage: python3 scripts/stress_sqlite.py [--workers 4] [--trials 50]
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORAGE_ERRORS = re.compile(
    r"database is locked|database table is locked|OperationalError|disk I/O error|"
    r"malformed|StorageError|cannot use storage",
    re.IGNORECASE,
)
STUDY = textwrap.dedent(
    """
    [study]
    name = "stress"
    seed = 0

    [data]
    dataset = "digits"
    subset = 400

    [train]
    model = "tiny_model:dense"
    batch_size = 128
    epochs = 1

    [sampler]
    type = "random"

    [pruner]
    type = "none"

    [space]
    schedules = ["constant", "exponential", "cosine"]
    initial_lr = { low = 0.01, high = 0.5, log = true }
    decay_rate = { low = 0.1, high = 0.9 }
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sweeper-stress-") as tmp:
        work = Path(tmp)
        (work / "stress.toml").write_text(STUDY)
        db = work / "stress.db"
        cmd = [
            sys.executable, "-m", "sweeper", "tune", "stress.toml",
            "--storage", f"sqlite:///{db}", "--n-trials", str(args.trials),
            "--workers", str(args.workers), "--checkpoint-dir", str(work / "ckpt"),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "SWEEPER_STORAGE"}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "tests"), env.get("PYTHONPATH", "")) if p
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        output = proc.stdout + proc.stderr
        errors = [ln for ln in output.splitlines() if STORAGE_ERRORS.search(ln)]
        with sqlite3.connect(db) as con:
            states = dict(con.execute("SELECT state, COUNT(*) FROM trials GROUP BY state"))
            epochs = con.execute("SELECT COUNT(*) FROM sweeper_epochs").fetchone()[0]
            runs = con.execute("SELECT COUNT(*), COUNT(finished_at) FROM sweeper_runs").fetchone()
            check = con.execute("PRAGMA integrity_check").fetchone()[0]
        left = list((work / "ckpt").rglob("trial-*"))

    complete = states.get("COMPLETE", 0)
    print(
        f"{args.workers} workers x {args.trials} trials on one SQLite file ({os.cpu_count()} cores)"
    )
    print(
        f"exit code {proc.returncode}; wall {wall:.1f} s; {args.trials * 3600 / wall:.0f} trials/hour"
    )
    print(f"trials by state: {states}; epoch rows: {epochs}; runs: {runs[0]} ({runs[1]} finished)")
    print(
        f"storage error lines: {len(errors)}; integrity_check: {check}; checkpoints left: {len(left)}"
    )
    for line in errors[:5]:
        print(f"  {line}")
    ok = (
        proc.returncode == 0
        and not errors
        and complete == args.trials
        and epochs == args.trials
        and check == "ok"
        and not left
    )
    if not ok:
        print("\n".join(output.strip().splitlines()[-20:]), file=sys.stderr)
        sys.exit("FAILED")
    print("OK")


if __name__ == "__main__":
    main()
