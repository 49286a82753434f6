"""Helpers of the tests that run sweeper in real processes (test_workers, test_postgres,
test_places)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import optuna

from sweeper.search.outcomes import FINISHED, finished_count
from sweeper.search.promotion import config_of
from sweeper.store.place_claims import place_claims
from sweeper.store.store import Store

TESTS_DIR = Path(__file__).resolve().parent


def tiny_study(tmp_path: Path, model: str, *, baselines: int = 0, name: str = "tiny") -> Path:
    """A study of ``tiny_model`` on 400 digits, 1 epoch: well under a second of training."""
    text = textwrap.dedent(
        f"""
        [study]
        name = "{name}"
        n_trials = 12
        seed = 0

        [data]
        dataset = "digits"
        subset = 400

        [train]
        model = "{model}"
        batch_size = 128
        epochs = 1

        [sampler]
        type = "random"

        [pruner]
        type = "none"

        [space]
        schedules = ["constant", "exponential", "cosine"]
        initial_lr = {{ low = 0.01, high = 0.5, log = true }}
        decay_rate = {{ low = 0.1, high = 0.9 }}
        """
    )
    for i in range(baselines):
        text += f'\n[[baselines]]\nname = "constant {i}"\nschedule = "constant"\n'
        text += f"initial_lr = {0.01 * (i + 1)}\n"
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


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


ASKER = """
import json, os, random, sys, time, warnings
import optuna
from sweeper.search.places import Claimant, NoPlace, PlacedStudy, room
from sweeper.search.recovery import requeue
from sweeper.search.outcomes import FINISHED, finished_count
from sweeper.store import optuna_ids
from sweeper.store.store import Store

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.simplefilter("ignore")
url, name, target, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
store = Store(url)
study = PlacedStudy(
    study_name=name,
    storage=store.optuna_storage(heartbeat=False),
    sampler=optuna.samplers.RandomSampler(seed=os.getpid()),
    claimant=Claimant(store, target, f"asker:{os.getpid()}"),
)
rng = random.Random(os.getpid())
ran, deadline = [], time.time() + 90
while time.time() < start_at:
    time.sleep(0.001)
while time.time() < deadline:
    trials = study.get_trials(deepcopy=False)
    if finished_count(trials) >= target:
        break
    if not room(study, trials, target):  # the rest runs elsewhere: a worker would wait
        time.sleep(0.05)
        continue
    try:
        trial = study.ask()
    except NoPlace:  # another process was first
        continue
    trial.suggest_float("x", 0.0, 1.0)
    time.sleep(rng.random() * 0.01)
    if rng.random() < 0.2:  # put back, as a stopped worker does: another takes it again
        requeue(study, optuna_ids.trial_id(trial), "was put back by the test")
        continue
    study.tell(trial, rng.random())
    ran.append(trial.number)
print(json.dumps(ran))
"""


def ask_concurrently(
    url: str, name: str, *, processes: int, target: int, queued: int = 2
) -> list[int]:
    """``processes`` processes share one study of ``target`` configurations through
    :class:`~sweeper.search.places.PlacedStudy`, each asking for trials as a worker does (told
    at once, one in five put back in the queue), from one moment on; ``queued`` new
    configurations wait in the queue first (as baselines do). The trial numbers each told."""
    store = Store(url)
    study = optuna.create_study(study_name=name, storage=store.optuna_storage(heartbeat=False))
    for i in range(queued):
        study.enqueue_trial({"x": i / 10}, user_attrs={"baseline": f"b{i}"})
    assert store.engine is not None  # sweeper's tables made here, as `tune` makes them
    store.close()
    start_at = time.time() + 5.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ASKER, url, name, str(target), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=sweeper_env(),
        )
        for _ in range(processes)
    ]
    told: list[int] = []
    for p in procs:
        out, err = p.communicate(timeout=150)
        assert p.returncode == 0, err[-3000:]
        told += json.loads(out.strip().splitlines()[-1])
    return told


def assert_exact_places(url: str, name: str, target: int, told: list[int] | None = None) -> None:
    """``target`` configurations finished (each trial in ``told`` told once); nothing left
    running or queued; every place of the target bound, to exactly those configurations."""
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    states = Counter(t.state.name for t in trials)
    assert finished_count(trials) == target, f"{finished_count(trials)} for {target}: {states}"
    assert states["RUNNING"] == 0 and states["WAITING"] == 0, states
    if told is not None:
        assert len(told) == len(set(told)) == target, told
    store = Store(url)
    claims = place_claims(store, name)
    store.close()
    assert [c.place for c in claims] == list(range(target)), claims
    done = {config_of(t) for t in trials if t.state in FINISHED}
    assert {c.config for c in claims} == done and len(done) == target, (claims, done)
