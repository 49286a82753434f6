"""Helper of ``scripts/gpu_check.sh``: epoch times, a small synthetic study, memory summaries.

Works under any Keras backend (``KERAS_BACKEND`` = tensorflow, jax or torch); TensorFlow need not
be installed. Sub-commands:

    python scripts/gpu_epoch_time.py epoch --model fashion-cnn --images 60000 --batches 64,256
    python scripts/gpu_epoch_time.py make-study DIR --images 4000 --trials 12 --epochs 2
    python scripts/gpu_epoch_time.py memory LOG --kind gpu|rss
    python scripts/gpu_epoch_time.py devices
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHAPES = {"mnist-cnn": (28, 28, 1), "fashion-cnn": (28, 28, 1), "cifar-cnn": (32, 32, 3)}


def devices() -> int:
    import keras

    from sweeper.training.backend import visible_devices

    backend = keras.config.backend()
    found = visible_devices(backend)
    print(f"keras {keras.__version__}, backend {backend}, accelerators: {found or 'none'}")
    return 0


def epoch_times(args: argparse.Namespace) -> int:
    import keras
    import numpy as np

    from sweeper.training.models import build_model

    shape = SHAPES[args.model]
    rng = np.random.default_rng(0)
    x = rng.random((args.images, *shape), dtype=np.float32)
    y = rng.integers(0, 10, size=args.images).astype(np.int32)
    backend = keras.config.backend()

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.times.append(time.perf_counter() - self._t0)

    print(
        f"{args.model} on {args.images:,} synthetic {'x'.join(map(str, shape))} images, "
        f"backend {backend}; epoch 1 includes tracing/compilation, epoch 2 is the steady figure"
    )
    print(f"{'batch':>6} {'jit':>4} {'epoch 1 s':>10} {'epoch 2 s':>10} {'images/s':>10}")
    for jit in args.jit:
        for batch in args.batches:
            keras.backend.clear_session()
            keras.utils.set_random_seed(0)
            model = build_model(args.model, shape, 10)
            model.compile(
                optimizer=keras.optimizers.SGD(learning_rate=0.01),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                jit_compile=jit,
            )
            timer = Timer()
            try:
                model.fit(x, y, batch_size=batch, epochs=2, verbose=0, callbacks=[timer])
            except Exception as exc:  # e.g. an XLA setting the backend cannot compile
                print(
                    f"{batch:>6} {'on' if jit else 'off':>4}  failed: {type(exc).__name__}: {exc}"
                )
                continue
            first, steady = timer.times[0], timer.times[-1]
            print(
                f"{batch:>6} {'on' if jit else 'off':>4} {first:>10.2f} {steady:>10.2f} "
                f"{args.images / steady:>10,.0f}",
                flush=True,
            )
    return 0


def make_study(args: argparse.Namespace) -> int:
    """A synthetic npz dataset and a small study file on it (no downloads, no scikit-learn)."""
    import numpy as np

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = args.images
    # learnable: the class sets the brightness of one image row, plus noise
    y = rng.integers(0, 10, size=n).astype(np.int64)
    x = rng.integers(0, 96, size=(n, 28, 28), dtype=np.uint8)
    for k in range(10):
        x[y == k, 2 + 2 * k, :] = 255
    np.savez_compressed(folder / "synthetic.npz", x=x, y=y)
    text = f"""[study]
name = "gpu-check"
n_trials = {args.trials}
seed = 0

[data]
dataset = "npz"
path = "synthetic.npz"
validation_fraction = 0.2
test_fraction = 0.1

[train]
model = "{args.model}"
batch_size = {args.batch_size}
epochs = {args.epochs}

[sampler]
type = "random"

[pruner]
type = "none"

[space]
schedules = ["constant", "exponential", "cosine"]
initial_lr = {{ low = 0.01, high = 0.3, log = true }}
optimizer = "sgd"
"""
    (folder / "study.toml").write_text(text)
    print(folder / "study.toml")
    return 0


def memory(args: argparse.Namespace) -> int:
    """Peak memory per process from a sampling log: ``pid, MiB`` (gpu) or ``pid rss_kib`` (rss)."""
    peak: dict[str, float] = {}
    path = Path(args.log)
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        parts = [p.strip() for p in line.replace(",", " ").split()]
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        try:
            value = float(parts[1])
        except ValueError:
            continue
        mib = value / 1024 if args.kind == "rss" else value
        peak[parts[0]] = max(peak.get(parts[0], 0.0), mib)
    what = "GPU memory" if args.kind == "gpu" else "resident memory (RSS)"
    parent = str(args.parent) if args.parent is not None else None
    if args.workers > 1 and parent in peak:
        # with several workers the tune process only waits for them: not a worker itself
        print(f"  tune process {parent} (launcher): peak {what} {peak.pop(parent):,.0f} MiB")
    if not peak:
        print(f"  {what} per worker: no samples")
        return 0
    for pid, mib in sorted(peak.items()):
        print(f"  worker pid {pid}: peak {what} {mib:,.0f} MiB")
    values = list(peak.values())
    print(
        f"  {len(values)} worker(s), peak {what} per worker: mean "
        f"{sum(values) / len(values):,.0f} MiB, max {max(values):,.0f} MiB"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("epoch", help="epoch time of a model on synthetic images")
    p.add_argument("--model", default="fashion-cnn", choices=sorted(SHAPES))
    p.add_argument("--images", type=int, default=60000)
    p.add_argument("--batches", default="64,256")
    p.add_argument("--jit", default="off,on", help="jit_compile settings: off,on")
    p = sub.add_parser("make-study", help="write a synthetic dataset and a small study file")
    p.add_argument("dir")
    p.add_argument("--images", type=int, default=4000)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--model", default="fashion-cnn", choices=sorted(SHAPES))
    p = sub.add_parser("memory", help="peak memory per process from a sampling log")
    p.add_argument("log")
    p.add_argument("--kind", choices=("gpu", "rss"), default="gpu")
    p.add_argument("--parent", type=int, default=None, help="pid of the tune process")
    p.add_argument("--workers", type=int, default=1)
    sub.add_parser("devices", help="the Keras backend and the accelerators it sees")
    args = parser.parse_args(argv)
    if args.command == "epoch":
        args.batches = [int(b) for b in args.batches.split(",") if b.strip()]
        args.jit = [w.strip() == "on" for w in args.jit.split(",") if w.strip()]
        return epoch_times(args)
    if args.command == "make-study":
        return make_study(args)
    if args.command == "memory":
        return memory(args)
    return devices()


if __name__ == "__main__":
    sys.exit(main())
