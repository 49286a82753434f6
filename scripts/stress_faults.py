"""Interrupt and kill a real ``sweeper tune`` at random moments, many times, and check the store.

Each round starts a small study (digits, a few trials of 2 epochs, two baselines) in a fresh
SQLite store, sends SIGINT (``--sigint``) or SIGKILL (``--sigkill``) after a random delay, then
runs the same command again and checks what a user relies on:

* SIGINT: exit status 130, the resume hint, no traceback or "Exception ignored", no FAILED or
  RUNNING trial left;
* both: the rerun exits 0 with exactly the target of finished trials, nothing RUNNING or WAITING,
  each baseline once.

``--asha N`` adds N SIGKILL rounds on a study under the default ASHA pruner (trials pause at the
rungs and continue from their checkpoints; 8 configurations of 4 epochs, no baselines), each
followed by the same command, and checks from the store's ledger of trained epochs:

* exactly the target of finished configurations, nothing RUNNING or WAITING, none FAILED;
* no (configuration, epoch) trained twice, except the one epoch in progress at the kill (a kill
  after an epoch's row was written and before its checkpoint was: at most one per round);
* every continuation of a paused configuration resumed from a checkpoint (``resumed_from_epoch``)
  at the epoch the configuration paused at, or later when the continuation itself was killed and
  requeued; none restarted from epoch 0.

It prints one line per round and a summary. Example (the long loop that no test runs):

    python scripts/stress_faults.py --sigint 20 --sigkill 20
    python scripts/stress_faults.py --sigint 0 --sigkill 0 --asha 40 --max-delay 20
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

TARGET = 4
STUDY = """\
[study]
name = "stress"
seed = 0

[data]
dataset = "digits"
subset = 300

[train]
epochs = 2
batch_size = 64

[pruner]
type = "none"

[space]
schedules = ["constant", "exponential"]
initial_lr = { low = 0.01, high = 0.2, log = true }
decay_rate = { low = 0.1, high = 0.9 }

[[baselines]]
name = "b1"
schedule = "constant"
initial_lr = 0.05

[[baselines]]
name = "b2"
schedule = "constant"
initial_lr = 0.1
"""


ASHA_TARGET = 8
ASHA_STUDY = """\
[study]
name = "stress"
seed = 0

[data]
dataset = "digits"
subset = 300

[train]
epochs = 4
batch_size = 64

[pruner]
stall_factor = 0

[space]
schedules = ["constant", "exponential", "cosine"]
initial_lr = { low = 0.01, high = 0.2, log = true }
decay_rate = { low = 0.1, high = 0.9 }
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPER_STORAGE", "SWEEPER_KILL_AT")}
    env["PYTHONUNBUFFERED"] = "1"
    env["SWEEPER_HEARTBEAT_GRACE"] = "3"  # a killed trial's heartbeat goes stale in seconds
    return env


def one_round(kind: str, delay: float, folder: Path) -> tuple[bool, str]:
    from sweeper.search.trial_record import BASELINE_ATTR

    (folder / "s.toml").write_text(STUDY)
    url = f"sqlite:///{folder / 's.db'}"
    cmd = [sys.executable, "-m", "sweeper", "tune", "s.toml", "--storage", url]
    cmd += ["--n-trials", str(TARGET), "--checkpoint-dir", str(folder / "ckpt")]
    log = folder / "first.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=folder, env=_env(), stdout=fh, stderr=subprocess.STDOUT)
    time.sleep(delay)
    if proc.poll() is not None:
        return True, f"finished before the {kind} ({delay:.2f} s)"
    proc.send_signal(signal.SIGINT if kind == "sigint" else signal.SIGKILL)
    rc = proc.wait(timeout=300)
    output = log.read_text(errors="replace")
    if kind == "sigint":
        if rc != 130:
            return False, f"exit {rc} after SIGINT at {delay:.2f} s: {output[-300:]!r}"
        for bad in ("Traceback", "Exception ignored", "Aborted!"):
            if bad in output:
                return False, f"{bad!r} in the output after SIGINT at {delay:.2f} s"
        if (folder / "s.db").exists():
            states = [t.state for t in optuna.load_study(study_name="stress", storage=url).trials]
            if TrialState.FAIL in states or TrialState.RUNNING in states:
                return False, f"trials left {[s.name for s in states]} after SIGINT"
    elif rc != -signal.SIGKILL:
        return False, f"exit {rc} after SIGKILL"
    again = subprocess.run(
        cmd, cwd=folder, env=_env(), capture_output=True, text=True, timeout=600, check=False
    )
    if again.returncode != 0:
        return False, f"rerun exit {again.returncode}: {again.stderr[-300:]!r}"
    trials = optuna.load_study(study_name="stress", storage=url).get_trials()
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    counted = [t for t in trials if t.number not in retried]
    states = [t.state for t in trials]
    if TrialState.RUNNING in states or TrialState.WAITING in states:
        return False, f"after the rerun: {[s.name for s in states]}"
    if len(counted) != TARGET:
        return False, f"{len(counted)} counted trials for a target of {TARGET}"
    names = sorted(t.user_attrs[BASELINE_ATTR] for t in counted if t.user_attrs.get(BASELINE_ATTR))
    if names != ["b1", "b2"]:
        return False, f"baselines {names}"
    return True, f"{kind} at {delay:.2f} s: ok ({len(trials)} trials, {len(retried)} retried)"


def asha_round(delay: float, folder: Path) -> tuple[bool, str]:
    """One SIGKILL of a study whose trials pause and continue, then the same command."""
    from sweeper.search.outcomes import finished_count
    from sweeper.search.trial_record import CONFIG_ATTR, TrialRecord
    from sweeper.store.store import Store

    (folder / "s.toml").write_text(ASHA_STUDY)
    url = f"sqlite:///{folder / 's.db'}"
    cmd = [sys.executable, "-m", "sweeper", "tune", "s.toml", "--storage", url]
    cmd += ["--n-trials", str(ASHA_TARGET), "--checkpoint-dir", str(folder / "ckpt")]
    with (folder / "first.log").open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=folder, env=_env(), stdout=fh, stderr=subprocess.STDOUT)
    time.sleep(delay)
    if proc.poll() is not None:
        return True, f"finished before the kill ({delay:.2f} s)"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=300)
    again = subprocess.run(
        cmd, cwd=folder, env=_env(), capture_output=True, text=True, timeout=900, check=False
    )
    if again.returncode != 0:
        return False, f"rerun exit {again.returncode}: {again.stderr[-300:]!r}"
    trials = optuna.load_study(study_name="stress", storage=url).get_trials()
    states = [t.state for t in trials]
    if {TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL} & set(states):
        return False, f"after the rerun: {[s.name for s in states]}"
    if finished_count(trials) != ASHA_TARGET:
        return False, f"{finished_count(trials)} finished configurations, target {ASHA_TARGET}"
    config_of = {t.number: int(t.user_attrs.get(CONFIG_ATTR, t.number)) for t in trials}
    store = Store(url)
    try:
        rows = store.ledger("stress")
    finally:
        store.close()
    trained: dict[tuple[int, int], int] = {}
    for r in rows:
        key = (config_of.get(int(r["trial_number"]), int(r["trial_number"])), int(r["epoch"]))
        trained[key] = trained.get(key, 0) + 1
    twice = {k: n for k, n in trained.items() if n > 1}
    if sum(n - 1 for n in twice.values()) > 1:
        return False, f"(configuration, epoch) trained more than once: {twice}"
    records = {t.number: TrialRecord.of(t) for t in trials}
    continued = [t for t in trials if records[t.number].promoted_from is not None]
    for t in continued:
        record = records[t.number]
        at = record.promoted_at or 0
        resumed = record.resumed_from
        # at the pause's epoch, or later: a continuation killed and requeued resumes from its
        # own newer checkpoint
        if record.restarted or resumed is None or resumed < at:
            why = record.restarted or f"resumed at {resumed}"
            return False, f"continuation trial {t.number} of a pause at epoch {at}: {why}"
    return True, (
        f"asha kill at {delay:.2f} s: ok ({len(trials)} trials, {len(continued)} continuations "
        f"resumed from their checkpoints, {len(rows)} epochs in the ledger, "
        f"{sum(n - 1 for n in twice.values())} trained twice)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sigint", type=int, default=5, help="rounds with SIGINT")
    parser.add_argument("--sigkill", type=int, default=5, help="rounds with SIGKILL")
    parser.add_argument("--asha", type=int, default=0, help="SIGKILL rounds of an ASHA study")
    parser.add_argument("--max-delay", type=float, default=7.0, help="latest signal, seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    results: dict[str, list[bool]] = {"sigint": [], "sigkill": [], "asha": []}
    for kind, rounds in (("sigint", args.sigint), ("sigkill", args.sigkill), ("asha", args.asha)):
        for i in range(rounds):
            delay = rng.uniform(0.0, args.max_delay)
            with tempfile.TemporaryDirectory() as tmp:
                if kind == "asha":
                    ok, line = asha_round(delay, Path(tmp))
                else:
                    ok, line = one_round(kind, delay, Path(tmp))
            results[kind].append(ok)
            print(f"{kind} {i + 1:>2}/{rounds}: {'PASS' if ok else 'FAIL'}  {line}", flush=True)
    for kind, oks in results.items():
        if oks:
            print(f"{kind}: {sum(oks)} of {len(oks)} rounds kept every invariant")
    sys.exit(0 if all(all(v) for v in results.values()) else 1)


if __name__ == "__main__":
    main()
