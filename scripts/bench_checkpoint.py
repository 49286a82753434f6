#!/usr/bin/env python3
"""Cost of the per-epoch trial backup: ``run_trial`` with and without ``backup_dir``, and with
``--shared URL`` also with each checkpoint copied to a shared store (``--artifacts``).

The same configuration is trained in one process, alternating the two ways (ABBA order), on the
data of studies/mnist-t10k.toml (the real MNIST test set, split as that study splits it),
``mnist-cnn``, batch 64.
Prints the seconds of each epoch and of the whole call for every run, the medians, and the
with/without ratio of the medians. A slowdown that the backup causes in the epochs *after* a
save (rather than in the save itself) shows as a ratio above 1 in epochs 2 and later.

``--copy-only`` (with ``--shared``) times, without training, the local save of a checkpoint and its
copy to the shared store for weights of 1, 10 and 100 MiB (median of 7 epochs each).

Usage: python3 scripts/bench_checkpoint.py [--pairs 4] [--epochs 3] [--shared URL [--copy-only]]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import machine_lines, print_table

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "mnist-t10k.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="pairs of runs (default 4)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--shared", metavar="URL", help="also time the backup copied to this shared store"
    )
    parser.add_argument(
        "--copy-only", action="store_true", help="with --shared: time the copy alone, no training"
    )
    args = parser.parse_args()
    if args.copy_only:
        if not args.shared:
            parser.error("--copy-only needs --shared URL")
        copy_only(args.shared)
        return

    from sweeper.studyfile.config import load_study_file
    from sweeper.training.data import load_dataset
    from sweeper.training.families.exponential import Exponential
    from sweeper.training.train_trial import TrainSettings, run_trial, steps_per_epoch

    for line in machine_lines():
        print(line)
    print("command:", " ".join(sys.argv))
    ds = load_dataset(load_study_file(STUDY).data)
    print("data:", ds.summary())
    settings = TrainSettings(model="mnist-cnn", batch_size=64, epochs=args.epochs, seed=0)
    schedule = Exponential(0.05, steps_per_epoch(len(ds.x_train), 64), 0.7)
    run_trial(ds, schedule, settings=settings)  # warm-up: graph tracing, caches

    from sweeper.training.checkpoints import Checkpoint
    from sweeper.training.shared_checkpoints import SharedCheckpoints, parse_url

    ways = ["without", "with", *(["shared"] if args.shared else [])]
    runs: dict[str, list[list[float]]] = {way: [] for way in ways}
    table = []
    for pair in range(args.pairs):
        order = ways if pair % 2 == 0 else ways[::-1]  # ABC CBA ...
        for way in order:
            tmp = Path(tempfile.mkdtemp(prefix="bench-ckpt-"))
            backup: Checkpoint | str | None = None
            if way == "with":
                backup = str(tmp / "backup")
            elif way == "shared":
                shared = SharedCheckpoints(parse_url(args.shared), f"bench-{pair}")
                backup = Checkpoint(tmp / "backup", trial=0, config=0, shared=shared)
            t0 = time.perf_counter()
            result = run_trial(ds, schedule, settings=settings, backup_dir=backup)
            wall = time.perf_counter() - t0
            shutil.rmtree(tmp, ignore_errors=True)
            if way == "shared":
                shared.remove(0)
            times = [r.seconds for r in result.records] + [wall]
            runs[way].append(times)
            table.append([f"{pair + 1} {way} backup", *(f"{t:.3f}" for t in times)])
    headers = ["run", *(f"epoch {e + 1} s" for e in range(args.epochs)), "run_trial s"]
    print_table(headers, table)

    medians = {
        way: [statistics.median(col) for col in zip(*v, strict=True)] for way, v in runs.items()
    }
    rows = [[f"median {way}", *(f"{t:.3f}" for t in m)] for way, m in medians.items()]
    ratio = [w / o for w, o in zip(medians["with"], medians["without"], strict=True)]
    rows.append(["with / without", *(f"{r:.3f}" for r in ratio)])
    if args.shared:
        shared_ratio = [w / o for w, o in zip(medians["shared"], medians["with"], strict=True)]
        rows.append(["shared / with", *(f"{r:.3f}" for r in shared_ratio)])
    print()
    print_table(headers, rows)
    print(f"RESULT run_trial with / without the per-epoch backup: {ratio[-1]:.3f} (medians)")
    if args.shared:
        print(
            f"RESULT run_trial with the shared copy / the local backup alone: "
            f"{shared_ratio[-1]:.3f} (medians)"
        )


def copy_only(url: str) -> None:
    """The local save and the shared copy of one checkpoint, by the size of its weights."""
    import os

    from sweeper.training import checkpoints
    from sweeper.training.shared_checkpoints import SharedCheckpoints, parse_url

    for line in machine_lines():
        print(line)
    print("command:", " ".join(sys.argv))
    shared = SharedCheckpoints(parse_url(url), "bench-copy")
    rows = []
    for mib in (1, 10, 100):
        payload = os.urandom(mib << 20)

        def write(path: Path, data: bytes = payload) -> None:
            path.write_bytes(data)

        folder = Path(tempfile.mkdtemp(prefix="bench-copy-"))
        save_s, copy_s = [], []
        for epoch in range(1, 8):
            ck = checkpoints.Checkpoint(folder, trial=0, config=mib)
            t0 = time.perf_counter()
            checkpoints.save(ck, write, epoch)
            t1 = time.perf_counter()
            shared.push(folder, mib, epoch)
            save_s.append(t1 - t0)
            copy_s.append(time.perf_counter() - t1)
        shared.remove(mib)
        shutil.rmtree(folder, ignore_errors=True)
        save, copy = statistics.median(save_s), statistics.median(copy_s)
        rows.append([f"{mib} MiB", f"{save:.3f}", f"{copy:.3f}", f"{copy / save:.2f}"])
    print_table(["weights", "local save s", "shared copy s", "copy / save"], rows)


if __name__ == "__main__":
    main()
