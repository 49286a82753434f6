"""The best model of a study kept on disk (sweeper.search.best_model): kept and replaced atomically
under a lock, recorded on the study, found again by the read side.

Real SQLite stores and real Keras training on tiny digits studies; the replacement logic also
with a fake save function (no training), two processes racing included.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from sweeper.errors import BestModelError
from sweeper.search import best_model as bm
from sweeper.search.run_options import RunOptions
from sweeper.search.runner import tune
from sweeper.studyfile.config import parse_study
from sweeper.training.data import load_dataset

STUDY = """\
[study]
name = "b"
seed = 0
n_trials = {n_trials}

[data]
dataset = "digits"
subset = 300

[train]
model = "tiny_model:dense"
batch_size = 32
epochs = 2
pack = {pack}

[sampler]
type = "random"

[pruner]
type = "none"

[[baselines]]
name = "constant 0.05"
schedule = "constant"
initial_lr = 0.05
"""

# the custom Keras schedules and both schedule-free optimizers are saved with the model
SPACE_ALONE = """\
[space]
schedules = ["constant", "step", "wsd", "one_cycle"]
initial_lr = { low = 0.01, high = 0.5, log = true }
optimizer = ["sgd", "adam"]
"""
SPACE_PACKED = """\
[space]
schedules = "constant"
initial_lr = { low = 0.01, high = 0.3, log = true }
optimizer = ["sgd_schedule_free", "adamw_schedule_free"]
"""


def run_study(tmp_path: Path, space: str, *, pack: int, n_trials: int) -> tuple[Any, Path]:
    """Tune a tiny study; its spec and its checkpoint folder."""
    url = f"sqlite:///{tmp_path / 'b.db'}"
    text = STUDY.format(pack=pack, n_trials=n_trials) + space
    spec = parse_study(text, str(tmp_path / "b.toml"))
    tune(spec, RunOptions(storage=url, checkpoint_dir=str(tmp_path / "ckpt")))
    return spec, tmp_path / "ckpt" / "b"


def best_complete(trials: list[FrozenTrial]) -> FrozenTrial:
    """The best complete trial, the earliest of equal values."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    return max(done, key=lambda t: (float(t.value or 0.0), -t.number))


def check_kept_model(tmp_path: Path, spec: Any, folder: Path) -> dict[str, Any]:
    """The study's kept model is its best complete trial's, loads, and scores its value."""
    study = optuna.load_study(study_name="b", storage=f"sqlite:///{tmp_path / 'b.db'}")
    best = best_complete(study.get_trials())
    attr = study.user_attrs[bm.BEST_MODEL_ATTR]
    path = folder / bm.MODEL_FILE
    assert attr == {
        "trial": best.number,
        "value": pytest.approx(best.value),
        "path": str(path.absolute()),
        "host": bm.hostname(),
    }
    record = json.loads((folder / bm.RECORD_FILE).read_text())
    assert record["trial"] == best.number and record["value"] == pytest.approx(best.value)
    assert record["config"] == best.user_attrs["config"] and record["epochs"] == 2
    assert record["size"] == path.stat().st_size
    kept = {p.name for p in folder.iterdir() if "best-model" in p.name}
    assert kept == {bm.LOCK_FILE, bm.MODEL_FILE, bm.RECORD_FILE}  # no temporary left
    found = bm.kept_model_path(study.user_attrs, tmp_path / "ckpt", "b", completed=1)
    assert found == path.absolute()

    model = bm.load_kept(found)
    data = load_dataset(spec.data)
    _, accuracy = model.evaluate(data.x_val, data.y_val, verbose=0)
    assert abs(accuracy - best.value) <= 1.0 / len(data.y_val) + 1e-6
    assert model.optimizer is not None and int(model.optimizer.iterations) > 0
    return record


def test_a_study_keeps_its_best_complete_model(tmp_path: Path) -> None:
    spec, folder = run_study(tmp_path, SPACE_ALONE, pack=1, n_trials=4)
    check_kept_model(tmp_path, spec, folder)
    # a process that has only sweeper installed loads it with keras.models.load_model
    code = textwrap.dedent(
        f"""
        import keras
        import sweeper.training.keras_schedules, sweeper.training.schedule_free
        model = keras.models.load_model({str(folder / bm.MODEL_FILE)!r})
        print(type(model.optimizer).__name__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] in ("SGD", "Adam")


def test_a_packed_study_keeps_its_best_complete_model(tmp_path: Path) -> None:
    spec, folder = run_study(tmp_path, SPACE_PACKED, pack=2, n_trials=4)
    check_kept_model(tmp_path, spec, folder)


def test_a_model_that_cannot_be_kept_does_not_fail_its_trial(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "ckpt" / "b"
    (folder / bm.MODEL_FILE).mkdir(parents=True)  # what a full disk would do to the replace
    run_study(tmp_path, SPACE_ALONE.replace('"constant", ', ""), pack=1, n_trials=1)
    study = optuna.load_study(study_name="b", storage=f"sqlite:///{tmp_path / 'b.db'}")
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE]
    assert "its model is not kept as the best" in caplog.text
    assert bm.BEST_MODEL_ATTR not in study.user_attrs
    assert sorted(p.name for p in folder.iterdir()) == [bm.MODEL_FILE, bm.LOCK_FILE]


def test_run_trial_hands_over_a_schedule_free_model_at_its_average(tmp_path: Path) -> None:
    from sweeper.training.data import DataSpec
    from sweeper.training.families.constant import Constant
    from sweeper.training.optimizers import OptimizerSpec
    from sweeper.training.train_trial import TrainSettings, TrialStatus, run_trial

    data = load_dataset(DataSpec("digits", seed=0, subset=300))
    settings = TrainSettings(model="tiny_model:dense", batch_size=32, epochs=2, seed=0)
    optimizer = OptimizerSpec("sgd_schedule_free", warmup=0.1)
    handed: list[Any] = []

    def on_complete(model: Any) -> None:
        assert model.optimizer.at_average  # fit ended at x, where it validated
        handed.append(model)
        bm.keep_best(tmp_path, model.save, trial=0, value=0.0, config=0, epochs=2)

    result = run_trial(data, Constant(0.3), optimizer, settings, on_complete=on_complete)
    assert result.status is TrialStatus.COMPLETE and len(handed) == 1
    model = bm.load_kept(tmp_path / bm.MODEL_FILE)
    assert type(model.optimizer).__name__ == "SGDScheduleFree"
    loss, accuracy = model.evaluate(data.x_val, data.y_val, verbose=0)
    assert loss == pytest.approx(result.records[-1].val_loss, rel=1e-5)
    assert accuracy == pytest.approx(result.value, abs=1e-6)

    # paused after its first epoch: not complete, nothing handed over
    paused = run_trial(
        data,
        Constant(0.3),
        optimizer,
        settings,
        decide=lambda record: (TrialStatus.PAUSED, "rung"),
        on_complete=handed.append,
    )
    assert paused.status is TrialStatus.PAUSED and len(handed) == 1


# --------------------------------------------------------------------------------------------
# keeping and replacing, without training
# --------------------------------------------------------------------------------------------


def fake_save(content: str) -> Any:
    def save(path: Path) -> None:
        assert path.name.endswith(".keras") and path.parent.exists()
        path.write_text(content)

    return save


def keep(folder: Path, trial: int, value: float, **kw: Any) -> bm.KeptModel | None:
    return bm.keep_best(
        folder, fake_save(f"trial {trial}"), trial=trial, value=value, config=trial, epochs=2, **kw
    )


def kept_text(folder: Path) -> str:
    return (folder / bm.MODEL_FILE).read_text()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def test_a_better_model_replaces_the_kept_one_and_a_worse_or_equal_does_not(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "ckpt" / "s"
    assert bm.read_record(folder) is None
    first = keep(folder, 3, 0.5)
    assert first is not None and kept_text(folder) == "trial 3"
    assert bm.read_record(folder) == first
    assert first.describes(folder / bm.MODEL_FILE)
    assert keep(folder, 4, 0.4) is None  # worse
    assert keep(folder, 5, 0.5) is None  # equal, later: the earlier one stays
    assert kept_text(folder) == "trial 3"
    assert keep(folder, 2, 0.5) is not None  # equal, earlier
    assert keep(folder, 6, float("nan")) is None
    better = keep(folder, 7, 0.75)
    assert better is not None and kept_text(folder) == "trial 7"
    record = json.loads((folder / bm.RECORD_FILE).read_text())
    assert {k: record[k] for k in ("trial", "value", "config", "epochs", "host")} == {
        "trial": 7,
        "value": 0.75,
        "config": 7,
        "epochs": 2,
        "host": bm.hostname(),
    }
    assert record["path"] == str((folder / bm.MODEL_FILE).absolute())
    assert leftovers(folder) == []


def test_a_save_that_fails_leaves_the_kept_model_and_no_temporary(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    keep(folder, 0, 0.5)

    def broken(path: Path) -> None:
        path.write_text("half a model")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        bm.keep_best(folder, broken, trial=1, value=0.9, config=1, epochs=2)
    assert kept_text(folder) == "trial 0" and bm.read_record(folder).trial == 0  # type: ignore[union-attr]
    assert leftovers(folder) == []
    calls: list[Path] = []
    assert bm.keep_best(folder, calls.append, trial=2, value=0.1, config=2, epochs=2) is None
    assert calls == []  # not better: nothing saved


def test_a_dead_writers_temporary_is_removed_by_the_next_replacement(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = bm.temporary(folder, proc.pid)
    stale.write_text("cut short")
    keep(folder, 0, 0.5)
    assert not stale.exists() and kept_text(folder) == "trial 0"


def _race(folder: str, trials: list[int], start: Any) -> None:
    start.wait()
    for n in trials:
        keep(Path(folder), n, value_of(n))


def value_of(trial: int) -> float:
    return round(((trial * 37) % 101) / 100.0, 2)


def test_two_processes_racing_end_with_the_best(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_race, args=(str(folder), list(range(k, 60, 2)), start)) for k in (0, 1)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    best = max(range(60), key=lambda n: (value_of(n), -n))
    record = bm.read_record(folder)
    assert record is not None and (record.trial, record.value) == (best, value_of(best))
    assert kept_text(folder) == f"trial {best}" and record.describes(folder / bm.MODEL_FILE)
    assert leftovers(folder) == []


def test_the_study_attribute_names_the_overall_best(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    folder = tmp_path / "ckpt" / "s"
    keep(folder, 1, 0.5, study=study)
    assert study.user_attrs[bm.BEST_MODEL_ATTR] == {
        "trial": 1,
        "value": 0.5,
        "path": str((folder / bm.MODEL_FILE).absolute()),
        "host": bm.hostname(),
    }
    # another host kept a better one in its own folder: this folder's next best leaves it
    study.set_user_attr(
        bm.BEST_MODEL_ATTR, {"trial": 2, "value": 0.8, "path": "/elsewhere", "host": "gpu-7"}
    )
    assert keep(folder, 3, 0.6, study=study) is not None  # better than this folder's
    assert study.user_attrs[bm.BEST_MODEL_ATTR]["host"] == "gpu-7"
    keep(folder, 4, 0.9, study=study)
    assert study.user_attrs[bm.BEST_MODEL_ATTR]["trial"] == 4


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def test_the_read_side_finds_the_kept_file_or_says_why_not(tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    folder = bm.study_folder(root, "s")
    with pytest.raises(BestModelError, match="no complete configuration yet"):
        bm.kept_model_path({}, root, "s", completed=0)
    with pytest.raises(BestModelError, match=r"tuned before models were kept.*sweeper evaluate"):
        bm.kept_model_path({"other": 1}, root, "s", completed=3)

    record = keep(folder, 2, 0.7)
    assert record is not None
    attrs = {bm.BEST_MODEL_ATTR: record.attribute()}
    assert bm.kept_model_path(attrs, root, "s", completed=3) == folder / bm.MODEL_FILE
    assert bm.kept_model(attrs, None, "s", completed=3) == record  # trial, value, sha256, ...

    # the checkpoint folder moved: found under the root given
    moved = tmp_path / "moved"
    root.rename(moved)
    assert bm.kept_model_path(attrs, moved, "s", completed=3) == (
        bm.study_folder(moved, "s") / bm.MODEL_FILE
    )
    with pytest.raises(BestModelError, match=r"trial 2\) is not at .*--checkpoint-dir"):
        bm.kept_model_path(attrs, root, "s", completed=3)
    with pytest.raises(BestModelError, match="is not at"):
        bm.kept_model_path(attrs, None, "s", completed=3)

    elsewhere = {**record.attribute(), "host": "gpu-7", "path": "/nowhere/best-model.keras"}
    with pytest.raises(BestModelError, match="kept on host 'gpu-7' at /nowhere"):
        bm.kept_model_path({bm.BEST_MODEL_ATTR: elsewhere}, root, "s", completed=3)

    # the file there is another trial's (a later replacement not recorded on the study)
    moved.rename(root)
    keep(folder, 3, 0.9)
    with pytest.raises(BestModelError, match="not at"):
        bm.kept_model_path(attrs, root, "s", completed=3)
    os.remove(folder / bm.MODEL_FILE)
    latest = {bm.BEST_MODEL_ATTR: {**record.attribute(), "trial": 3}}
    with pytest.raises(BestModelError, match="not at"):
        bm.kept_model_path(latest, root, "s", completed=3)


def test_the_read_side_imports_no_keras() -> None:
    code = (
        "import sys, sweeper.search.best_model\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_value_order_matches_the_tie_rule() -> None:
    assert bm.beats(0.5, 9, None)
    assert bm.beats(0.6, 9, {"trial": 1, "value": 0.5})
    assert not bm.beats(0.5, 9, {"trial": 1, "value": 0.5})
    assert bm.beats(0.5, 0, {"trial": 1, "value": 0.5})
    assert not bm.beats(float("inf"), 0, None) and not bm.beats(np.nan, 0, None)
