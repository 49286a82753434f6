"""Packed trials (sweeper.training.packing) against trials alone: copy-epochs per second, trials per hour.

For each model (``mnist-cnn``, ``fashion-cnn``) on the shipped MNIST test set
(``studies/data/mnist-t10k``, split as ``studies/mnist-t10k.toml`` splits it: 6,000 train / 2,000
validation), batch 64, SGD, it builds one pack per K (1, 2, 4, 8 copies, each with its own
schedule), trains each pack one epoch (tracing), then times epochs of every pack interleaved
(K = 1, 2, 4, 8, then 8, 4, 2, 1, ...), so that the ratios to K = 1 see the same machine load. An
epoch is a trial's epoch: one pass over the training split, then validation.

* copy-epochs per second: K / seconds per pack epoch (best of ``--repeats`` rounds); the ratio to
  K = 1 from the best epochs, and the mean and spread of the ratios round by round;
* trials per hour: a pack trains K trials of ``--trial-epochs`` epochs (3, as in
  ``studies/mnist-t10k.toml``), its set-up included (building and seeding the K copies, their
  optimizers, the first epoch with its tracing): K * 3600 / (setup + first + (E - 1) * epoch);
* reference: one trial alone through ``run_trial`` (what the trial loop runs now, without its
  store and checkpoints), the same epochs, timed once per round.

Then three measurements that chose the design: how a copy leaves a pack of 4 (two copies stop after
an epoch), the pack rebuilt of the remaining copies vs the stopped copies frozen in place (the
epoch after the stop, with its new trace, and the next); how members change (after every epoch
two copies leave and two new trials join, as in a study): the pack rebuilt and traced anew vs
the new trials put in the stopped copies' slots (``Pack(stop="reuse")``); and a fused ``mnist-cnn`` (one
convolution for the K copies' first layers, grouped convolutions for the next ones, one batched
dense layer) against K separate copies, per training batch.

    python scripts/bench_pack.py            # ~7 min on 2 busy cores
    python scripts/bench_pack.py --quick    # 2,500 examples, 2 rounds (~3 min)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import machine_lines, print_table

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "studies" / "data" / "mnist-t10k"
MODELS = ("mnist-cnn", "fashion-cnn")
TARGET = 1.5


def _schedules(k: int, spe: int) -> list[Any]:
    from sweeper.training.families.constant import Constant
    from sweeper.training.families.exponential import Exponential

    out: list[Any] = []
    for i in range(k):
        lr = 0.01 * (1 + i % 4)
        out.append(Constant(lr) if i % 2 == 0 else Exponential(lr, decay_steps=spe, decay_rate=0.7))
    return out


def _time_epoch(pack: Any, cpu: list[float] | None = None) -> float:
    """Wall seconds of one epoch of ``pack``; its CPU seconds (every thread) go to ``cpu``."""
    c0, t0 = time.process_time(), time.perf_counter()
    pack.train_epoch()
    wall = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return wall


def build_pack(dataset: Any, settings: Any, k: int, stop: str = "rebuild") -> tuple[Any, float]:
    from sweeper.training.optimizers import OptimizerSpec
    from sweeper.training.packing import Pack
    from sweeper.training.train_trial import steps_per_epoch

    t0 = time.perf_counter()
    pack = Pack(dataset, settings, stop=stop)
    spe = steps_per_epoch(len(dataset.y_train), settings.batch_size)
    for schedule in _schedules(k, spe):
        pack.add(schedule, OptimizerSpec("sgd"))
    return pack, time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# Throughput per K
# --------------------------------------------------------------------------------------------


def bench_model(
    model: str, dataset: Any, ks: list[int], args: argparse.Namespace
) -> list[list[str]]:
    from sweeper.training.families.constant import Constant
    from sweeper.training.optimizers import OptimizerSpec
    from sweeper.training.train_trial import TrainSettings, run_trial

    settings = TrainSettings(model=model, batch_size=args.batch, epochs=args.trial_epochs, seed=0)
    packs: dict[int, Any] = {}
    setup: dict[int, float] = {}
    first: dict[int, float] = {}
    for k in ks:
        packs[k], setup[k] = build_pack(dataset, settings, k)
        first[k] = _time_epoch(packs[k])
        print(f"  {model} K={k}: set-up {setup[k]:.1f} s, first epoch {first[k]:.1f} s", flush=True)
    epochs: dict[int, list[float]] = {k: [] for k in ks}
    cpu: dict[int, list[float]] = {k: [] for k in ks}
    alone: list[float] = []
    for rnd in range(args.repeats):
        order = ks if rnd % 2 == 0 else ks[::-1]
        for k in order:
            epochs[k].append(_time_epoch(packs[k], cpu[k]))
        if not args.no_alone:
            t0 = time.perf_counter()
            run_trial(dataset, Constant(0.01), OptimizerSpec("sgd"), settings)
            alone.append(time.perf_counter() - t0)
        line = ", ".join(f"K={k} {epochs[k][-1]:.2f} s" for k in ks)
        extra = f", run_trial {alone[-1]:.1f} s" if alone else ""
        print(f"  {model} round {rnd + 1}: {line}{extra}", flush=True)
    packs.clear()

    e = args.trial_epochs
    base_best = min(epochs[ks[0]])
    base_cpu = min(cpu[ks[0]])
    base_trial = setup[ks[0]] + first[ks[0]] + (e - 1) * base_best
    rows = []
    for k in ks:
        best = min(epochs[k])
        rounds = [k * a / b for a, b in zip(epochs[ks[0]], epochs[k], strict=True)]
        spread = statistics.stdev(rounds) if len(rounds) > 1 else 0.0
        trial = setup[k] + first[k] + (e - 1) * best
        tph = k * 3600 / trial
        row = [
            model,
            str(k),
            f"{best:.2f}",
            f"{k / best:.2f}",
            f"x{k * base_best / best:.2f}",
            f"x{statistics.fmean(rounds):.2f} +- {spread:.2f}",
            f"{min(cpu[k]) / k:.2f}",
            f"x{k * base_cpu / min(cpu[k]):.2f}",
            f"{setup[k]:.1f} + {first[k]:.1f}",
            f"{tph:,.0f}",
            f"x{tph / (3600 / base_trial):.2f}",
        ]
        row.append(f"x{tph / (3600 / min(alone)):.2f}" if alone else "-")
        rows.append(row)
    if alone:
        rows.append([model, "run_trial", *["-"] * 7, f"{3600 / min(alone):,.0f}", "-", "x1.00"])
    return rows


# --------------------------------------------------------------------------------------------
# How a copy leaves a pack
# --------------------------------------------------------------------------------------------


def bench_stop(dataset: Any, args: argparse.Namespace) -> list[list[str]]:
    from sweeper.training.train_trial import TrainSettings

    settings = TrainSettings(model="mnist-cnn", batch_size=args.batch, epochs=3, seed=0)
    packs = {mode: build_pack(dataset, settings, 4, stop=mode)[0] for mode in ("rebuild", "freeze")}
    times: dict[str, dict[str, Any]] = {m: {} for m in packs}
    for pack in packs.values():  # trace
        pack.train_epoch()
    for mode, pack in packs.items():
        times[mode]["before"] = _time_epoch(pack)
    for mode, pack in packs.items():
        for copy in pack.live[:2]:
            pack.stop(copy)
        times[mode]["after"] = _time_epoch(pack)
    for _ in range(2):
        for mode, pack in packs.items():
            times[mode].setdefault("next", []).append(_time_epoch(pack))
    rows = []
    for mode, t in times.items():
        steady = min(t["next"])
        rows.append(
            [
                mode,
                f"{t['before']:.2f}",
                f"{t['after']:.2f}",
                f"{t['after'] - steady:.2f}",
                f"{steady:.2f}",
            ]
        )
    return rows


def bench_swap(dataset: Any, args: argparse.Namespace) -> list[list[str]]:
    """Two of 4 copies leave after every epoch and two new trials take their places (what a
    study's pack does as trials pause or end): rebuilt and traced anew vs their slots reused."""
    from sweeper.training.optimizers import OptimizerSpec
    from sweeper.training.train_trial import TrainSettings, steps_per_epoch

    settings = TrainSettings(model="mnist-cnn", batch_size=args.batch, epochs=3, seed=0)
    spe = steps_per_epoch(len(dataset.y_train), settings.batch_size)
    packs = {mode: build_pack(dataset, settings, 4, stop=mode)[0] for mode in ("rebuild", "reuse")}
    for pack in packs.values():  # trace
        pack.train_epoch()
    times: dict[str, list[float]] = {m: [] for m in packs}
    for _ in range(args.swaps):
        for mode, pack in packs.items():
            t0 = time.perf_counter()
            for copy in pack.live[:2]:
                pack.stop(copy)
            for schedule in _schedules(2, spe):
                pack.add(schedule, OptimizerSpec("sgd"))
            times[mode].append(time.perf_counter() - t0 + _time_epoch(pack))
    base = statistics.mean(times["rebuild"])
    return [
        [
            mode,
            f"{statistics.mean(t):.2f} +- {statistics.pstdev(t):.2f}",
            f"x{base / statistics.mean(t):.2f}",
            str(packs[mode].compiles),
        ]
        for mode, t in times.items()
    ]


# --------------------------------------------------------------------------------------------
# Fused layers
# --------------------------------------------------------------------------------------------


def fused_mnist_cnn(k: int, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """K copies of mnist-cnn as one network: the first convolution of all copies is one
    convolution with K * 16 filters (they share the input), the next ones are grouped
    convolutions (groups = K), the K dense heads one EinsumDense; K softmax outputs."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    h = inputs
    for i, filters in enumerate((16, 32, 64)):
        h = layers.Conv2D(
            filters * k, 3, padding="same", activation="relu", groups=1 if i == 0 else k
        )(h)
        h = layers.MaxPooling2D(2, padding="same")(h)
    height, width, channels = h.shape[1], h.shape[2], h.shape[3] // k
    h = layers.Reshape((height, width, k, channels))(h)
    h = layers.Permute((3, 1, 2, 4))(h)
    h = layers.Reshape((k, height * width * channels))(h)
    h = layers.EinsumDense("bkf,kfc->bkc", output_shape=(k, num_classes), bias_axes="kc")(h)
    h = layers.Softmax()(h)
    outputs = [layers.Lambda(lambda t, i=i: t[:, i], name=f"copy_{i}")(h) for i in range(k)]
    return keras.Model(inputs, outputs)


def bench_fused(dataset: Any, args: argparse.Namespace) -> list[list[str]]:
    import keras

    from sweeper.training.pack_copies import build_packed_model

    n = args.fused_batches * args.batch
    x, y = dataset.x_train[:n], dataset.y_train[:n]
    warm = 2 * args.batch
    rows = []
    for k in (2, 4):
        separate, _ = build_packed_model("mnist-cnn", dataset.input_shape, 10, seeds=[0] * k)
        fused = fused_mnist_cnn(k, dataset.input_shape, 10)
        per_batch = {}
        for name, model in (("separate", separate), ("fused", fused)):
            model.compile(
                optimizer=keras.optimizers.SGD(0.01),
                loss=["sparse_categorical_crossentropy"] * k,
                metrics=[["accuracy"]] * k,
            )
            model.fit(x[:warm], [y[:warm]] * k, batch_size=args.batch, verbose=0, shuffle=False)
            t0 = time.perf_counter()
            model.fit(x, [y] * k, batch_size=args.batch, verbose=0, shuffle=False)
            per_batch[name] = (time.perf_counter() - t0) / args.fused_batches
            print(f"  fused check K={k} {name}: {per_batch[name] * 1000:.0f} ms/batch", flush=True)
        rows.append(
            [
                str(k),
                f"{per_batch['separate'] * 1000:.0f}",
                f"{per_batch['fused'] * 1000:.0f}",
                f"x{per_batch['separate'] / per_batch['fused']:.2f}",
            ]
        )
    return rows


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--ks", default="1,2,4,8", help="pack sizes, the first is the reference")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--trial-epochs", type=int, default=3, help="epochs of one trial")
    parser.add_argument("--subset", type=int, default=None, help="examples of the data used")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder of the MNIST IDX files")
    parser.add_argument("--fused-batches", type=int, default=10)
    parser.add_argument("--no-alone", action="store_true", help="skip the run_trial reference")
    parser.add_argument(
        "--no-stop", action="store_true", help="skip rebuild vs freeze and rebuild vs reuse"
    )
    parser.add_argument("--swaps", type=int, default=4, help="member changes timed per mode")
    parser.add_argument("--no-fused", action="store_true", help="skip the fused layers")
    parser.add_argument("--quick", action="store_true", help="2,500 examples, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.subset, args.repeats, args.fused_batches = args.subset or 2500, 2, 4
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    ks = [int(k) for k in args.ks.split(",") if k.strip()]
    if any(m not in MODELS for m in models) or not ks or min(ks) < 1:
        parser.error(f"--models takes {', '.join(MODELS)}; --ks positive pack sizes")

    from sweeper.training.backend import load_keras
    from sweeper.training.data import DataSpec, load_dataset

    info = load_keras()
    dataset = load_dataset(
        DataSpec(
            "mnist",
            path=args.data,
            subset=args.subset,
            validation_fraction=0.2,
            test_fraction=0.2,
            seed=0,
        )
    )
    start = time.perf_counter()
    print(
        "bench_pack: K trials in one packed model (sweeper.training.packing) vs K = 1 and run_trial"
    )
    for line in machine_lines():
        print(line)
    print(info.describe())
    print(
        f"data: {dataset.summary()}; batch {args.batch}; SGD; {args.repeats} interleaved "
        f"rounds; a trial is {args.trial_epochs} epochs"
    )
    print()

    rows: list[list[str]] = []
    for model in models:
        rows += bench_model(model, dataset, ks, args)
    print()
    print("throughput per pack size (an epoch: the training split, then validation):")
    print_table(
        [
            "model",
            "K",
            "epoch s",
            "copy-epochs/s",
            "vs K=1",
            "per round",
            "cpu s/copy-epoch",
            "vs K=1",
            "setup+first s",
            "trials/hour",
            "vs K=1",
            "vs run_trial",
        ],
        rows,
    )
    print(
        "  (vs K=1: copy-epochs per second over K = 1's, best epochs; per round: the same ratio "
        "round by round, mean +- std; cpu: CPU seconds of the process (all threads) per "
        "copy-epoch, best epoch, and its ratio, the work saved whatever the other jobs on the "
        f"machine; trials/hour: K * 3600 / (setup + first epoch + {args.trial_epochs - 1} "
        "epochs))"
    )
    print()

    if not args.no_stop:
        print("a pack of 4 mnist-cnn copies, 2 of them stop after an epoch:", flush=True)
        stop_rows = bench_stop(dataset, args)
        print_table(
            ["stop by", "epoch of 4 s", "next epoch s", "its extra s", "then epoch s"], stop_rows
        )
        print(
            "  (next epoch: the first after the stop, traced anew; its extra: over the epochs "
            "that follow)"
        )
        print()
    if not args.no_stop:
        print(
            f"a pack of 4 mnist-cnn copies, 2 of them replaced by new trials after each of "
            f"{args.swaps} epochs:",
            flush=True,
        )
        swap_rows = bench_swap(dataset, args)
        print_table(
            ["members change by", "s per epoch", "speed vs rebuild", "models built"], swap_rows
        )
        print(
            "  (s per epoch: the two new copies set up, then the epoch; rebuild: a new packed "
            "model traced; reuse: the stopped copies' slots take the new trials in place)"
        )
        print()
    if not args.no_fused:
        print(f"fused mnist-cnn vs separate copies, training, {args.fused_batches} batches:")
        fused_rows = bench_fused(dataset, args)
        print_table(["K", "separate ms/batch", "fused ms/batch", "fused speed-up"], fused_rows)
        print()

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at end (1/5/15 min): {load}; {time.perf_counter() - start:.0f} s in all")
    for model in models:
        mine = [r for r in rows if r[0] == model and r[1] != "run_trial"]
        best = max(mine, key=lambda r: float(r[4][1:]))
        gain = float(best[4][1:])
        verdict = "met" if gain >= TARGET else "not met"
        print(
            f"RESULT {model}: best K={best[1]}, copy-epochs/s {best[4]} vs K=1 "
            f"(round by round {best[5]}; CPU time per copy-epoch {best[7]}), trials/hour "
            f"{best[10]} vs K=1, {best[11]} vs run_trial; target >= x{TARGET}: {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
