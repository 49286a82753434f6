"""Packed trials in a study (sweeper.search.pack_loop): several trials of a worker train at once, each an
ordinary Optuna trial with its own epochs, pruning, pauses, continuations and checkpoint.

Real Keras training on small digits studies in real SQLite stores; no mocks.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from sweeper.search.run_options import RunOptions
from sweeper.search.runner import tune
from sweeper.store.store import Store
from sweeper.studyfile.config import parse_study
from sweeper.training.data import DataSpec, load_dataset
from sweeper.training.families.exponential import Exponential
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.packing import Pack
from sweeper.training.train_trial import TrainSettings, TrialStatus, run_trial, steps_per_epoch

STUDY = """\
[study]
name = "p"
seed = 0
n_trials = {n_trials}

[data]
dataset = "digits"
subset = 400

[train]
model = "mnist-cnn"
batch_size = 64
epochs = {epochs}
pack = {pack}

[sampler]
type = "random"

[space]
schedules = ["constant", "exponential"]
initial_lr = {{ low = 0.02, high = 0.3, log = true }}

[pruner]
type = "asha"
reduction_factor = 2
stall_factor = 0

[[baselines]]
name = "constant 0.1"
schedule = "constant"
initial_lr = 0.1
"""


def run_study(
    tmp_path: Path, *, pack: int, n_trials: int, epochs: int, **kw: Any
) -> tuple[Any, list[FrozenTrial], Store]:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    text = STUDY.format(pack=pack, n_trials=n_trials, epochs=epochs)
    spec = parse_study(text, str(tmp_path / "p.toml"))
    summary = tune(spec, RunOptions(storage=url, checkpoint_dir=str(tmp_path / "ckpt"), **kw))
    trials = optuna.load_study(study_name="p", storage=url).get_trials()
    return summary, trials, Store(url)


def epochs_by_trial(store: Store) -> dict[int, list[int]]:
    rows: dict[int, list[int]] = {}
    for r in store.epochs("p"):
        rows.setdefault(int(r["trial_number"]), []).append(int(r["epoch"]))
    return {n: sorted(e) for n, e in rows.items()}


def test_a_packed_study_keeps_every_trials_own_record(tmp_path: Path) -> None:
    summary, trials, store = run_study(tmp_path, pack=3, n_trials=6, epochs=4)
    assert summary.counts["running"] == summary.counts["waiting"] == 0
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    baseline = next(t for t in trials if t.user_attrs.get("baseline"))
    assert baseline.state == TrialState.COMPLETE and len(baseline.intermediate_values) == 4
    rows = epochs_by_trial(store)
    for t in trials:
        # each trial's epoch rows are its own intermediate values, epoch by epoch
        reported = sorted(t.intermediate_values)
        assert rows.get(t.number, []) == reported, t.number
        stored = {int(r["epoch"]): r["val_accuracy"] for r in store.epochs("p")
                  if int(r["trial_number"]) == t.number}  # fmt: skip
        assert all(np.isclose(stored[e], v) for e, v in t.intermediate_values.items()), t.number
    # the paused ones stopped at a rung with their checkpoint, some were continued from it
    paused = [t for t in trials if t.user_attrs.get("outcome") == "paused"]
    children = [t for t in trials if t.user_attrs.get("promoted_from") is not None]
    assert paused and all(t.user_attrs["paused_at_epoch"] in (1, 2) for t in paused)
    assert children  # and at least one was continued
    for child in children:
        at = child.user_attrs["promoted_at_epoch"]
        assert child.user_attrs.get("resumed_from_epoch") == at  # from the checkpoint
        assert rows[child.number] == list(range(len(child.intermediate_values)))
    # the ledger counts each epoch trained once: the continued epochs are not trained twice
    assert summary.epochs_spent == store.epochs_spent("p")
    trained = sum(len(e) for e in rows.values())
    copied = sum(c.user_attrs["promoted_at_epoch"] for c in children)
    assert store.epochs_spent("p") == trained - copied
    best = max(t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None)
    assert summary.best_value == pytest.approx(best)


def test_ctrl_c_puts_every_trial_of_the_pack_back_and_a_rerun_resumes(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    stop_after = 5  # epoch rows: the baseline and two trials are in the pack by then

    def count() -> int:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
            try:
                return int(con.execute("SELECT COUNT(*) FROM sweeper_epochs").fetchone()[0])
            finally:
                con.close()
        except sqlite3.Error:
            return 0

    done = threading.Event()

    def interrupt() -> None:
        deadline = time.monotonic() + 240
        while not done.is_set() and time.monotonic() < deadline:
            if count() >= stop_after:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    saved = signal.getsignal(signal.SIGINT)
    timer = threading.Thread(target=interrupt, daemon=True)
    timer.start()
    try:
        summary, trials, _ = run_study(tmp_path, pack=3, n_trials=3, epochs=6)
    finally:
        done.set()
        timer.join()
        signal.signal(signal.SIGINT, saved)
    assert summary.interrupted
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 3 and not [t for t in trials if t.state == TrialState.RUNNING]
    assert all("interrupted" in t.user_attrs["requeued"] for t in waiting)
    checkpoints = list((tmp_path / "ckpt" / "p").glob("trial-*/latest.weights.h5"))
    assert len(checkpoints) == 3  # one per trial of the pack, of its last finished epoch

    summary, trials, store = run_study(tmp_path, pack=3, n_trials=3, epochs=6)
    assert not summary.interrupted and summary.counts["waiting"] == 0
    rows = epochs_by_trial(store)
    resumed = [t for t in trials if t.user_attrs.get("resumed_from_epoch")]
    assert resumed  # at least one went on from its checkpoint, not from scratch
    for t in trials:
        assert rows[t.number] == sorted(t.intermediate_values), t.number  # no epoch twice


def test_a_checkpoint_of_a_pack_resumes_alone_and_the_other_way_round(tmp_path: Path) -> None:
    ds = load_dataset(DataSpec(name="digits", subset=400))
    settings = TrainSettings(model="mnist-cnn", batch_size=64, epochs=3, seed=0)
    spe = steps_per_epoch(len(ds.x_train), settings.batch_size)
    schedule = Exponential(0.1, decay_steps=spe, decay_rate=0.5)
    sgd = OptimizerSpec("sgd", momentum=0.9)

    # a copy trains an epoch in a pack and saves; the trial alone resumes after that epoch
    pack = Pack(ds, settings)
    copy = pack.add(schedule, sgd)
    pack.add(Exponential(0.05, decay_steps=spe, decay_rate=0.5), sgd)
    pack.train_epoch()
    folder = tmp_path / "from-pack"
    pack.save(copy, folder)
    alone = run_trial(ds, schedule, sgd, settings, backup_dir=str(folder))
    assert alone.status is TrialStatus.COMPLETE
    assert [r.epoch for r in alone.records] == [1, 2]
    assert alone.records[0].step == 2 * spe  # its optimizer went on from step spe
    assert alone.records[0].lr == pytest.approx(float(schedule.lr_at(2 * spe - 1)), rel=1e-6)

    # the trial alone pauses after an epoch; a copy in a new pack resumes from its checkpoint
    folder = tmp_path / "alone"
    paused = run_trial(
        ds,
        schedule,
        sgd,
        settings,
        backup_dir=str(folder),
        decide=lambda r: (TrialStatus.PAUSED, "pause") if r.epoch == 0 else None,
    )
    assert paused.status is TrialStatus.PAUSED
    other = Pack(ds, settings)
    fresh = other.add(schedule, sgd, seed=7)  # other initial weights
    assert other.restore(fresh, folder) == 1 and fresh.epoch == 1
    assert fresh.step() == spe
    # its weights are those of the checkpoint, read by Keras into the network alone
    from sweeper.training.models import build_model

    net = build_model(settings.model, ds.input_shape, ds.num_classes)
    net.load_weights(str(folder / "latest.weights.h5"), skip_mismatch=False)
    for a, b in zip(fresh.model.get_weights(), net.get_weights(), strict=True):
        assert np.array_equal(a, b)
    start = Pack(ds, settings).add(schedule, sgd, seed=7).model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(start, net.get_weights(), strict=True))
    empty = Pack(ds, settings)
    assert empty.restore(empty.add(schedule, sgd), tmp_path / "nothing") == 0


@pytest.mark.parametrize("pack", [1, 2])
def test_a_checkpoint_left_by_another_store_is_not_resumed(pack: int, tmp_path: Path) -> None:
    # a folder trial-0 of a study named "p", as a deleted store's trial 0 left it after epoch 1
    ds = load_dataset(DataSpec(name="digits", subset=400))
    settings = TrainSettings(model="mnist-cnn", batch_size=64, epochs=2, seed=0)
    old = Pack(ds, settings)
    copy = old.add(Exponential(0.3, decay_steps=5, decay_rate=0.5), OptimizerSpec())
    old.train_epoch()
    old.save(copy, tmp_path / "ckpt" / "p" / "trial-0")

    summary, trials, store = run_study(tmp_path, pack=pack, n_trials=1, epochs=2)
    (t,) = trials
    assert t.state == TrialState.COMPLETE and "resumed_from_epoch" not in t.user_attrs
    assert epochs_by_trial(store)[0] == [0, 1]  # trained from its own start
    assert summary.epochs_spent == 2
