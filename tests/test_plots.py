"""Tests for sweeper.plots: plot data on synthetic studies, then every drawing once."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeper import analysis as an
from sweeper import plots
from sweeper.errors import SweeperError
from sweeper.schedules import FAMILIES, from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)

ROOT = Path(__file__).resolve().parents[1]
SPE, EPOCHS = 10, 3
FAMILY = CategoricalDistribution(list(FAMILIES))
LR = FloatDistribution(1e-3, 0.5, log=True)
RATE = FloatDistribution(0.1, 0.9)


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_analysis", ROOT / "scripts/bench_analysis.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, an.StudyData]:
    path = tmp_path_factory.mktemp("plots") / "synthetic.db"
    url = bench_module().build_synthetic_store(path, 90, seed=3)
    return url, an.load(url, "synthetic")


def trial(
    family: str,
    value: float | None,
    *,
    state: TrialState = TrialState.COMPLETE,
    lr: float = 0.1,
    rate: float = 0.5,
    baseline: str | None = None,
    outcome: str | None = None,
) -> FrozenTrial:
    params: dict[str, Any] = {"schedule": family, "initial_lr": lr}
    dists: dict[str, Any] = {"schedule": FAMILY, "initial_lr": LR}
    schedule: dict[str, Any] = {"family": family, "initial_lr": lr}
    if family == "exponential":
        params["decay_rate"] = rate
        dists["decay_rate"] = RATE
        schedule.update(decay_steps=float(SPE), decay_rate=rate)
    attrs: dict[str, Any] = {"schedule": schedule, "optimizer": "sgd"}
    if baseline:
        attrs["baseline"] = baseline
    if outcome:
        attrs["outcome"] = outcome
    inter = {e: (value or 0.1) * (e + 1) / EPOCHS for e in range(EPOCHS if value else 1)}
    return optuna.create_trial(
        state=state,
        value=value,
        params=params,
        distributions=dists,
        user_attrs=attrs,
        intermediate_values=inter,
    )


def data_of(trials: list[FrozenTrial]) -> an.StudyData:
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    attrs = {"steps_per_epoch": SPE, "epochs": EPOCHS}
    return an.StudyData("s", "memory", "maximize", attrs, study.trials)


SMALL = [
    trial("constant", 0.5, lr=0.01, baseline="tutorial"),  # 0
    trial("exponential", 0.9, lr=0.2, rate=0.3),  # 1
    trial("exponential", 0.7, lr=0.05, rate=0.6),  # 2
    trial("exponential", 0.8, lr=0.1, rate=0.8),  # 3
    trial("constant", 0.6, lr=0.3),  # 4
    trial("cosine", 0.2, state=TrialState.PRUNED, lr=0.4, outcome="diverged"),  # 5
    trial("cosine", None, state=TrialState.FAIL),  # 6
]


# -- kinds ----------------------------------------------------------------------------------------
def test_check_kinds() -> None:
    assert plots.check_kinds(["history", "all", "history"]) == list(plots.KINDS)
    assert plots.check_kinds(["slice", "history"]) == ["slice", "history"]
    with pytest.raises(plots.UnknownPlotKindError, match="unknown plot kind 'pie'; choose from"):
        plots.check_kinds(["history", "pie"])


# -- plot data ------------------------------------------------------------------------------------
def test_lr_curves_data_takes_the_best_trials_and_the_best_baseline() -> None:
    d = plots.lr_curves_data(data_of(SMALL), top=2)
    assert (d.steps_per_epoch, d.epochs) == (SPE, EPOCHS)
    assert [c.number for c in d.curves] == [1, 3, 0]
    assert [c.baseline for c in d.curves] == [False, False, True]
    first = d.curves[0]
    np.testing.assert_array_equal(first.steps, np.arange(SPE * EPOCHS))
    expected = from_dict(SMALL[1].user_attrs["schedule"]).curve(SPE * EPOCHS)
    np.testing.assert_allclose(first.rates, expected)
    assert first.label.startswith("#1 0.9000 exponential(initial_lr=0.2")


def test_lr_curves_are_sampled_on_long_runs() -> None:
    data = data_of(SMALL)
    data.user_attrs.update(steps_per_epoch=5000, epochs=10)
    (curve, *_) = plots.lr_curves_data(data, top=1).curves
    assert len(curve.steps) <= plots.MAX_CURVE_POINTS
    assert curve.steps[0] == 0 and curve.steps[-1] == 49_999


def test_lr_curves_need_a_complete_trial() -> None:
    with pytest.raises(plots.PlotUnavailableError, match="no complete trial"):
        plots.lr_curves_data(data_of([SMALL[6]]))


def test_learning_curves_from_epoch_rows_else_intermediate_values() -> None:
    data = data_of(SMALL)
    rows = [
        {"trial_id": data.trials[1]._trial_id, "epoch": e, "val_accuracy": v}
        for e, v in enumerate([0.3, 0.6, 0.95])
    ]
    rows.append({"trial_id": data.trials[2]._trial_id, "epoch": 0, "val_accuracy": None})
    d = plots.learning_curves_data(data, rows)
    assert d.best_number == 1
    by_number = {c.number: c for c in d.curves}
    np.testing.assert_allclose(by_number[1].val_accuracy, [0.3, 0.6, 0.95])
    np.testing.assert_array_equal(by_number[1].epochs, [1, 2, 3])
    np.testing.assert_allclose(by_number[2].val_accuracy, [0.7 / 3, 1.4 / 3, 0.7])
    assert by_number[5].outcome == "diverged" and by_number[0].baseline
    assert by_number[6].outcome == "failed"


def test_families_data() -> None:
    stats = plots.families_data(data_of(SMALL))
    assert [f.family for f in stats] == ["exponential", "constant", "cosine"]
    exp, const, cos = stats
    np.testing.assert_allclose(sorted(exp.values), [0.7, 0.8, 0.9])
    assert (exp.best_value, exp.best_number, exp.n_trials) == (0.9, 1, 3)
    np.testing.assert_allclose(const.values, [0.6])  # the baseline is apart
    assert const.baselines == [("tutorial", 0.5)]
    assert (cos.best_value, cos.n_pruned, cos.n_failed, len(cos.values)) == (None, 1, 1, 0)


def test_family_scope_picks_the_best_family_with_enough_parameters() -> None:
    data = data_of(SMALL)
    scope = plots.family_scope(data)
    assert scope.family == "exponential" and scope.params == ["initial_lr", "decay_rate"]
    assert [t.number for t in scope.trials] == [1, 2, 3]
    assert plots.family_scope(data, min_params=1).family == "exponential"
    with pytest.raises(plots.PlotUnavailableError, match="no complete trial of family 'step'"):
        plots.family_scope(data, "step")
    with pytest.raises(plots.PlotUnavailableError, match="family 'constant'"):
        plots.family_scope(data, "constant")


def test_schedule_curves_defaults_and_settings() -> None:
    d = plots.schedule_curves_data([], 500)
    assert [label.split("(")[0] for label, _ in d.curves] == list(FAMILIES)
    for label, rates in d.curves:
        assert rates.shape == (500,) and np.all(np.isfinite(rates)), label
        assert rates.max() <= 0.1 + 1e-12, label
    (label, rates), *_ = plots.schedule_curves_data(
        ["exponential", "constant"], 100, {"initial_lr": 0.5, "decay_rate": 0.1, "decay_steps": 50}
    ).curves
    assert label.startswith("exponential(initial_lr=0.5, decay_steps=50, decay_rate=0.1")
    assert rates[50] == pytest.approx(0.05)
    with pytest.raises(SweeperError, match="no chosen family takes 'power'"):
        plots.schedule_curves_data(["constant"], 100, {"power": 2})
    with pytest.raises(SweeperError, match="unknown schedule family 'linear'"):
        plots.schedule_curves_data(["linear"])


def test_data_on_a_synthetic_store(synthetic: tuple[str, an.StudyData]) -> None:
    url, data = synthetic
    rows = an.read_epochs(url, "synthetic")
    assert rows and {r["trial_number"] for r in rows} <= {t.number for t in data.trials}
    curves = plots.learning_curves_data(data, rows)
    assert {c.outcome for c in curves.curves} >= {"complete", "pruned"}
    stats = plots.families_data(data)
    assert sum(f.n_trials for f in stats) == len(data.trials)
    assert any(f.baselines for f in stats)


# -- drawing --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", plots.KINDS)
def test_every_kind_draws_a_png(
    kind: str, synthetic: tuple[str, an.StudyData], tmp_path: Path
) -> None:
    url, data = synthetic
    rows = an.read_epochs(url, "synthetic") if kind == "learning-curves" else None
    fig = plots.draw(data, kind, top=3, epoch_rows=rows)
    path = plots.save(fig, tmp_path / f"{kind}.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_schedules_draw_as_svg(tmp_path: Path) -> None:
    fig = plots.draw_schedules(plots.schedule_curves_data(["cosine", "step"], 200))
    path = plots.save(fig, tmp_path / "s.svg", "svg")
    assert path.read_text().lstrip().startswith("<?xml")


def test_write_plots_skips_what_the_study_cannot_show(tmp_path: Path) -> None:
    bench = bench_module()
    url = bench.build_synthetic_store(tmp_path / "tiny.db", 9, seed=1)  # mostly baselines
    result = plots.write_plots(url, "synthetic", ["families", "contour"], tmp_path / "out")
    assert [p.name for p in result.paths] == ["synthetic-families.png"]
    assert set(result.skipped) == {"contour"}
    with pytest.raises(SweeperError, match="unknown image format"):
        plots.write_plots(url, "synthetic", ["history"], tmp_path, "jpg")
