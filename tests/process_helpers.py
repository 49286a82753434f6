"""Helpers of the tests that run sweeper in real processes (test_workers, test_postgres)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna

from sweeper.store.store import Store

TESTS_DIR = Path(__file__).resolve().parent


def sweeper_env(**extra: str) -> dict[str, str]:
    """The environment of a sweeper process: no store or checkpoint dir inherited, user models
    importable from tests/."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("SWEEPER_STORAGE", "SWEEPER_CHECKPOINTS")
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


POPPER = """
import json, sys, time, warnings
import optuna
from sweeper.store.store import Store

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.simplefilter("ignore")
url, name, n, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
study = optuna.load_study(study_name=name, storage=Store(url).optuna_storage(heartbeat=False))
claimed = []
while time.time() < start_at:
    time.sleep(0.001)
while True:
    trial = study.ask()  # takes a queued trial first, like every worker's next trial
    if trial.number >= n:  # the queue is empty: a new trial was created
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        break
    claimed.append(trial.number)
    try:
        study.tell(trial, 0.0)
    except Exception:  # another process finished it first
        pass
print(json.dumps(claimed))
"""


def claim_queue_concurrently(
    url: str, name: str = "queue", processes: int = 4, queued: int = 40
) -> Counter[int]:
    """Enqueue ``queued`` trials, let ``processes`` processes take them at once; claims per trial."""
    store = Store(url)
    study = optuna.create_study(study_name=name, storage=store.optuna_storage(heartbeat=False))
    for i in range(queued):
        study.enqueue_trial({"x": float(i)})
    store.close()
    start_at = time.time() + 5.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", POPPER, url, name, str(queued), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=sweeper_env(),
        )
        for _ in range(processes)
    ]
    claims: Counter[int] = Counter()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        claims.update(json.loads(out.strip().splitlines()[-1]))
    return claims
