"""Tests of sweeper.search.runner's helpers on real Optuna storages (SQLite files in tmp_path)."""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from sweeper.environment import STORAGE_ENV
from sweeper.errors import StorageError, StudyChangedError
from sweeper.search.outcomes import count_states, finished_count, superseded
from sweeper.search.recovery import mark_worker, reap_dead_local_trials, requeue
from sweeper.search.run_options import RunOptions
from sweeper.search.runner import join_study, prepare_study
from sweeper.search.samplers_pruners import make_pruner, make_sampler
from sweeper.search.trial_record import WORKER_ATTR
from sweeper.store.model_identity import MODEL_ATTR
from sweeper.store.storage_url import DEFAULT_URL, mask_url, resolve_url
from sweeper.store.store import Store
from sweeper.studyfile.config import parse_study
from sweeper.training.fingerprint import ModelFingerprint, fingerprint

HOST = socket.gethostname()
LR = FloatDistribution(1e-4, 1.0, log=True)


@pytest.fixture()
def study(tmp_path: Path) -> optuna.Study:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    return optuna.create_study(study_name="s", storage=storage, direction="maximize")


def reload(study: optuna.Study) -> list[FrozenTrial]:
    return optuna.load_study(study_name=study.study_name, storage=study._storage).get_trials()


def by_number(study: optuna.Study, number: int) -> FrozenTrial:
    return next(t for t in reload(study) if t.number == number)


def running_trial(study: optuna.Study, worker: str | None = None) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("lr", LR.low, LR.high, log=True)
    if worker is not None:
        mark_worker(trial, worker)
    return trial


def retry(study: optuna.Study, failed: FrozenTrial) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback()
    callback(study, failed)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def spec_from(text: str):
    return parse_study(text, "test.toml")


# --------------------------------------------------------------------------------------------
# count_states / finished_count / superseded
# --------------------------------------------------------------------------------------------


def test_counts_by_state(study: optuna.Study) -> None:
    study.tell(study.ask(), 0.5)
    study.tell(study.ask(), 0.7)
    study.tell(study.ask(), state=TrialState.PRUNED)
    study.tell(study.ask(), state=TrialState.FAIL)
    study.ask()  # left running
    study.enqueue_trial({"lr": 0.01})
    trials = reload(study)
    assert count_states(trials) == {
        "complete": 2,
        "pruned": 1,
        "failed": 1,
        "running": 1,
        "waiting": 1,
        "retried": 0,
        "paused": 0,
        "promoted": 0,
    }
    assert finished_count(trials) == 4
    assert superseded(trials) == set()


def test_a_failed_trial_retried_by_the_heartbeat_is_not_counted(study: optuna.Study) -> None:
    study.tell(study.ask(), 0.5)
    trial = running_trial(study)
    study.tell(trial, state=TrialState.FAIL)
    failed = by_number(study, trial.number)
    retry(study, failed)

    trials = reload(study)
    assert len(trials) == 3
    copy = trials[-1]
    assert copy.state == TrialState.WAITING
    assert copy.params == failed.params
    assert superseded(trials) == {failed.number}
    counts = count_states(trials)
    assert counts["failed"] == 0
    assert counts["retried"] == 1
    assert counts["waiting"] == 1
    assert finished_count(trials) == 1

    # the retry runs with the same parameters and then counts once
    again = study.ask()
    assert again.number == copy.number
    assert again.suggest_float("lr", LR.low, LR.high, log=True) == failed.params["lr"]
    study.tell(again, 0.6)
    trials = reload(study)
    assert count_states(trials)["complete"] == 2
    assert count_states(trials)["retried"] == 1
    assert finished_count(trials) == 2


def test_a_retry_that_fails_again_supersedes_every_earlier_attempt(study: optuna.Study) -> None:
    first = running_trial(study)
    study.tell(first, state=TrialState.FAIL)
    retry(study, by_number(study, first.number))
    second = study.ask()
    study.tell(second, state=TrialState.FAIL)
    retry(study, by_number(study, second.number))
    trials = reload(study)
    assert superseded(trials) == {first.number, second.number}
    counts = count_states(trials)
    assert (counts["failed"], counts["retried"], counts["waiting"]) == (0, 2, 1)
    assert finished_count(trials) == 0


# --------------------------------------------------------------------------------------------
# requeue
# --------------------------------------------------------------------------------------------


def test_requeue_puts_a_running_trial_back_with_its_number_and_params(
    study: optuna.Study,
) -> None:
    study.tell(study.ask(), 0.5)
    trial = running_trial(study, worker=f"{HOST}:1")
    trial.set_user_attr("schedule", {"family": "constant", "initial_lr": 0.1})
    before = by_number(study, trial.number)

    assert requeue(study, trial._trial_id, "was interrupted") is True
    after = by_number(study, trial.number)
    assert after.state == TrialState.WAITING
    assert after._trial_id == before._trial_id
    assert after.params == before.params
    assert after.user_attrs["requeued"] == "was interrupted"
    assert after.user_attrs["schedule"] == before.user_attrs["schedule"]
    assert len(reload(study)) == 2
    assert count_states(reload(study))["waiting"] == 1

    # the next ask takes it again, with the same parameters
    again = study.ask()
    assert again.number == trial.number
    assert again.suggest_float("lr", LR.low, LR.high, log=True) == before.params["lr"]
    study.tell(again, 0.9)
    assert by_number(study, trial.number).state == TrialState.COMPLETE
    assert len(reload(study)) == 2


@pytest.mark.parametrize("state", [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
def test_requeue_leaves_a_finished_trial_alone(study: optuna.Study, state: TrialState) -> None:
    trial = running_trial(study)
    study.tell(trial, 0.5 if state == TrialState.COMPLETE else None, state=state)
    assert requeue(study, trial._trial_id, "late") is False
    after = by_number(study, trial.number)
    assert after.state == state
    assert "requeued" not in after.user_attrs


def test_requeue_leaves_a_waiting_trial_alone(study: optuna.Study) -> None:
    study.enqueue_trial({"lr": 0.01})
    waiting = reload(study)[0]
    assert requeue(study, waiting._trial_id, "late") is False
    assert "requeued" not in by_number(study, waiting.number).user_attrs


# --------------------------------------------------------------------------------------------
# reap_dead_local_trials
# --------------------------------------------------------------------------------------------


def test_reap_requeues_only_trials_of_dead_local_processes(study: optuna.Study) -> None:
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone = dead_pid()
        dead = running_trial(study, worker=f"{HOST}:{gone}")
        alive = running_trial(study, worker=f"{HOST}:{live.pid}")
        mine = running_trial(study, worker=f"{HOST}:{os.getpid()}")
        remote = running_trial(study, worker=f"not-{HOST}:{gone}")
        unmarked = running_trial(study)
        garbled = running_trial(study, worker=f"{HOST}:pid")
        finished = running_trial(study, worker=f"{HOST}:{gone}")
        study.tell(finished, 0.5)

        assert reap_dead_local_trials(study) == 1
        states = {t.number: t.state for t in reload(study)}
        assert states[dead.number] == TrialState.WAITING
        for t in (alive, mine, remote, unmarked, garbled):
            assert states[t.number] == TrialState.RUNNING, t.number
        assert states[finished.number] == TrialState.COMPLETE
        requeued = by_number(study, dead.number)
        assert str(gone) in requeued.user_attrs["requeued"]
        assert requeued.params == {"lr": dead.params["lr"]}

        assert reap_dead_local_trials(study) == 0  # nothing left to reap
    finally:
        live.kill()
        live.wait()

    # once the live process has exited, its trial is reaped too
    assert reap_dead_local_trials(study) == 1
    assert by_number(study, alive.number).state == TrialState.WAITING


def test_reap_leaves_a_requeued_trial_alone_until_its_new_process_stamps_it(
    study: optuna.Study,
) -> None:
    # A trial of a dead process is queued again; a live process takes it from the queue. Until
    # that process stamps it, the trial still names the dead one: reaping it then would queue it
    # a second time, and two processes would train it at once.
    gone = dead_pid()
    first = running_trial(study, worker=f"{HOST}:{gone}")
    assert reap_dead_local_trials(study) == 1
    assert by_number(study, first.number).state == TrialState.WAITING

    again = study.ask()  # taken from the queue: the same trial, running again
    assert again.number == first.number
    taken = by_number(study, first.number)
    assert taken.state == TrialState.RUNNING
    assert taken.user_attrs[WORKER_ATTR] == f"{HOST}:{gone}"  # the old stamp is still there
    assert reap_dead_local_trials(study) == 0
    assert by_number(study, first.number).state == TrialState.RUNNING

    # stamped by its new process, it is judged by that process: alive here, then dead
    mark_worker(again, f"{HOST}:{os.getpid()}")
    assert reap_dead_local_trials(study) == 0
    mark_worker(again, f"{HOST}:{dead_pid()}")
    assert reap_dead_local_trials(study) == 1
    assert by_number(study, first.number).state == TrialState.WAITING


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_requeued_trial_taken_again_is_not_stale_by_its_old_heartbeat(tmp_path: Path) -> None:
    # A trial queued again keeps no heartbeat: taken from the queue later, it is RUNNING a moment
    # before its new attempt beats, and must not be failed as stale by another worker meanwhile.
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'beat.db'}", heartbeat_interval=1, grace_period=1
    )
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    first = study.ask()
    storage.record_heartbeat(first._trial_id)
    assert requeue(study, first._trial_id, "was interrupted")
    time.sleep(2.5)  # the old heartbeat would now be older than the grace period

    again = study.ask()
    assert again.number == first.number
    optuna.storages.fail_stale_trials(study)
    assert by_number(study, first.number).state == TrialState.RUNNING

    # once its new attempt beats and then stops beating, it is stale as usual
    storage.record_heartbeat(again._trial_id)
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    assert by_number(study, first.number).state == TrialState.FAIL


# --------------------------------------------------------------------------------------------
# make_sampler / make_pruner
# --------------------------------------------------------------------------------------------

SPACE = """
[study]
seed = 7
[train]
epochs = 9
[space]
schedules = ["constant", "cosine"]
"""


def _first_draw(sampler: optuna.samplers.BaseSampler) -> float:
    study = optuna.create_study(sampler=sampler)
    return study.ask().suggest_float("x", 0.0, 1.0)


def test_make_sampler_random_is_seeded_and_offset() -> None:
    spec = spec_from(SPACE + '[sampler]\ntype = "random"\n')
    sampler = make_sampler(spec)
    assert isinstance(sampler, optuna.samplers.RandomSampler)
    assert _first_draw(make_sampler(spec)) == _first_draw(make_sampler(spec))
    assert _first_draw(make_sampler(spec, 3)) == _first_draw(make_sampler(spec, 3))
    assert _first_draw(make_sampler(spec, 3)) != _first_draw(make_sampler(spec))
    assert _first_draw(make_sampler(spec, 3)) == _first_draw(optuna.samplers.RandomSampler(10))


def test_make_sampler_tpe_takes_the_startup_trials() -> None:
    spec = spec_from(SPACE + '[sampler]\ntype = "tpe"\nn_startup_trials = 5\n')
    sampler = make_sampler(spec)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == 5
    assert _first_draw(make_sampler(spec)) == _first_draw(make_sampler(spec))


def test_make_sampler_grid_covers_the_choices() -> None:
    text = """
[sampler]
type = "grid"
[space]
schedules = ["constant", "cosine"]
initial_lr = [0.01, 0.1]
"""
    spec = spec_from(text)
    sampler = make_sampler(spec)
    assert isinstance(sampler, optuna.samplers.GridSampler)
    study = optuna.create_study(sampler=sampler)
    seen = []

    def objective(trial: optuna.Trial) -> float:
        seen.append(
            (
                trial.suggest_categorical("schedule", ["constant", "cosine"]),
                trial.suggest_categorical("initial_lr", [0.01, 0.1]),
            )
        )
        return 0.0

    study.optimize(objective, n_trials=10)  # the grid stops the study once it is covered
    assert sorted(seen) == [
        ("constant", 0.01),
        ("constant", 0.1),
        ("cosine", 0.01),
        ("cosine", 0.1),
    ]


def test_make_pruner_median() -> None:
    spec = spec_from(
        SPACE + '[pruner]\ntype = "median"\nn_startup_trials = 3\nn_warmup_steps = 2\n'
    )
    pruner = make_pruner(spec)
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    assert pruner._n_startup_trials == 3
    assert pruner._n_warmup_steps == 2


def test_make_pruner_default_is_asha_which_leaves_optuna_only_recording() -> None:
    # asha pauses and continues trials itself (sweeper.search.promotion): Optuna's pruner never prunes
    assert isinstance(make_pruner(spec_from(SPACE)), optuna.pruners.NopPruner)


def test_make_pruner_none() -> None:
    assert isinstance(
        make_pruner(spec_from(SPACE + '[pruner]\ntype = "none"\n')), optuna.pruners.NopPruner
    )


def test_make_pruner_successive_halving() -> None:
    spec = spec_from(
        SPACE + '[pruner]\ntype = "successive_halving"\nmin_resource = 2\nreduction_factor = 4\n'
    )
    pruner = make_pruner(spec)
    assert isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner)
    assert pruner._min_resource == 2
    assert pruner._reduction_factor == 4


def test_make_pruner_hyperband_runs_up_to_the_epochs() -> None:
    spec = spec_from(
        SPACE + '[pruner]\ntype = "hyperband"\nmin_resource = 1\nreduction_factor = 3\n'
    )
    pruner = make_pruner(spec)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert pruner._min_resource == 1
    assert pruner._max_resource == 9
    assert pruner._reduction_factor == 3


def test_a_pruner_from_make_pruner_prunes_a_poor_trial(study: optuna.Study) -> None:
    spec = spec_from(
        SPACE + '[pruner]\ntype = "median"\nn_startup_trials = 2\nn_warmup_steps = 0\n'
    )
    study.pruner = make_pruner(spec)
    for value in (0.8, 0.9):
        t = study.ask()
        t.report(value, 0)
        study.tell(t, value)
    poor = study.ask()
    poor.report(0.1, 0)
    assert poor.should_prune()
    good = study.ask()
    good.report(0.95, 0)
    assert not good.should_prune()


# --------------------------------------------------------------------------------------------
# storage URLs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql+psycopg://user:s3cret@db.example:5432/sweeps",
            "postgresql+psycopg://user:***@db.example:5432/sweeps",
        ),
        ("mysql+pymysql://root:p%40ss@localhost/x", "mysql+pymysql://root:***@localhost/x"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("sqlite:///sweeper.db", "sqlite:///sweeper.db"),
        ("sqlite:////tmp/abs.db", "sqlite:////tmp/abs.db"),
        ("not a url", "<unparsable storage URL>"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert "s3cret" not in mask_url(url)


def test_storage_error_messages_mask_the_password() -> None:
    store = Store("postgresql+psycopg://user:s3cret@127.0.0.1:1/db")
    assert store.masked_url == "postgresql+psycopg://user:***@127.0.0.1:1/db"
    error = store.as_error(RuntimeError("could not log in as user with password s3cret\nmore"))
    assert isinstance(error, StorageError)
    assert "s3cret" not in str(error)
    assert "***" in str(error)
    assert "\n" not in str(error)


def test_resolve_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert resolve_url(None) == DEFAULT_URL == "sqlite:///sweeper.db"
    monkeypatch.setenv(STORAGE_ENV, "sqlite:///from-env.db")
    assert resolve_url(None) == "sqlite:///from-env.db"
    assert resolve_url("sqlite:///given.db") == "sqlite:///given.db"


def test_an_empty_storage_url_is_refused_never_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORAGE_ENV, "sqlite:///from-env.db")
    for empty in ("", "  "):
        with pytest.raises(StorageError, match=r"^the storage URL is empty \(--storage"):
            resolve_url(empty)
    monkeypatch.setenv(STORAGE_ENV, "")
    with pytest.raises(StorageError, match=rf"^\${STORAGE_ENV} is set but empty; .* unset it"):
        resolve_url(None)
    assert resolve_url("sqlite:///given.db") == "sqlite:///given.db"  # the option still wins


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite:///file::memory:?cache=shared",
        "sqlite:///file:x?mode=memory&uri=true",
    ],
)
def test_an_in_memory_store_is_refused(url: str) -> None:
    with pytest.raises(StorageError, match="is an in-memory database: a study must persist"):
        Store(url)


def test_a_directory_as_store_is_named_a_directory(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}")
    with pytest.raises(StorageError, match=f"{tmp_path} is a directory, not a store file"):
        store.optuna_storage()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# the model's fingerprint: part of the study's identity
# --------------------------------------------------------------------------------------------

MODEL_STUDY = """\
[study]
name = "s"
seed = 0
n_trials = 2

[data]
dataset = "digits"
subset = 200

[train]
model = "tiny_model:dense"
epochs = 1

[space]
schedules = ["constant"]
initial_lr = { low = 1e-3, high = 0.1, log = true }
"""


def network(hidden: int | None = None) -> ModelFingerprint:
    """The fingerprint of Flatten -> [Dense(hidden)] -> Dense(10) softmax on the digits."""
    keras = pytest.importorskip("keras")
    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    if hidden is not None:
        x = keras.layers.Dense(hidden, activation="relu")(x)
    return fingerprint(keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)))


def stored_print(url: str) -> ModelFingerprint | None:
    attrs = optuna.load_study(study_name="s", storage=url).user_attrs
    return ModelFingerprint.from_attr(attrs.get(MODEL_ATTR))


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_changed_model_is_refused_before_anything_is_written_unless_allowed(
    tmp_path: Path, clean_process: None
) -> None:
    spec = parse_study(MODEL_STUDY, str(tmp_path / "s.toml"))
    db = tmp_path / "s.db"
    store = Store(f"sqlite:///{db}")
    narrow, wide = network(16), network(32)
    prepare = functools.partial(prepare_study, spec, store, "s", steps_per_epoch=4, target=2)
    prepare(allow_changed=False, model=narrow)
    assert stored_print(store.url) == narrow  # recorded the first time
    # before any epoch is trained another model replaces it: nothing was trained with the old one
    prepare(allow_changed=False, model=wide)
    assert stored_print(store.url) == wide
    prepare(allow_changed=False, model=narrow)
    store.add_spent_epoch("s", 0, 0)  # an epoch trained: the model is part of the results now
    prepare(allow_changed=False, model=network(16))  # the same model again: no word
    before = digest_of(db)
    with pytest.raises(StudyChangedError) as info:
        prepare(allow_changed=False, model=wide)
    assert str(info.value) == (
        f"the model 'tiny_model:dense' changed since study 's' in sqlite:///{db} was created: "
        "layer 3 Dense units 16 -> 32, weight shapes (64, 16) (16,) -> (64, 32) (32,); "
        "layer 4 Dense weight shapes (16, 10) (10,) -> (32, 10) (10,); use the model the study "
        "was created with, another --study-name, or --allow-changed to continue it with this one"
    )
    assert digest_of(db) == before and stored_print(store.url) == narrow
    prepare(allow_changed=True, model=wide)
    assert stored_print(store.url) == wide  # the new fingerprint is the study's now
    with pytest.raises(StudyChangedError, match="layer 3 Dense units 32 -> 16"):
        prepare(allow_changed=False, model=narrow)
    store.close()


def test_a_study_stored_before_fingerprints_gets_one_without_a_word(
    tmp_path: Path, clean_process: None
) -> None:
    spec = parse_study(MODEL_STUDY, str(tmp_path / "s.toml"))
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    prepare = functools.partial(prepare_study, spec, store, "s", steps_per_epoch=4, target=2)
    prepare(allow_changed=False)  # as sweeper stored a study before fingerprints
    assert stored_print(store.url) is None
    prepare(allow_changed=False, model=network(16))
    assert stored_print(store.url) == network(16)
    store.close()


def test_a_worker_whose_model_changed_is_refused_before_anything_is_written(
    tmp_path: Path, clean_process: None
) -> None:
    spec = parse_study(MODEL_STUDY, str(tmp_path / "s.toml"))
    db = tmp_path / "s.db"
    store = Store(f"sqlite:///{db}")
    # stored with a hidden layer that tiny_model:dense, as this worker imports it, lacks
    prepare_study(spec, store, "s", allow_changed=False, steps_per_epoch=4, target=2,
                  model=network(16))  # fmt: skip
    store.add_spent_epoch("s", 0, 0)  # an epoch trained with it
    store.close()
    before = digest_of(db)
    with pytest.raises(StudyChangedError) as info:
        join_study(Store(f"sqlite:///{db}"), "s", RunOptions(trust_store=True))
    line = str(info.value)
    assert line.startswith("the model 'tiny_model:dense' changed since study 's' in ")
    assert (
        ": 3 layers instead of 4; layer 3 Dense activation relu -> softmax, units 16 -> 10" in line
    )
    assert line.endswith(
        "; run this worker with the model the study was created with, or continue the study "
        "with this one by `sweeper tune STUDY_FILE --allow-changed` (`allow_changed=True` "
        "from Python)"
    )
    assert "\n" not in line and digest_of(db) == before
