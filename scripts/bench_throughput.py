"""Training throughput of the shipped models per Keras backend, batch size and XLA setting.

For each available Keras backend (each in its own subprocess with ``KERAS_BACKEND`` set, run by a
Python that has that backend), each shipped model (``mnist-cnn`` and ``fashion-cnn`` on 28x28x1,
``cifar-cnn`` on 32x32x3), batch sizes 64 and 256, and ``jit_compile`` off and on, it trains with
``model.fit`` (SGD, sparse categorical cross-entropy, accuracy metric: what a trial compiles) on
synthetic data and prints training images per second. Each variant: a warm-up fit (tracing,
compilation), a 3-batch calibration, then the best of ``--repeats`` timed fits sized to last about
``--seconds`` (at least 10, at most ``--max-batches`` batches); the timed fits of a model's four
variants alternate (forward, then reverse order), so that their ratios are fair under changing load.

It also measures the machine's dense float32 matmul rate (numpy, 2048x2048, best of several; with
the environment as it is and with ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` unset) and prints each
model's forward FLOPs per image from its layer shapes (conv ``2*H*W*k*k*Cin*Cout``, dense
``2*in*out``; training ~ 3x forward) and the fraction of the matmul rate that training achieves.

Backends: ``tensorflow`` with this Python; ``jax`` and ``torch`` with ``--python BACKEND=PATH``, or
found in throw-away venvs (``/tmp/venv-jax``, ``/tmp/venv-torch``, ``$VIRTUAL_ENV``) or in this
Python. Backends that cannot run are reported, not fatal.

    python scripts/bench_throughput.py                       # every backend found (~8 min)
    python scripts/bench_throughput.py --quick               # shorter measurements (~2 min)
    python scripts/bench_throughput.py --python jax=/tmp/venv-jax/bin/python --backends jax
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import machine_lines, print_table

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("tensorflow", "jax", "torch")
IMPORT_NAME = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
VENV_GUESSES = {
    "tensorflow": (),
    "jax": ("/tmp/venv-jax/bin/python",),
    "torch": ("/tmp/venv-torch/bin/python",),
}
MODELS = {"mnist-cnn": (28, 28, 1), "fashion-cnn": (28, 28, 1), "cifar-cnn": (32, 32, 3)}
RESULT = "RESULT-JSON "


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def emit(record: dict[str, Any]) -> None:
    print(RESULT + json.dumps(record), flush=True)


# --------------------------------------------------------------------------------------------
# Matmul rate (numpy)
# --------------------------------------------------------------------------------------------


def matmul_child(n: int, repeats: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    info = ""
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_info

        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        info = ", ".join(
            f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} "
            f"{p.get('num_threads')} threads"
            for p in blas
        )
    emit({"kind": "matmul", "flops": 2.0 * n**3 / best, "seconds": best, "blas": info})


def measure_matmul(n: int, repeats: int, unset_openblas: bool) -> dict[str, Any] | None:
    env = dict(os.environ)
    if unset_openblas:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    cmd = [sys.executable, __file__, "--matmul-child", "--matmul-n", str(n)]
    cmd += ["--repeats", str(repeats)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    for line in out.stdout.splitlines():
        if line.startswith(RESULT):
            return dict(json.loads(line[len(RESULT) :]))
    return None


# --------------------------------------------------------------------------------------------
# Child: one backend
# --------------------------------------------------------------------------------------------


def forward_flops(model: Any) -> tuple[float, list[str]]:
    """Forward FLOPs per image from the layer shapes: conv 2*H*W*k*k*Cin*Cout, dense 2*in*out."""
    total = 0.0
    parts = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, h, w, cout = layer.output.shape
            cin = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            f = 2.0 * h * w * kh * kw * cin * cout
            parts.append(f"conv {kh}x{kw} {cin}->{cout} at {h}x{w}: {f / 1e6:.2f}M")
        elif kind == "Dense":
            fin, fout = layer.input.shape[-1], layer.units
            f = 2.0 * fin * fout
            parts.append(f"dense {fin}->{fout}: {f / 1e6:.2f}M")
        else:
            continue
        total += f
    return total, parts


def child(args: argparse.Namespace) -> None:
    import keras
    import numpy as np

    from sweeper.training.models import build_model

    backend = keras.config.backend()
    versions: dict[str, str] = {"keras": keras.__version__}
    with contextlib.suppress(Exception):
        mod = __import__(IMPORT_NAME[backend])
        versions[backend] = str(getattr(mod, "__version__", "?"))
    emit({"kind": "backend", "backend": backend, "versions": versions})

    # the backend's own matmul rate, for reference
    with contextlib.suppress(Exception):
        a = keras.ops.convert_to_tensor(np.ones((2048, 2048), np.float32))
        keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
            best = min(best, time.perf_counter() - t0)
        emit({"kind": "backend_matmul", "backend": backend, "flops": 2.0 * 2048**3 / best})

    rng = np.random.default_rng(0)

    def data(n_batches: int, batch: int, shape: tuple[int, ...]) -> tuple[Any, Any]:
        n = n_batches * batch
        x = rng.random((n, *shape), dtype=np.float32)
        y = rng.integers(0, 10, size=n).astype(np.int32)
        return x, y

    for name in args.models:
        shape = MODELS[name]
        # every (batch, jit) variant of a model is built and calibrated first, then their timed
        # fits alternate, so that a change in machine load hits all of them alike
        keras.backend.clear_session()
        variants: list[dict[str, Any]] = []
        for batch in args.batches:
            for jit in args.jit:
                t_start = time.perf_counter()
                record: dict[str, Any] = {
                    "kind": "train",
                    "backend": backend,
                    "model": name,
                    "batch": batch,
                    "jit": jit,
                }
                try:
                    keras.utils.set_random_seed(0)
                    model = build_model(name, shape, 10)
                    fwd, parts = forward_flops(model)
                    record["forward_flops"] = fwd
                    record["flops_parts"] = parts
                    model.compile(
                        optimizer=keras.optimizers.SGD(learning_rate=0.01),
                        loss="sparse_categorical_crossentropy",
                        metrics=["accuracy"],
                        jit_compile=jit,
                    )
                    x, y = data(3, batch, shape)
                    t0 = time.perf_counter()
                    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # trace / compile
                    record["warmup_seconds"] = time.perf_counter() - t0
                    per_batch = float("inf")
                    for _ in range(2):  # the first call after warm-up may still retrace
                        t0 = time.perf_counter()
                        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
                        per_batch = min(per_batch, (time.perf_counter() - t0) / 3)
                    n_batches = int(max(10, min(args.max_batches, args.seconds / per_batch)))
                    record["batches"] = n_batches
                    variants.append(
                        {"record": record, "model": model, "data": data(n_batches, batch, shape)}
                    )
                except Exception as exc:  # a backend/XLA combination that cannot run
                    text = " ".join(str(exc).split())
                    record["error"] = f"{type(exc).__name__}: {text[:300]}"
                    emit(record)
                record["wall"] = time.perf_counter() - t_start
        best = [float("inf")] * len(variants)
        for rep in range(args.repeats):
            order = list(range(len(variants)))
            if rep % 2:
                order.reverse()
            for i in order:
                v = variants[i]
                x, y = v["data"]
                try:
                    t0 = time.perf_counter()
                    v["model"].fit(x, y, batch_size=v["record"]["batch"], epochs=1, verbose=0)
                    best[i] = min(best[i], time.perf_counter() - t0)
                except Exception as exc:
                    text = " ".join(str(exc).split())
                    v["record"]["error"] = f"{type(exc).__name__}: {text[:300]}"
        for v, seconds in zip(variants, best, strict=True):
            record = v["record"]
            if "error" not in record:
                record["seconds"] = seconds
                record["images_per_second"] = record["batches"] * record["batch"] / seconds
            emit(record)
        variants.clear()


# --------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------


def _imports(python: str, module: str) -> bool:
    try:
        out = subprocess.run(
            [python, "-c", f"import {module}"],
            capture_output=True,
            timeout=120,
            check=False,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0


def find_python(backend: str, given: dict[str, str]) -> tuple[str | None, str]:
    """The Python that runs ``backend``: given, a venv found, or this one; else a reason."""
    if backend in given:
        python = given[backend]
        if _imports(python, IMPORT_NAME[backend]):
            return python, ""
        return None, f"{python} cannot import {IMPORT_NAME[backend]}"
    candidates = [sys.executable, *VENV_GUESSES[backend]]
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        candidates.append(str(Path(venv) / "bin" / "python"))
    for python in candidates:
        if Path(python).exists() and _imports(python, IMPORT_NAME[backend]):
            return python, ""
    return None, f"{IMPORT_NAME[backend]} not importable (tried {', '.join(candidates)})"


def run_backend(
    backend: str, python: str, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], str]:
    env = dict(os.environ)
    env["KERAS_BACKEND"] = backend
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [python, __file__, "--child", "--seconds", str(args.seconds)]
    cmd += ["--repeats", str(args.repeats), "--max-batches", str(args.max_batches)]
    cmd += ["--models", ",".join(args.models), "--batches", ",".join(map(str, args.batches))]
    cmd += ["--jit", ",".join("on" if j else "off" for j in args.jit)]
    note = ""
    try:
        out = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=args.backend_timeout, check=False
        )
        stdout, stderr, code = out.stdout, out.stderr, out.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = ""
        code = None
        note = f"stopped after {args.backend_timeout} s (--backend-timeout); partial results"
    records = [
        json.loads(line[len(RESULT) :]) for line in stdout.splitlines() if line.startswith(RESULT)
    ]
    if code not in (0, None):
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        note = f"exit {code}: {tail[:400]}"
    return records, note


def _parse_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="BACKEND=PATH",
        help="the Python to run a backend with, e.g. jax=/tmp/venv-jax/bin/python (repeatable)",
    )
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--jit", default="off,on", help="jit_compile settings: off,on")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one timed fit")
    parser.add_argument("--repeats", type=int, default=2, help="timed fits, best one kept")
    parser.add_argument("--max-batches", type=int, default=300)
    parser.add_argument("--matmul-n", type=int, default=2048)
    parser.add_argument("--backend-timeout", type=int, default=420, help="seconds per backend")
    parser.add_argument("--quick", action="store_true", help="~0.5 s fits, 1 repeat")
    parser.add_argument("--small", action="store_true", help="the same as --quick")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--matmul-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick or args.small:
        args.seconds, args.repeats, args.max_batches = 0.5, 1, 100
    args.models = _parse_list(args.models)
    args.batches = [int(b) for b in _parse_list(args.batches)]
    jit_words = _parse_list(args.jit)
    if any(w not in ("on", "off") for w in jit_words) or any(m not in MODELS for m in args.models):
        parser.error("--jit takes on/off; --models takes " + ", ".join(MODELS))
    args.jit = [w == "on" for w in jit_words]
    if args.matmul_child:
        matmul_child(args.matmul_n, max(3, args.repeats * 3))
        return 0
    if args.child:
        child(args)
        return 0

    given = {}
    for item in args.python:
        backend, sep, path = item.partition("=")
        if not sep or backend not in BACKENDS:
            parser.error(f"--python takes BACKEND=PATH with BACKEND in {', '.join(BACKENDS)}")
        given[backend] = path

    print("bench_throughput: training images per second per backend, model, batch size and XLA")
    for line in machine_lines():
        print(line)
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"each figure: best of {args.repeats} timed model.fit calls of ~{args.seconds} s "
        f"(10 to {args.max_batches} batches) after a warm-up fit, alternating between a model's "
        "variants; synthetic data; SGD"
    )
    print()

    # ------------------------------------------------------------------ matmul reference
    mm = measure_matmul(args.matmul_n, max(3, args.repeats * 3), unset_openblas=False)
    mm_unset = None
    if "OPENBLAS_CORETYPE" in os.environ or "OPENBLAS_L2_SIZE" in os.environ:
        mm_unset = measure_matmul(args.matmul_n, max(3, args.repeats * 3), unset_openblas=True)
    rates = [m["flops"] for m in (mm, mm_unset) if m]
    ref = max(rates) if rates else float("nan")
    n = args.matmul_n
    print(f"numpy float32 matmul {n}x{n}, best of {max(3, args.repeats * 3)}:")
    if mm:
        print(f"  environment as is: {mm['flops'] / 1e9:7.1f} GFLOP/s  ({mm['blas']})")
    if mm_unset:
        print(
            f"  OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset: {mm_unset['flops'] / 1e9:7.1f} GFLOP/s"
            f"  ({mm_unset['blas']})"
        )
    print(f"  reference rate (the higher): {ref / 1e9:.1f} GFLOP/s")
    print()

    # ------------------------------------------------------------------ backends
    records: list[dict[str, Any]] = []
    notes: dict[str, str] = {}
    for backend in _parse_list(args.backends):
        if backend not in BACKENDS:
            notes[backend] = "unknown backend"
            continue
        python, why = find_python(backend, given)
        if python is None:
            notes[backend] = f"not run: {why}"
            print(f"{backend}: not run ({why})", flush=True)
            continue
        t0 = time.perf_counter()
        print(f"{backend}: running with {python} ...", flush=True)
        recs, note = run_backend(backend, python, args)
        records += recs
        info = next((r for r in recs if r["kind"] == "backend"), None)
        versions = ", ".join(f"{k} {v}" for k, v in (info or {}).get("versions", {}).items())
        notes[backend] = f"ran with {python} ({versions}) in {time.perf_counter() - t0:.0f} s"
        if note:
            notes[backend] += f"; {note}"
        print(f"  {notes[backend]}", flush=True)
    print()

    # ------------------------------------------------------------------ FLOPs per model
    flops: dict[str, float] = {}
    parts: dict[str, list[str]] = {}
    for r in records:
        if r["kind"] == "train" and "forward_flops" in r:
            flops.setdefault(r["model"], r["forward_flops"])
            parts.setdefault(r["model"], r["flops_parts"])
    if flops:
        print("FLOPs per image from the layer shapes (training ~ 3 x forward):")
        rows = [
            [m, f"{f / 1e6:.2f}", f"{3 * f / 1e6:.2f}", "; ".join(parts[m])]
            for m, f in flops.items()
        ]
        print_table(["model", "forward MFLOP", "training MFLOP", "layers"], rows)
        print()

    # ------------------------------------------------------------------ throughput
    bm = [r for r in records if r["kind"] == "backend_matmul"]
    best_mm = max([ref, *(r["flops"] for r in bm)])
    rows = []
    train = [r for r in records if r["kind"] == "train"]
    for r in train:
        if "error" in r:
            rows.append(
                [
                    r["backend"],
                    r["model"],
                    str(r["batch"]),
                    "on" if r["jit"] else "off",
                    *["-"] * 5,
                    f"failed: {r['error'][:70]}",
                ]
            )
            continue
        ips = r["images_per_second"]
        achieved = ips * 3 * r["forward_flops"]
        rows.append(
            [
                r["backend"],
                r["model"],
                str(r["batch"]),
                "on" if r["jit"] else "off",
                f"{ips:,.0f}",
                f"{achieved / 1e9:.1f}",
                f"{achieved / ref:.1%}",
                f"{achieved / best_mm:.1%}",
                f"{r['warmup_seconds']:.1f}",
                f"{r['batches']} batches",
            ]
        )
    if rows:
        print("training throughput (model.fit, synthetic data):")
        print_table(
            [
                "backend",
                "model",
                "batch",
                "jit",
                "images/s",
                "GFLOP/s",
                "of numpy mm",
                "of best mm",
                "warm-up s",
                "timed",
            ],
            rows,
        )
        print(
            "  (of numpy mm: of the numpy matmul reference above; of best mm: of the highest "
            f"matmul rate measured here, {best_mm / 1e9:.1f} GFLOP/s, numpy or a backend's own)"
        )
        print()
    if bm:
        print(
            "backend's own 2048x2048 float32 matmul (keras.ops.matmul): "
            + ", ".join(f"{r['backend']} {r['flops'] / 1e9:.1f} GFLOP/s" for r in bm)
        )
    print("backends:")
    for backend, note in notes.items():
        print(f"  {backend}: {note}")
    print(f"load average at end (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()

    # ------------------------------------------------------------------ conclusions
    ok = [r for r in train if "error" not in r]
    for backend in sorted({r["backend"] for r in ok}):
        for model in args.models:
            mine = {
                (r["batch"], r["jit"]): r["images_per_second"]
                for r in ok
                if r["backend"] == backend and r["model"] == model
            }
            if not mine:
                continue
            (b, j), best = max(mine.items(), key=lambda kv: kv[1])
            jit_gain = [
                f"batch {bb}: x{mine[(bb, True)] / mine[(bb, False)]:.2f}"
                for bb in args.batches
                if (bb, True) in mine and (bb, False) in mine
            ]
            batch_gain = [
                f"jit {'on' if jj else 'off'}: x{mine[(max(args.batches), jj)] / mine[(min(args.batches), jj)]:.2f}"
                for jj in args.jit
                if (max(args.batches), jj) in mine and (min(args.batches), jj) in mine
            ]
            print(
                f"RESULT {backend} {model}: fastest batch {b}, jit {'on' if j else 'off'} "
                f"({best:,.0f} img/s); jit on/off {', '.join(jit_gain) or '-'}; "
                f"batch {max(args.batches)}/{min(args.batches)} {', '.join(batch_gain) or '-'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
