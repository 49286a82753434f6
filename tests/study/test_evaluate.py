"""Tests for sweeper.retraining.evaluate: a tiny real study, retrained on train + validation, real store."""

from __future__ import annotations

import ast
import statistics
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from sweeper.cli.commands import main
from sweeper.errors import EvaluationError
from sweeper.retraining.evaluate import (
    Evaluation,
    evaluate,
    select_trials,
    stored_evaluations,
    stored_spec,
)
from sweeper.retraining.retrain import trial_config
from sweeper.search.run_options import RunOptions
from sweeper.search.runner import tune
from sweeper.search.trial_record import BASELINE_ATTR
from sweeper.store.store import Store
from sweeper.studyfile.config import load_study_file
from sweeper.training.data import load_dataset
from sweeper.training.train_trial import steps_per_epoch

STUDY = "digits"
# One of the embedded study's baselines, alone, so that 4 trials are 1 baseline + 3 tuned ones.
# Its drop interval is given in epochs, so its schedule depends on the steps per epoch.
BASELINE = (
    'baselines=[{name = "epoch-wise lr/3 from 0.1", schedule = "exponential", '
    "initial_lr = 0.1, drop_every = 1.0, decay_rate = 0.3333333333333333, staircase = true}]"
)
OVERRIDES = ["train.epochs=1", "data.subset=300", "study.n_trials=4", BASELINE]


@pytest.fixture(scope="module")
def study_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('evaluate')}/s.db"
    summary = tune(load_study_file(None, overrides=OVERRIDES), RunOptions(storage=url))
    assert summary.counts["complete"] == 4, summary.counts
    return url


@pytest.fixture(scope="module")
def evaluation(study_url: str) -> Evaluation:
    return evaluate(STUDY, storage=study_url, top=2, repeats=2)


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    storage = Store(url).optuna_storage(heartbeat=False)
    return optuna.load_study(study_name=STUDY, storage=storage).get_trials()


def test_trials_are_rebuilt_as_they_trained(study_url: str) -> None:
    store = Store(study_url)
    spec = stored_spec(store, STUDY)
    assert spec.overrides == tuple(OVERRIDES)
    assert spec.train.epochs == 1 and spec.data.subset == 300
    trials = [t for t in _trials(study_url) if t.state == TrialState.COMPLETE]
    assert any(t.user_attrs.get(BASELINE_ATTR) for t in trials)
    for t in trials:
        config = trial_config(t, spec.space)
        schedule = config.schedule(t.user_attrs["steps_per_epoch"], spec.train.epochs)
        assert schedule.to_dict() == t.user_attrs["schedule"], t.number
        assert config.optimizer.describe() == t.user_attrs["optimizer"]

    dataset = load_dataset(spec.data)
    full = steps_per_epoch(len(dataset.y_train) + len(dataset.y_val), spec.train.batch_size)
    (baseline,) = [t for t in trials if t.user_attrs.get(BASELINE_ATTR)]
    rebuilt = trial_config(baseline, spec.space).schedule(full, spec.train.epochs)
    assert rebuilt.to_dict()["decay_steps"] == full  # one epoch of the merged split
    assert full > baseline.user_attrs["steps_per_epoch"]


def test_selects_best_tuned_trials_and_best_baseline(study_url: str) -> None:
    trials = _trials(study_url)
    tuned, baseline = select_trials(trials, 2)
    assert len(tuned) == 2
    assert not any(t.user_attrs.get(BASELINE_ATTR) for t in tuned)
    assert (tuned[0].value or 0) >= (tuned[1].value or 0)
    others = [
        t.value
        for t in trials
        if t.state == TrialState.COMPLETE and not t.user_attrs.get(BASELINE_ATTR) and t not in tuned
    ]
    assert all((v or 0) <= (tuned[1].value or 0) for v in others)
    assert baseline is not None and baseline.user_attrs[BASELINE_ATTR] == "epoch-wise lr/3 from 0.1"


def test_evaluation_reports_mean_and_std(evaluation: Evaluation) -> None:
    ev = evaluation
    assert [c.is_baseline for c in ev.configs] == [False, False, True]
    assert ev.repeats == 2 and ev.epochs == 1
    assert ev.n_train == 300  # training and validation splits together
    for c in ev.configs:
        assert [r.seed for r in c.runs] == [0, 1]
        assert all(0.0 <= a <= 1.0 for a in c.accuracies)
        assert c.mean == pytest.approx(statistics.fmean(c.accuracies))
        assert c.std == pytest.approx(statistics.stdev(c.accuracies))
    tuned = ev.tuned
    assert tuned[0].val_accuracy >= tuned[1].val_accuracy
    assert ev.best_tuned is tuned[0]
    assert ev.baseline is not None and ev.baseline.label == "epoch-wise lr/3 from 0.1"
    assert ev.difference == pytest.approx(tuned[0].mean - ev.baseline.mean)
    assert ev.difference_se is not None and ev.difference_se >= 0
    assert tuned[0].label.split("(")[0] in {
        "constant",
        "time",
        "step",
        "exponential",
        "piecewise",
        "polynomial",
        "inverse_time",
        "cosine",
        "cosine_restarts",
    }


def test_every_run_is_stored(study_url: str, evaluation: Evaluation) -> None:
    rows = stored_evaluations(Store(study_url), STUDY)
    mine = rows[: 3 * 2]  # the fixture's runs come first
    assert len(mine) == 3 * 2
    assert sum(r["is_baseline"] for r in mine) == 2
    by_trial = {c.trial_number: c for c in evaluation.configs}
    for r in mine:
        config = by_trial[r["trial_number"]]
        assert r["label"] == config.label and r["epochs"] == 1
        assert r["test_accuracy"] in config.accuracies
        assert r["created_at"] is not None


def test_cli_prints_table_and_difference(study_url: str, evaluation: Evaluation) -> None:
    before = len(stored_evaluations(Store(study_url), STUDY))
    result = CliRunner().invoke(
        main,
        ["evaluate", STUDY, "--storage", study_url, "--top", "1", "--repeats", "1"],
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "test accuracy (1 run)" in out and "val accuracy (study)" in out
    assert " ± " not in out  # a single run has no spread to show, not a spread of zero
    assert out.count("(1 run)") == 3  # the heading, the tuned trial and the baseline
    assert "epoch-wise lr/3 from 0.1" in out and "(baseline)" in out
    assert "minus baseline" in out and "one run each: no spread" in out
    assert len(stored_evaluations(Store(study_url), STUDY)) == before + 2


def test_unknown_study_is_one_line(study_url: str) -> None:
    result = CliRunner().invoke(main, ["evaluate", "nope", "--storage", study_url])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no study 'nope' in {study_url}; studies there: {STUDY}"
    ]


def test_missing_store_is_not_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/none.db"
    with pytest.raises(EvaluationError, match="no store at"):
        evaluate(STUDY, storage=url)
    assert not (tmp_path / "none.db").exists()


def test_study_without_complete_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/e.db"
    storage = Store(url).optuna_storage(heartbeat=False)
    optuna.create_study(study_name="empty", storage=storage)
    result = CliRunner().invoke(main, ["evaluate", "empty", "--storage", url])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "has no complete trial" in result.stderr


def test_study_without_stored_study_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/f.db"
    study = optuna.create_study(
        study_name="bare", storage=Store(url).optuna_storage(heartbeat=False)
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(EvaluationError, match="no stored study file"):
        evaluate("bare", storage=url)


def test_sources_use_keras_3_lazily() -> None:
    root = Path(__file__).resolve().parents[2] / "sweeper"
    for name in (
        "retraining/evaluate.py",
        "retraining/retrain.py",
        "retraining/confirm.py",
        "search/lrfind.py",
        "cli/train.py",
    ):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        for node in tree.body:  # module level: no Keras, no TensorFlow
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                assert not any(
                    (m or "").split(".")[0] in {"keras", "tensorflow"} for m in modules
                ), (name, node.lineno)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                assert not any((m or "").startswith("tensorflow") for m in modules), name
            if isinstance(node, ast.Name):
                assert node.id not in {"tf", "tensorflow"}, (name, node.lineno)


def test_cli_import_stays_light() -> None:
    code = (
        "import sys, sweeper.cli.commands; "
        "print([m for m in sys.modules if m.startswith(('keras', 'tensorflow'))])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
