"""The Python API (``sweeper.tune``, ``sweeper.Study``, ``TuneResult``) end to end.

Real training on scikit-learn's digits held in memory, with user model functions defined in the
tests (in-process) or in ``tiny_model.py`` (importable); SQLite stores under ``tmp_path``.
"""

from __future__ import annotations

import inspect
import os
import re
import runpy
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import sweeper
from sweeper import environment
from sweeper.api import facade as api
from sweeper.api.progress import NotebookProgress, ProgressLines, reporting
from sweeper.errors import ConfigError, DataError, StudyChangedError, SweeperError
from sweeper.search.outcomes import EpochEvent, TrialEvent
from sweeper.studyfile.config import DEFAULT_STUDY, load_study_file, parse_study
from sweeper.studyfile.dimensions import Range

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "studies").glob("*.toml"))


def dense(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """A model function of a module: importable as ``test_api:dense``."""
    import keras

    inputs = keras.Input(shape=input_shape)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_process: None) -> None:
    """Work in tmp_path (store, checkpoints, arrays), in a clean process (conftest)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(environment.DATA_DIR_ENV, str(tmp_path / "arrays"))


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target


def epoch_rows(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
    except sqlite3.Error:
        return 0
    try:
        return int(con.execute("SELECT COUNT(*) FROM sweeper_epochs").fetchone()[0])
    except sqlite3.Error:  # not created yet, or locked for a moment
        return 0
    finally:
        con.close()


def trials_of(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


TINY = {
    "n_trials": 5,
    "epochs": 1,
    "subset": 400,
    "pruner": "none",
    "space": {"schedules": ["constant", "cosine"], "initial_lr": (0.01, 0.5, "log")},
    "baselines": [{"name": "constant 0.1", "schedule": "constant", "initial_lr": 0.1}],
}


# --------------------------------------------------------------------------------------------
# the package and its documentation
# --------------------------------------------------------------------------------------------


def test_import_sweeper_stays_light_and_exposes_the_api() -> None:
    code = (
        "import sys, sweeper; light = [m for m in ('keras', 'tensorflow', 'optuna', "
        "'sweeper.api', 'sweeper.api.facade') if m in sys.modules]; sweeper.tune; sweeper.Study; "
        "print(light, 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split() == ["[]", "False"], out
    assert {"tune", "Study", "TuneResult", "load", "Best"} <= set(sweeper.__all__)
    assert {"tune", "Study"} <= set(dir(sweeper))
    assert sweeper.tune is api.tune


def test_help_documents_every_argument_of_tune() -> None:
    doc = inspect.getdoc(sweeper.tune) or ""
    for name in inspect.signature(sweeper.tune).parameters:
        assert re.search(rf"^    {name}: \S", doc, re.M), f"{name} is not documented"


# --------------------------------------------------------------------------------------------
# Study <-> study file
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_studies_round_trip_through_to_toml(path: Path, tmp_path: Path) -> None:
    spec = load_study_file(path)
    study = sweeper.Study.from_file(path)
    text = study.to_toml()
    again = parse_study(text, str(path), base_dir=path.parent, default_name=path.stem)
    assert again.hash == spec.hash == study.hash
    assert api.same_definition(again, spec)

    # with a setting changed, the settings are rendered as TOML of their own
    changed = sweeper.Study.from_file(path, epochs=1, space={"initial_lr": (0.01, 0.2, "log")})
    rendered = changed.to_toml()
    assert rendered != spec.text
    parsed = parse_study(rendered, "rendered.toml", base_dir=tmp_path)
    assert api.same_definition(parsed, changed.spec)
    assert parsed.name == spec.name and parsed.train.epochs == 1
    assert parsed.space.dims["initial_lr"] == Range(0.01, 0.2, log=True)
    assert parsed.baselines == spec.baselines


def test_from_file_settings_are_the_cli_overrides() -> None:
    study = sweeper.Study.from_file("digits", epochs=1, subset=300)
    cli = load_study_file(DEFAULT_STUDY, ["data.subset=300", "train.epochs=1"])
    assert study.hash == cli.hash  # `sweeper tune --set data.subset=300 --set train.epochs=1`
    assert study.spec.source == str(DEFAULT_STUDY)
    # the --set items themselves, as the command line passes them: the same study
    items = sweeper.Study.from_file(None, ["data.subset=300", "train.epochs=1"])
    assert items.hash == cli.hash and items.name == cli.name
    mixed = sweeper.Study.from_file("digits", ["data.subset=300"], epochs=1)
    assert mixed.hash == cli.hash
    # and its file says so: read back, the same definition with the override in it
    again = parse_study(items.to_toml(), "again.toml")
    assert api.same_definition(again, cli) and again.data.subset == 300


def test_a_study_from_keywords_round_trips() -> None:
    study = sweeper.Study(
        "mnist-cnn",
        "digits",
        name="kw",
        epochs=2,
        batch_size=32,
        subset=500,
        space={
            "schedules": ("constant", "step", "cosine"),
            "initial_lr": (1e-3, 0.3, "log"),
            "decay_rate": {"low": 0.2, "high": 0.8},
            "drop_every": [1, 2, 3],
            "warmup_epochs": np.float64(0.5),
        },
        sampler={"type": "random"},
        pruner="median",
        baselines=[
            {
                "name": "step 0.1",
                "schedule": "step",
                "initial_lr": 0.1,
                "decay_rate": 0.5,
                "drop_every": 1.0,
            }
        ],
    )
    spec = parse_study(study.to_toml(), "kw.toml")
    assert spec.hash == study.hash and api.same_definition(spec, study.spec)
    assert spec.space.families() == ("constant", "step", "cosine")
    assert spec.space.dims["initial_lr"] == Range(1e-3, 0.3, log=True)
    assert spec.space.dims["warmup_epochs"].value == 0.5  # type: ignore[union-attr]
    assert (spec.sampler.kind, spec.pruner.kind, spec.train.batch_size) == ("random", "median", 32)
    assert [b.name for b in spec.baselines] == ["step 0.1"]
    assert "n_trials" not in study.to_toml()  # a run's target, not part of the study
    assert repr(study).startswith("Study('kw': mnist-cnn on digits, 2 epochs")


def test_arrays_are_one_content_named_npz_file(digits: Any, tmp_path: Path) -> None:
    x, y = digits
    a = sweeper.Study(dense, (x, y), epochs=1)
    b = sweeper.Study(dense, (x.copy(), y.copy()), epochs=1)
    c = sweeper.Study(dense, ((x[:1000], y[:1000]), (x[1000:], y[1000:])), epochs=1)
    assert a.hash == b.hash and a.spec.data.path == b.spec.data.path
    assert a.spec.data.name == "npz" and Path(a.spec.data.path or "").parent == tmp_path / "arrays"
    assert len(list((tmp_path / "arrays").glob("*.npz"))) == 2
    assert c.hash != a.hash
    with np.load(c.spec.data.path or "") as archive:
        assert sorted(archive.files) == ["x_test", "x_train", "y_test", "y_train"]
    assert a.to_toml().count("test_api:dense") == 1  # importable: named by its module
    assert a.name == "dense-arrays"
    with pytest.raises(DataError, match="labels"):
        sweeper.Study(dense, (x, y[:10]))
    with pytest.raises(DataError, match="data must be"):
        sweeper.Study(dense, [1, 2, 3])  # type: ignore[arg-type]


def _batches(x: np.ndarray, y: np.ndarray, size: int, n: int | None = None) -> Any:
    """A ``keras.utils.PyDataset`` of (images, labels) batches of ``size`` (``n`` of them)."""
    import keras

    class Batches(keras.utils.PyDataset):  # type: ignore[misc]
        @property
        def num_batches(self) -> int | None:
            return n if n is not None else -(-len(x) // size)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            return x[i * size : (i + 1) * size], y[i * size : (i + 1) * size]

    return Batches()


def test_a_keras_pydataset_is_read_once_into_the_same_arrays(digits: Any, tmp_path: Path) -> None:
    x, y = digits
    arrays = sweeper.Study(dense, (x, y), epochs=1)
    batched = sweeper.Study(dense, _batches(x, y, 100), epochs=1)  # 18 batches, the last short
    assert batched.hash == arrays.hash and batched.spec.data.path == arrays.spec.data.path
    pair = sweeper.Study(
        dense, (_batches(x[:1500], y[:1500], 64), _batches(x[1500:], y[1500:], 64)), epochs=1
    )
    split = sweeper.Study(dense, ((x[:1500], y[:1500]), (x[1500:], y[1500:])), epochs=1)
    assert pair.hash == split.hash
    import keras

    class Endless(keras.utils.PyDataset):  # type: ignore[misc]
        @property
        def num_batches(self) -> int | None:
            return None  # Keras's mark of an infinite dataset

        def __getitem__(self, i: int) -> Any:
            raise AssertionError("an infinite PyDataset is not read")

    with pytest.raises(DataError, match="PyDataset is infinite"):
        sweeper.Study(dense, Endless())
    with pytest.raises(DataError, match="PyDataset has no batches"):
        sweeper.Study(dense, _batches(x, y, 100, n=0))


def test_a_notebook_model_function_runs_in_this_process_only(tmp_path: Path) -> None:
    def build(input_shape: tuple[int, ...], num_classes: int) -> Any:
        return dense(input_shape, num_classes)

    study = sweeper.Study(build, "digits", epochs=1)
    assert study.in_process_only and study.spec.train.model == "__in_process__:build"
    with pytest.raises(ConfigError, match=r"^model function 'build' is defined inside a function, "
                       r"so a study file cannot import it; put it in a module"):  # fmt: skip
        study.to_toml()
    db = tmp_path / "w.db"
    with pytest.raises(ConfigError, match="so worker processes cannot import it; put it in"):
        sweeper.tune(build, "digits", storage=f"sqlite:///{db}", workers=2, epochs=1)
    assert not db.exists()  # refused before anything was stored


# inputs that cannot work (issue 28, F7): one line naming the keyword, nothing written
API_CASES: dict[str, tuple[dict[str, Any], type[SweeperError], str]] = {
    "n-trials-negative": ({"n_trials": -1}, ConfigError, r"^n_trials = -1 \(--n-trials\): give"),
    "n-trials-zero": ({"n_trials": 0}, ConfigError, r"^n_trials = 0 .*from 1 to 10,000,000"),
    "budget-negative": ({"budget_epochs": -5}, ConfigError, r"^budget_epochs = -5 "),
    "seed": ({"seed": 2**63 - 1}, ConfigError, r"\[study\] seed: must be at most 4294967295"),
    "rate": (
        {"space": {"initial_lr": 1e300}},
        ConfigError,
        r"\[space\] initial_lr: must be > 0 and at most 10",
    ),
    "data-none": ({"data": None}, DataError, r"^data must be a dataset name .*; got NoneType$"),
    "storage-empty": ({"storage": ""}, SweeperError, r"^the storage URL is empty"),
    "storage-memory": ({"storage": "sqlite:///:memory:"}, SweeperError, "in-memory database"),
    "study-name-empty": ({"study_name": " "}, ConfigError, r"\[study\] name: must be a non-empty"),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_an_argument_that_cannot_work_is_one_clear_error_and_writes_nothing(
    case: str, tmp_path: Path
) -> None:
    given, error, pattern = API_CASES[case]
    kwargs: dict[str, Any] = {"data": "digits", "storage": f"sqlite:///{tmp_path / 'a.db'}"}
    kwargs.update(given)
    data = kwargs.pop("data")
    with pytest.raises(error, match=pattern) as info:
        sweeper.tune("mnist-cnn", data, progress=False, **kwargs)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no store, no checkpoint folder, no arrays


@pytest.mark.parametrize(
    ("y", "expected"),
    [
        (np.zeros(60, np.int64), r"^data: every training label is 0, one class"),
        (np.arange(3), r"^data: 3 training examples are too few to tune on; give at least 10$"),
        (np.r_[np.arange(59) % 3, 2_000_000_000], r"^data: labels up to 2,000,000,000 make"),
    ],
    ids=["one-class", "three-examples", "huge-label"],
)
def test_labels_no_classifier_can_learn_from_are_refused_before_anything_is_written(
    tmp_path: Path, y: np.ndarray, expected: str
) -> None:
    x = np.random.default_rng(0).random((len(y), 8, 8), dtype=np.float32)
    with pytest.raises(DataError, match=expected):
        sweeper.Study(dense, (x, y))
    assert list(tmp_path.iterdir()) == []  # not even the arrays' .npz


def test_a_study_run_under_an_empty_name_is_refused(tmp_path: Path) -> None:
    study = sweeper.Study("mnist-cnn", "digits", epochs=1)
    for method in (study.tune, study.lr_find):
        with pytest.raises(ConfigError, match=r"study_name '' is empty; give a name"):
            method(storage=f"sqlite:///{tmp_path / 'a.db'}", study_name="")  # type: ignore[operator]
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# tune, resume, results
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tune_in_memory_then_resume_and_read_the_results(
    digits: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def build(input_shape: tuple[int, ...], num_classes: int) -> Any:  # a notebook's function
        return dense(input_shape, num_classes)

    url = f"sqlite:///{tmp_path / 'api.db'}"
    events: list[TrialEvent] = []
    result = sweeper.tune(build, digits, storage=url, study_name="nb", progress=events.append,
                          **TINY)  # type: ignore[arg-type]  # fmt: skip
    assert [e.finished for e in events] == [1, 2, 3, 4, 5]
    assert result.summary is not None and result.summary.ran == 5
    assert len(trials_of(url, "nb")) == 5

    best = result.best
    assert best is not None and 0.0 <= best.value <= 1.0
    assert best.schedule.startswith(str(best.params["schedule"]))
    assert result.best_baseline is not None and result.best_baseline.baseline == "constant 0.1"
    rows = result.trials
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    assert len(rows) == 5 and sorted(r["number"] for r in rows) == [0, 1, 2, 3, 4]
    assert {r["state"] for r in rows} == {"complete"} and all(r["epochs"] == 1 for r in rows)
    assert rows[0]["baseline"] == "constant 0.1" and "param_initial_lr" in rows[0]

    # the same call again resumes: nothing is missing, nothing runs (plain progress lines)
    capsys.readouterr()
    again = sweeper.tune(build, digits, storage=url, study_name="nb", **TINY)  # type: ignore[arg-type]
    assert again.summary is not None and again.summary.ran == 0
    err = capsys.readouterr().err
    assert "tuning 'nb' (<sweeper.Study>): __in_process__:build on npz, 1 epoch" in err
    assert "5/5 configurations finished" in err and "epochs trained: 5\n" in err
    # a larger n_trials extends the study, one line per trial
    more = sweeper.tune(build, digits, storage=url, study_name="nb", **{**TINY, "n_trials": 6})  # type: ignore[arg-type]
    assert more.summary is not None and more.summary.ran == 1
    assert re.search(r"\[#+\] 6/6  trial 5 ", capsys.readouterr().err)
    # other settings are another study: refused with the stored one named
    with pytest.raises(SweeperError, match="another study_name=, or allow_changed=True"):
        sweeper.tune(build, digits, storage=url, study_name="nb", **{**TINY, "epochs": 2})  # type: ignore[arg-type]

    from matplotlib.figure import Figure

    for kind in ("history", "lr-curves", "learning-curves", "families"):
        assert isinstance(result.plot(kind), Figure), kind
    with pytest.raises(SweeperError, match="unknown plot kind"):
        result.plot("pie")
    report = result.importance()
    assert set(report.overall.values) <= {"schedule", "initial_lr"}
    page = result.report(tmp_path / "out" / "nb.html")
    assert page.is_file() and "<h1>Study nb</h1>" in page.read_text()
    assert "best: trial" in repr(result)

    # evaluate retrains in this process, with the notebook's function
    evaluation = result.evaluate(top=1, repeats=1, progress=False)
    assert [c.is_baseline for c in evaluation.configs] == [False, True]
    # and the stored study reads back from a fresh handle
    loaded = sweeper.load("nb", storage=url)
    assert loaded.best == more.best and len(loaded.trials) == 6


@pytest.mark.slow
def test_a_notebook_model_edited_under_the_same_study_name_is_refused_unless_allowed(
    digits: Any, tmp_path: Path
) -> None:
    def build(input_shape: tuple[int, ...], num_classes: int) -> Any:  # a notebook's cell
        import keras

        inputs = keras.Input(shape=input_shape)
        x = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))

    db = tmp_path / "nb.db"
    url = f"sqlite:///{db}"
    settings = {**TINY, "n_trials": 1, "baselines": [], "progress": False, "study_name": "nb"}
    first = sweeper.tune(build, digits, storage=url, **settings)  # type: ignore[arg-type]
    assert first.summary is not None and first.summary.ran == 1
    again = sweeper.tune(build, digits, storage=url, **settings)  # type: ignore[arg-type]
    assert again.summary is not None and again.summary.ran == 0  # the same model: it resumes

    # the cell edited: a wider hidden layer, the same function name (the same study settings)
    def build(input_shape: tuple[int, ...], num_classes: int) -> Any:  # type: ignore[no-redef]
        import keras

        inputs = keras.Input(shape=input_shape)
        x = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))

    stored = db.read_bytes()
    with pytest.raises(StudyChangedError) as info:
        sweeper.tune(build, digits, storage=url, **{**settings, "n_trials": 2})  # type: ignore[arg-type]
    line = str(info.value)
    assert line.startswith("the model '__in_process__:build' changed since study 'nb' in ")
    assert " was created: layer 3 Dense units 16 -> 32, weight shapes " in line
    assert line.endswith(
        "(from Python: the same arguments, another study_name=, or allow_changed=True)"
    )
    assert "\n" not in line and db.read_bytes() == stored
    assert len(trials_of(url, "nb")) == 1
    attrs = optuna.load_study(study_name="nb", storage=url).user_attrs
    assert attrs["model_fingerprint"]["layers"][2]["config"]["units"] == 16  # as it was

    allowed = sweeper.tune(build, digits, storage=url, allow_changed=True,
                           **{**settings, "n_trials": 2})  # type: ignore[arg-type]  # fmt: skip
    assert allowed.summary is not None and allowed.summary.ran == 1
    attrs = optuna.load_study(study_name="nb", storage=url).user_attrs
    assert attrs["model_fingerprint"]["layers"][2]["config"]["units"] == 32  # recorded
    last = sweeper.tune(build, digits, storage=url, **{**settings, "n_trials": 2})  # type: ignore[arg-type]
    assert last.summary is not None and last.summary.ran == 0


@pytest.mark.slow
def test_join_adds_a_worker_to_a_stored_study(digits: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'join.db'}"
    settings = {**TINY, "n_trials": 2, "baselines": [], "progress": False}
    first = sweeper.tune(dense, digits, storage=url, study_name="shared", **settings)  # type: ignore[arg-type]
    assert first.summary is not None and first.summary.ran == 2
    # the definition comes from the store; it imports a user model, so it must be trusted
    with pytest.raises(SweeperError, match="--trust-store"):
        sweeper.join("shared", storage=url, n_trials=3)
    run = sweeper.join("shared", storage=url, n_trials=3, trust_store=True)
    assert (run.ran, run.interrupted, run.target) == (1, False, 3)
    numbers = sorted(t.number for t in trials_of(url, "shared") if t.state == TrialState.COMPLETE)
    assert numbers == [0, 1, 2]
    assert sweeper.load("shared", url).best is not None


def test_an_interrupt_mid_trial_leaves_the_study_resumable(digits: Any, tmp_path: Path) -> None:
    db = tmp_path / "int.db"
    url = f"sqlite:///{db}"
    settings: dict[str, Any] = {
        "storage": url,
        "study_name": "stop",
        "n_trials": 1,
        "epochs": 40,
        "subset": 300,
        "pruner": "none",
        "space": {"schedules": "constant", "initial_lr": 0.05},
        "progress": False,
    }
    done = threading.Event()

    def interrupt_after_two_epochs() -> None:  # Ctrl-C, or Kernel -> Interrupt in Jupyter
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline:
            if epoch_rows(db) >= 2:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    timer = threading.Thread(target=interrupt_after_two_epochs, daemon=True)
    timer.start()
    try:
        with pytest.raises(
            sweeper.TuneInterrupted, match="call it again with the same arguments"
        ) as stop:
            sweeper.tune(dense, digits, **settings)
    finally:
        done.set()
        timer.join()
    assert isinstance(stop.value, KeyboardInterrupt)  # what a notebook's cell expects
    summary = stop.value.result.summary if stop.value.result is not None else None
    assert summary is not None and summary.interrupted and summary.counts["complete"] == 0
    (stopped,) = trials_of(url, "stop")
    assert stopped.state == TrialState.WAITING  # back in the queue, never failed
    assert "interrupted" in stopped.user_attrs["requeued"]
    assert 2 <= epoch_rows(db) < 40

    # resumed from another thread, where no signal handler can be installed
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(sweeper.tune(dense, digits, **settings))
    )
    worker.start()
    worker.join(timeout=180)
    assert results and results[0].summary.ran == 1
    (again,) = trials_of(url, "stop")
    assert again.state == TrialState.COMPLETE and again.number == stopped.number
    assert again.params == stopped.params and len(again.intermediate_values) == 40
    con = sqlite3.connect(db)
    try:
        epochs = [r[0] for r in con.execute("SELECT epoch FROM sweeper_epochs ORDER BY epoch")]
    finally:
        con.close()
    assert epochs == list(range(40))  # continued from its checkpoint, no epoch twice


# --------------------------------------------------------------------------------------------
# notebooks: progress bar, inline figures
# --------------------------------------------------------------------------------------------


def _event(n: int, value: float | None) -> TrialEvent:
    return TrialEvent(n, "complete", value, "constant(initial_lr=0.1)", 1.0, n + 1, 3)


def test_progress_is_html_in_a_notebook_and_lines_elsewhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with reporting(True) as lines:
        assert isinstance(lines, ProgressLines)
        lines(_event(0, 0.5))
    assert (
        "[#######.............] 1/3  trial 0   complete val_acc=0.5000 best 0.5000"
        in capsys.readouterr().err
    )
    with reporting(False) as nothing:
        assert nothing is None

    # a kernel without IPython's display: plain lines on stdout, never red stderr
    shell = types.SimpleNamespace(kernel=object(), config={})
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
        m.setitem(sys.modules, "IPython.display", None)  # not importable
        with reporting(True, "nb") as plain:
            assert isinstance(plain, ProgressLines)
            plain(_event(0, 0.5))
    seen = capsys.readouterr()
    assert seen.err == "" and "1/3  trial 0   complete val_acc=0.5000" in seen.out

    # a kernel: one HTML block, shown once and updated in place
    ipython = pytest.importorskip("IPython")
    import IPython.display

    shown: list[dict[str, str]] = []

    class Handle:
        def update(self, data: dict[str, str], raw: bool) -> None:
            shown.append(data)

    def display(data: dict[str, str], raw: bool, display_id: bool) -> Handle:
        assert raw and display_id and not shown  # created once
        shown.append(data)
        return Handle()

    monkeypatch.setattr(ipython, "get_ipython", lambda: shell)
    monkeypatch.setattr(IPython.display, "display", display)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no TqdmWarning, no warning at all
        with reporting(True, "nb") as block:
            assert isinstance(block, NotebookProgress)
            block.epoch(EpochEvent(0, 1, 2, 0.4, 1.0))
            assert "training trial 0 epoch 1/2 val_acc=0.4000 0:01" in shown[-1]["text/plain"]
            block(_event(0, 0.5))
            block(_event(1, None))
    html = shown[-1]["text/html"]
    assert '<progress value="2" max="3"' in html and "2/3 trials, best 0.5000" in html
    assert "last: trial 1 complete val_acc=-" in shown[-1]["text/plain"]
    assert "trial/s" not in html and "training" not in html
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_a_figure_is_shown_inline_in_a_notebook(
    digits: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ipython = pytest.importorskip("IPython")
    from IPython.core.formatters import DisplayFormatter

    url = f"sqlite:///{tmp_path / 'fig.db'}"
    result = sweeper.tune(dense, digits, storage=url, progress=False, **{**TINY, "n_trials": 2})  # type: ignore[arg-type]
    shell = types.SimpleNamespace(  # what a kernel's shell offers that the figures use
        kernel=object(),
        config={},
        display_formatter=DisplayFormatter(),
        events=types.SimpleNamespace(register=lambda *_: None, unregister=lambda *_: None),
    )
    monkeypatch.setattr(ipython, "get_ipython", lambda: shell)
    import matplotlib.pyplot as plt

    try:
        fig = result.plot("history")
        shown, _ = shell.display_formatter.format(fig)
    finally:
        plt.uninstall_repl_displayhook()
    assert shown["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert "image/png" not in DisplayFormatter().format(fig)[0]  # plot() set that up


def test_importance_of_a_multi_fidelity_study_at_an_epoch(tmp_path: Path) -> None:
    from conftest import asha_trials, write_store

    result = sweeper.load("asha", write_store(tmp_path / "s.db", asha_trials(), "asha"))
    report = result.importance()
    assert (report.epoch, report.configurations) == (4, 4)
    assert result.importance("fanova", at_epoch=1).overall.n_available == 16
    with pytest.raises(
        sweeper.TooFewTrialsError, match=r"^at epoch 8 only 1 configuration; epochs with"
    ):
        result.importance(at_epoch=8)


# --------------------------------------------------------------------------------------------
# the example
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_notebook_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(ROOT / "examples" / "notebook_quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "best: trial" in out
    assert (tmp_path / "sweeper.db").is_file() and list(tmp_path.glob("*report.html"))
    final = re.search(r"final model: test accuracy (0\.\d+)", out)
    assert final and float(final.group(1)) > 0.5  # the tuned optimizer, 6 epochs: it learns
    assert "optimizer = keras.optimizers" in out and "kept model: test accuracy" in out
