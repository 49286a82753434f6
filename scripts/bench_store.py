"""The store's coordination cost with many workers: trials per hour and the store's seconds per
trial against the number of trials, with a dry-run trainer.

Every worker is a real ``sweeper worker`` process (:func:`sweeper.search.runner.join_study`:
places, ASHA's rungs and promotions, the budget, the ledger, heartbeats, per-epoch rows and
checkpoint files) in which only the training is replaced, here, by a stub: each epoch sleeps
``--epoch-seconds`` and reports a synthetic validation accuracy (a smooth function of the
initial rate, so the search has something to rank), and checkpoints are small real files. No
Keras is imported, so many workers fit on 2 cores.

The store's seconds of a trial = the time its worker spent outside the stub's sleeps between
the end of its previous trial and the end of this one (asking for it, sampling, places,
promotions, per-epoch writes, the pruner, telling). Printed per bin of trial numbers (median,
p95), with trials per hour and the count of lock or serialization errors in the workers' logs.

    python scripts/bench_store.py --workers 1,8 --trials 500 --epoch-seconds 0.05
    python scripts/bench_store.py --storage postgresql+psycopg://sweeper@localhost/bench \\
        --workers 1,8,32,64 --trials 10000 --epoch-seconds 2

Measurement only: the stub lives in this script, never in the package.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # this checkout's sweeper, installed or not
    sys.path.insert(0, str(ROOT))

STUDY = """\
[study]
name = "{name}"
seed = 0
n_trials = {trials}

[data]
dataset = "digits"
subset = 200

[train]
model = "mnist-cnn"
batch_size = 64
epochs = 9

[sampler]
type = "random"

[space]
schedules = ["constant", "exponential", "cosine"]
"""

# --grown: both studies' target (the grown one's raised to it): room for every trial measured
TARGET_GROWN = 20_000

ERRORS = ("database is locked", "could not serialize", "deadlock detected", "OperationalError")


# -- the worker: sweeper's worker with a dry-run trainer -------------------------------------


def _install_stub(epoch_seconds: float, log_path: Path) -> None:
    """Replace training (and the Keras start-up) in this process by the dry-run stub."""
    import optuna

    import sweeper.search.worker as worker_mod

    try:
        import sweeper.training.train_trial as trial_mod
    except ImportError:  # a checkout from before the module's name changed (--code)
        import sweeper.training.trial as trial_mod  # type: ignore[no-redef]
    from sweeper.training import checkpoints

    log = log_path.open("a", buffering=1)
    state = {"mark": time.perf_counter(), "slept": 0.0}

    def fake_run_trial(
        dataset: Any,
        schedule: Any,
        optimizer: Any = None,
        settings: Any = None,
        *,
        trial: Any = None,
        on_epoch: Any = None,
        backup_dir: Any = None,
        decide: Any = None,
        on_complete: Any = None,
        verbose: int = 0,
    ) -> Any:
        ck = checkpoints.Checkpoint.at(backup_dir) if backup_dir is not None else None
        start = checkpoints.recover(ck).epoch if ck is not None else 0
        lr0 = float(schedule.lr_at(0))
        # best near 0.1, a gentle hill in log space; the number of the run adds noise
        quality = 0.95 - 0.08 * (math.log10(max(lr0, 1e-9)) + 1.0) ** 2
        number = ck.trial if ck is not None and ck.trial is not None else 0
        noise = ((number * 2654435761) % 1000) / 1000 * 0.01
        records = []
        spe = 4
        for epoch in range(start, settings.epochs):
            time.sleep(epoch_seconds)
            state["slept"] += epoch_seconds
            acc = max(0.1, min(0.999, (quality + noise) * (1 - math.exp(-(epoch + 1) / 2.5))))
            step = (epoch + 1) * spe
            rec = trial_mod.EpochRecord(
                epoch=epoch,
                step=step,
                lr=float(schedule.lr_at(step - 1)),
                loss=1 - acc,
                accuracy=acc,
                val_loss=1 - acc,
                val_accuracy=acc,
                seconds=epoch_seconds,
            )
            records.append(rec)
            if on_epoch is not None:
                on_epoch(rec)
            if ck is not None and epoch + 1 < settings.epochs:
                checkpoints.save(ck, _small_file, epoch + 1)
            if trial is not None:
                trial.report(acc, epoch)
                if trial.should_prune():
                    _done(number)
                    raise optuna.TrialPruned()
            decision = decide(rec) if decide is not None else None
            if decision is not None:
                _done(number)
                return trial_mod.TrialResult(decision[0], records, reason=decision[1])
        _done(number)
        return trial_mod.TrialResult(trial_mod.TrialStatus.COMPLETE, records)

    def _done(number: int) -> None:
        now = time.perf_counter()
        store_s = now - state["mark"] - state["slept"]
        log.write(json.dumps({"trial": number, "store_s": store_s, "t": time.time()}) + "\n")
        state["mark"], state["slept"] = now, 0.0

    class _Info:
        backend = "none (dry run)"
        devices: tuple[str, ...] = ()

        def describe(self) -> str:
            return "dry-run trainer (scripts/bench_store.py): no Keras"

    setattr(trial_mod, "run_trial", fake_run_trial)  # noqa: B010 (replacing, measurement only)
    setattr(trial_mod, "environment", lambda: {"dry_run": True})  # noqa: B010
    setattr(worker_mod, "load_keras", _Info)  # noqa: B010


def _small_file(path: Path) -> None:
    path.write_bytes(b"\0" * 4096)  # a checkpoint's weights, small: real files all the same


def worker_main(
    url: str, name: str, epoch_seconds: float, log_path: str, ckpt: str, stop_after: float = 0
) -> int:
    import threading

    import optuna

    if stop_after:  # --grown: measured for a fixed time, then ended where it stands
        threading.Timer(stop_after, lambda: os._exit(0)).start()

    from sweeper.search.run_options import RunOptions
    from sweeper.search.runner import join_study
    from sweeper.store.store import Store

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _install_stub(epoch_seconds, Path(log_path))
    join_study(Store(url), name, RunOptions(checkpoint_dir=ckpt, trust_store=True))
    return 0


# -- one measurement ----------------------------------------------------------------------------


def prepare(url: str, name: str, trials: int, folder: Path) -> None:
    """The study in the store, as ``sweeper tune`` leaves it before its first trial."""
    from sweeper.search.runner import prepare_study
    from sweeper.store.store import Store
    from sweeper.studyfile.config import parse_study
    from sweeper.training.data import load_dataset
    from sweeper.training.train_trial import steps_per_epoch

    path = folder / f"{name}.toml"
    path.write_text(STUDY.format(name=name, trials=trials))
    spec = parse_study(path.read_text(), str(path))
    dataset = load_dataset(spec.data)
    store = Store(url)
    prepare_study(
        spec,
        store,
        name,
        allow_changed=False,
        steps_per_epoch=steps_per_epoch(len(dataset.x_train), spec.train.batch_size),
        target=trials,
        budget=None,
        model=None,
    )
    store.close()


def measure(
    url: str, workers: int, trials: int, epoch_seconds: float, folder: Path
) -> dict[str, Any]:
    name = f"store-{workers}w-{int(time.time())}"
    prepare(url, name, trials, folder)
    logs = [folder / f"{name}.w{i}.jsonl" for i in range(workers)]
    outs = [folder / f"{name}.w{i}.log" for i in range(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEPER_")}
    env["SWEEPER_STORAGE"] = url  # never on a command line
    start = time.time()
    procs = []
    for i in range(workers):
        cmd = [
            sys.executable,
            __file__,
            "--_worker",
            name,
            "--epoch-seconds",
            str(epoch_seconds),
            "--_log",
            str(logs[i]),
            "--_ckpt",
            str(folder / "ckpt"),
        ]
        with outs[i].open("w") as out:
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env))
    codes = [p.wait() for p in procs]
    seconds = time.time() - start
    rows = [
        json.loads(ln) for path in logs if path.exists() for ln in path.read_text().splitlines()
    ]
    errors = sum(out.read_text().count(e) for out in outs for e in ERRORS)
    return {
        "workers": workers,
        "trials": trials,
        "epoch_seconds": epoch_seconds,
        "seconds": seconds,
        "rows": rows,
        "errors": errors,
        "codes": codes,
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def report(result: dict[str, Any], bins: list[int]) -> None:
    rows = result["rows"]
    done = len(rows)
    per_hour = done / result["seconds"] * 3600 if result["seconds"] else 0.0
    print(
        f"{result['workers']} worker(s): {done} trials in {result['seconds']:.0f} s "
        f"({per_hour:,.0f} trials/hour), errors in the logs {result['errors']}, "
        f"exit codes {sorted(set(result['codes']))}"
    )
    lo = 0
    for i, hi in enumerate(bins):
        last = i == len(bins) - 1  # the continuations past the target are numbered beyond it
        chunk = [r["store_s"] for r in rows if lo <= r["trial"] and (last or r["trial"] < hi)]
        if chunk:
            print(
                f"    trials {lo:>6}-{'' if last else hi - 1:<6} store s/trial: median {statistics.median(chunk):.4f}"
                f", p95 {_p95(chunk):.4f} (n={len(chunk)})"
            )
        lo = hi


def ratios(results: list[dict[str, Any]]) -> None:
    """Each run's trials per hour against the first's (fewest workers)."""
    if len(results) < 2:
        return
    base = len(results[0]["rows"]) / results[0]["seconds"]
    for r in results[1:]:
        rate = len(r["rows"]) / r["seconds"]
        print(
            f"RESULT {r['workers']} workers: {rate / base:.1f}x the trials per hour of "
            f"{results[0]['workers']}"
        )


def _copy_store(grown: str, to: str, folder: Path) -> str:
    """A copy of the store ``grown`` (a SQLite file, or a PostgreSQL URL) named ``to``: a file
    in ``folder``, or a database made from it as a template. Its URL."""
    import shutil

    if not grown.startswith("postgresql"):
        shutil.copy(grown, folder / f"{to}.db")
        return f"sqlite:///{folder / to}.db"
    return _new_database(grown, to, template=True)


def _new_database(url: str, name: str, *, template: bool = False) -> str:
    """A new PostgreSQL database ``name`` on the server of ``url`` (a copy of ``url``'s when
    ``template``): its URL."""
    import sqlalchemy as sa

    src = sa.engine.make_url(url)
    admin = sa.create_engine(src.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as con:
            con.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            like = f' TEMPLATE "{src.database}"' if template else ""
            con.exec_driver_sql(f'CREATE DATABASE "{name}"{like}')
    finally:
        admin.dispose()
    return src.set(database=name).render_as_string(hide_password=False)


def side_by_side(grown: str, seconds: float, codes: list[Path], epoch_seconds: float) -> int:
    """Per checkout in ``codes``: one worker on a new study (its first trials) and one on a
    copy of the store ``grown`` (a SQLite file or a PostgreSQL URL whose study is thousands of
    trials in), all at once for ``seconds``, so that every worker shares the same load; the
    store's seconds per trial of each."""
    import sqlite3

    import optuna
    import sqlalchemy as sa

    from sweeper.store.storage_url import mask_url

    folder = Path(tempfile.mkdtemp(prefix="bench-store-grown-"))
    pg = grown.startswith("postgresql")
    src = grown if pg else f"sqlite:///{grown}"
    name = optuna.get_all_study_names(src)[0]
    if not pg:
        with sqlite3.connect(grown) as con:  # its WAL into the file, so a copy of it is whole
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    engine = sa.create_engine(src)
    with engine.connect() as con:
        size = con.exec_driver_sql("SELECT count(*) FROM trials").scalar_one()
    engine.dispose()
    print(
        f"bench_store --grown: {mask_url(src)} (study {name}, {size:,} trials) and a new study, one "
        f"worker each per checkout, {seconds:.0f} s at once, dry-run epochs of {epoch_seconds} s"
    )
    procs = []
    for k, code in enumerate(codes):
        for which in ("new", "grown"):
            if which == "grown":
                url = _copy_store(grown, f"bench_grown_{k}", folder)
                study = name
                # room for more: its target raised as `--n-trials` would (a new study's too)
                optuna.load_study(study_name=name, storage=url).set_user_attr(
                    "n_trials", TARGET_GROWN
                )
            else:
                study = "new"
                url = (
                    _new_database(grown, f"bench_new_{k}")
                    if pg
                    else f"sqlite:///{folder / f'{k}-new.db'}"
                )
                prepare(url, study, TARGET_GROWN, folder)
            log = folder / f"{k}-{which}.jsonl"
            env = {k2: v for k2, v in os.environ.items() if not k2.startswith("SWEEPER_")}
            env["SWEEPER_STORAGE"] = url
            cmd = [
                sys.executable,
                __file__,  # this script's stub, on the checkout's package (--_code)
                "--_code",
                str(code),
                "--_worker",
                study,
                "--epoch-seconds",
                str(epoch_seconds),
                "--_log",
                str(log),
                "--_ckpt",
                str(folder / f"ckpt-{k}-{which}"),
                "--_stop-after",
                str(seconds),
            ]
            out = (folder / f"{k}-{which}.log").open("w")
            procs.append((code, which, log, subprocess.Popen(cmd, stdout=out, stderr=out, env=env)))
    for *_, proc in procs:
        proc.wait()
    rows = []
    for code, which, log, _ in procs:
        got = [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []
        store_s = [r["store_s"] for r in got[3:]]  # the first trials hold the start-up
        if not store_s:
            print(f"{code} {which}: no trial measured (see {log.with_suffix('.log')})")
            return 1
        rows.append(
            [
                str(code),
                which,
                f"{got[3]['trial']}-{got[-1]['trial']}",
                str(len(store_s)),
                f"{statistics.median(store_s):.4f}",
                f"{_p95(store_s):.4f}",
            ]
        )
    width = [max(len(r[i]) for r in rows) for i in range(6)]
    head = ["checkout", "study", "trials", "n", "median s", "p95 s"]
    print("  ".join(h.ljust(w) for h, w in zip(head, width, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))
    for i in range(0, len(rows), 2):
        ratio = float(rows[i + 1][4]) / float(rows[i][4])
        print(f"RESULT {rows[i][0]}: grown / new store s/trial {ratio:.2f}x")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", help="the store's URL [default: a new SQLite file]")
    parser.add_argument("--workers", default="1,8", help="worker counts, comma separated")
    parser.add_argument("--trials", type=int, default=500, help="the study's target")
    parser.add_argument("--epoch-seconds", type=float, default=0.05, help="each dry-run epoch")
    parser.add_argument("--out", help="write the results (JSON) here")
    parser.add_argument("--from-json", help="print the tables of a saved --out file again")
    parser.add_argument(
        "--grown",
        help="a store whose study is thousands of trials in (a SQLite file, or a PostgreSQL URL: "
        "copied as a template database): measure a worker on a copy and one on a new study side "
        "by side (see --seconds, --code)",
    )
    parser.add_argument("--seconds", type=float, default=120, help="--grown: how long")
    parser.add_argument(
        "--code",
        default=str(ROOT),
        help="--grown: checkouts whose package the workers run, comma separated (e.g. this one "
        "and a `git worktree` of an earlier commit) [default: this checkout]",
    )
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    parser.add_argument("--_stop-after", type=float, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--_code", help=argparse.SUPPRESS)
    parser.add_argument("--_log", help=argparse.SUPPRESS)
    parser.add_argument("--_ckpt", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._code:  # the package of that checkout, before this one's
        sys.path.insert(0, args._code)
    if args._worker:
        return worker_main(
            os.environ["SWEEPER_STORAGE"],
            args._worker,
            args.epoch_seconds,
            args._log,
            args._ckpt,
            args._stop_after,
        )
    if args.grown:
        codes = [Path(c).resolve() for c in args.code.split(",")]
        return side_by_side(args.grown, args.seconds, codes, args.epoch_seconds)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        bins = [b for b in (100, 1000, 10000, 100000) if b < saved[0]["trials"]] + [
            saved[0]["trials"]
        ]
        for result in saved:
            report(result, bins)
        ratios(saved)
        return 0
    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    url = args.storage or f"sqlite:///{folder / 'store.db'}"
    from sweeper.store.storage_url import mask_url

    bins = [b for b in (100, 1000, 10000, 100000) if b < args.trials] + [args.trials]
    print(
        f"bench_store: {mask_url(url)}, target {args.trials} trials, dry-run epochs of "
        f"{args.epoch_seconds} s, workers {args.workers}; {os.cpu_count()} CPU cores"
    )
    results = []
    for n in (int(w) for w in args.workers.split(",")):
        result = measure(url, n, args.trials, args.epoch_seconds, folder)
        report(result, bins)
        results.append(result)
    ratios(results)
    if args.out:
        Path(args.out).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
