"""Tests for sweeper.analysis.plots: plot data on synthetic studies, then every drawing once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeper.analysis import plot_axes, plot_data, plot_optuna, plots, study_data
from sweeper.analysis import queries as an
from sweeper.analysis.anytime import read_ledger
from sweeper.errors import PlotUnavailableError, SweeperError, UnknownPlotKindError
from sweeper.testing import build_synthetic_store
from sweeper.training.schedules import FAMILIES, from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPE, EPOCHS = 10, 3
FAMILY = CategoricalDistribution(list(FAMILIES))
LR = FloatDistribution(1e-3, 0.5, log=True)
RATE = FloatDistribution(0.1, 0.9)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, study_data.StudyData]:
    path = tmp_path_factory.mktemp("plots") / "synthetic.db"
    url = build_synthetic_store(path, 90, seed=3)
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


def data_of(trials: list[FrozenTrial]) -> study_data.StudyData:
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    attrs = {"steps_per_epoch": SPE, "epochs": EPOCHS}
    return study_data.StudyData("s", "memory", "maximize", attrs, study.trials)


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
    with pytest.raises(UnknownPlotKindError, match="unknown plot kind 'pie'; choose from"):
        plots.check_kinds(["history", "pie"])


# -- plot data ------------------------------------------------------------------------------------
def test_lr_curves_data_takes_the_best_trials_and_the_best_baseline() -> None:
    d = plot_data.lr_curves_data(data_of(SMALL), top=2)
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
    (curve, *_) = plot_data.lr_curves_data(data, top=1).curves
    assert len(curve.steps) <= plot_data.MAX_CURVE_POINTS
    assert curve.steps[0] == 0 and curve.steps[-1] == 49_999


def test_lr_curves_need_a_complete_trial() -> None:
    with pytest.raises(PlotUnavailableError, match="no complete trial"):
        plot_data.lr_curves_data(data_of([SMALL[6]]))


def test_learning_curves_from_epoch_rows_else_intermediate_values() -> None:
    data = data_of(SMALL)
    rows = [
        {"trial_id": data.trials[1]._trial_id, "epoch": e, "val_accuracy": v}
        for e, v in enumerate([0.3, 0.6, 0.95])
    ]
    rows.append({"trial_id": data.trials[2]._trial_id, "epoch": 0, "val_accuracy": None})
    d = plot_data.learning_curves_data(data, rows)
    assert d.best_number == 1
    by_number = {c.number: c for c in d.curves}
    np.testing.assert_allclose(by_number[1].val_accuracy, [0.3, 0.6, 0.95])
    np.testing.assert_array_equal(by_number[1].epochs, [0, 1, 2])  # from 0, like the rows
    np.testing.assert_array_equal(by_number[2].epochs, [0, 1, 2])  # and intermediate steps
    np.testing.assert_allclose(by_number[2].val_accuracy, [0.7 / 3, 1.4 / 3, 0.7])
    assert by_number[5].outcome == "diverged" and by_number[0].baseline
    assert by_number[6].outcome == "failed"


def test_learning_curves_count_epochs_from_0(synthetic: tuple[str, study_data.StudyData]) -> None:
    url, data = synthetic
    rows = an.read_epochs(url, "synthetic")
    curves = plot_data.learning_curves_data(data, rows).curves
    assert min(int(c.epochs[0]) for c in curves) == 0 == min(int(r["epoch"]) for r in rows)
    by_id = {t.number: t._trial_id for t in data.trials}
    for c in curves:
        epochs = [r["epoch"] for r in rows if r["trial_id"] == by_id[c.number]]
        np.testing.assert_array_equal(c.epochs, epochs)  # the stored epochs, unshifted


def test_pruned_points_at_their_last_finite_reported_value() -> None:
    nan_last = optuna.create_trial(
        state=TrialState.PRUNED,
        params={"schedule": "constant", "initial_lr": 0.4},
        distributions={"schedule": FAMILY, "initial_lr": LR},
        user_attrs={"outcome": "diverged"},
        intermediate_values={0: 0.3, 1: 0.25, 2: float("nan")},
    )
    silent = optuna.create_trial(
        state=TrialState.PRUNED,
        params={"schedule": "constant", "initial_lr": 0.2},
        distributions={"schedule": FAMILY, "initial_lr": LR},
    )
    pruned = trial("exponential", 0.3, state=TrialState.PRUNED, lr=0.02)
    points = plot_data.pruned_points(data_of([*SMALL, pruned, nan_last, silent]))
    assert points == [
        plot_data.PrunedPoint(5, "diverged", 2, pytest.approx(0.2)),
        plot_data.PrunedPoint(7, "pruned", 2, pytest.approx(0.3)),
        plot_data.PrunedPoint(8, "diverged", 1, 0.25),
        plot_data.PrunedPoint(9, "pruned", None, None),
    ]


def test_families_data() -> None:
    stats = plot_data.families_data(data_of(SMALL))
    assert [f.family for f in stats] == ["exponential", "constant", "cosine"]
    exp, const, cos = stats
    np.testing.assert_allclose(sorted(exp.values), [0.7, 0.8, 0.9])
    assert (exp.best_value, exp.best_number, exp.n_trials) == (0.9, 1, 3)
    np.testing.assert_allclose(const.values, [0.6])  # the baseline is apart
    assert const.baselines == [("tutorial", 0.5)]
    assert (cos.best_value, cos.n_pruned, cos.n_failed, len(cos.values)) == (None, 1, 1, 0)


def test_family_scope_picks_the_best_family_with_enough_parameters() -> None:
    data = data_of(SMALL)
    scope = plot_data.family_scope(data)
    assert scope.family == "exponential" and scope.params == ["initial_lr", "decay_rate"]
    assert [t.number for t in scope.trials] == [1, 2, 3]
    assert plot_data.family_scope(data, min_params=1).family == "exponential"
    with pytest.raises(PlotUnavailableError, match="no complete trial of family 'step'"):
        plot_data.family_scope(data, "step")
    with pytest.raises(PlotUnavailableError, match="family 'constant'"):
        plot_data.family_scope(data, "constant")


def test_schedule_curves_defaults_and_settings() -> None:
    d = plot_data.schedule_curves_data([], 500)
    assert [label.split("(")[0] for label, _ in d.curves] == list(FAMILIES)
    for label, rates in d.curves:
        assert rates.shape == (500,) and np.all(np.isfinite(rates)), label
        assert rates.max() <= 0.1 + 1e-12, label
    (label, rates), *_ = plot_data.schedule_curves_data(
        ["exponential", "constant"], 100, {"initial_lr": 0.5, "decay_rate": 0.1, "decay_steps": 50}
    ).curves
    assert label.startswith("exponential(initial_lr=0.5, decay_steps=50, decay_rate=0.1")
    assert rates[50] == pytest.approx(0.05)
    with pytest.raises(SweeperError, match="no chosen family takes 'power'"):
        plot_data.schedule_curves_data(["constant"], 100, {"power": 2})
    with pytest.raises(SweeperError, match="unknown schedule family 'cyclic'"):
        plot_data.schedule_curves_data(["cyclic"])


def test_schedule_curves_take_the_study_files_names() -> None:
    # decay_rate and drop_every (in epochs) as in [space]; the drawn steps are a 10-epoch run
    (label, rates), *_ = plot_data.schedule_curves_data(
        ["step"], 1000, {"decay_rate": 0.3, "drop_every": 2}
    ).curves
    assert label == "step(initial_lr=0.1, decay_rate=0.3, drop_every=2, steps_per_epoch=100)"
    # the tutorials' formula: lr0 * decay_rate ** floor((1 + epoch) / drop_every)
    for step in (0, 99, 100, 250, 999):
        assert rates[step] == pytest.approx(0.1 * 0.3 ** ((1 + step // 100) // 2), rel=1e-9)
    # the same names as `tune --set space.decay_rate=...`, in the message too
    with pytest.raises(SweeperError, match=r"step: decay_rate, drop_every, initial_lr"):
        plot_data.schedule_curves_data(["step"], 100, {"bogus": 1})
    from click.testing import CliRunner

    from sweeper.cli.commands import main

    out = CliRunner().invoke(main, ["schedules", "--family", "step", "--set", "decay_rate=0.3"])
    assert out.exit_code == 0 and "decay_rate=0.3" in out.output, out.output


def test_data_on_a_synthetic_store(synthetic: tuple[str, study_data.StudyData]) -> None:
    url, data = synthetic
    rows = an.read_epochs(url, "synthetic")
    assert rows and {r["trial_number"] for r in rows} <= {t.number for t in data.trials}
    curves = plot_data.learning_curves_data(data, rows)
    assert {c.outcome for c in curves.curves} >= {"complete", "pruned"}
    stats = plot_data.families_data(data)
    assert sum(f.n_trials for f in stats) == len(data.trials)
    assert any(f.baselines for f in stats)


# -- drawing --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", plots.KINDS)
def test_every_kind_draws_a_png(
    kind: str, synthetic: tuple[str, study_data.StudyData], tmp_path: Path
) -> None:
    url, data = synthetic
    rows = an.read_epochs(url, "synthetic") if kind == "learning-curves" else None
    ledger = read_ledger(url, "synthetic") if kind == "anytime" else None
    fig = plots.draw(data, kind, top=3, epoch_rows=rows, ledger=ledger)
    path = plots.save(fig, tmp_path / f"{kind}.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_schedules_draw_as_svg(tmp_path: Path) -> None:
    fig = plots.draw_schedules(plot_data.schedule_curves_data(["cosine", "step"], 200))
    path = plots.save(fig, tmp_path / "s.svg", "svg")
    assert path.read_text().lstrip().startswith("<?xml")


def test_write_plots_skips_what_the_study_cannot_show(tmp_path: Path) -> None:
    url = build_synthetic_store(tmp_path / "tiny.db", 9, seed=1)  # mostly baselines
    result = plots.write_plots(url, "synthetic", ["families", "contour"], tmp_path / "out")
    assert [p.name for p in result.paths] == ["synthetic-families.png"]
    assert set(result.skipped) == {"contour"}
    with pytest.raises(SweeperError, match="unknown image format"):
        plots.write_plots(url, "synthetic", ["history"], tmp_path, "jpg")


def test_importance_of_paused_configurations_is_drawn_and_names_its_epoch(
    tmp_path: Path,
) -> None:
    from conftest import asha_trials, write_store

    url = write_store(tmp_path / "asha.db", asha_trials(), "asha")
    result = plots.write_plots(url, "asha", ["importance"], tmp_path / "out")
    assert [p.name for p in result.paths] == ["asha-importance.png"] and not result.skipped
    fig = plots.draw(an.load(url, "asha"), "importance", evaluator="fanova")
    title = fig.get_suptitle()
    assert title == "asha: parameter importance at epoch 4, 4 configurations (fanova)"
    assert fig.axes[0].get_title() == "all families (4 configurations)"
    plots.close(fig)


# -- drawn artists --------------------------------------------------------------------------------
def luma(rgba: Any) -> np.ndarray:
    """Lightness (0 black, 1 white) of colours laid over white at their alpha."""
    c = np.atleast_2d(np.asarray(rgba, dtype=np.float64))
    return 1.0 - c[:, 3] * (1.0 - c[:, :3] @ [0.299, 0.587, 0.114])


def scattered(fig: Any, label: str) -> np.ndarray:
    """The points of the one scatter of ``fig`` whose label starts with ``label``."""
    (coll,) = [c for ax in fig.axes for c in ax.collections if c.get_label().startswith(label)]
    return np.asarray(coll.get_offsets())


def test_history_shows_pruned_and_diverged_trials_apart() -> None:
    pruned = [
        trial("exponential", v, state=TrialState.PRUNED, lr=0.02 * (i + 1))
        for i, v in enumerate([0.3, 0.25, 0.15])
    ]
    data = data_of([*SMALL, *pruned])  # 5: diverged at 0.2, 7-9: pruned
    fig = plot_optuna.draw_history(data)
    try:
        complete = scattered(fig, "complete trial")
        assert sorted(complete[:, 0]) == [0, 1, 2, 3, 4]
        np.testing.assert_allclose(scattered(fig, "pruned trial"), [[7, 0.3], [8, 0.25], [9, 0.15]])
        np.testing.assert_allclose(scattered(fig, "diverged trial"), [[5, 0.2]])
        (ax,) = fig.axes
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "pruned trial, last reported value (3)" in legend
        assert "diverged trial, last finite value (1)" in legend
        assert "best so far (complete trials)" in legend
        (best,) = [line for line in ax.get_lines() if line.get_label().startswith("best so far")]
        assert max(best.get_ydata()) == pytest.approx(0.9)  # complete trials only
        assert "5 complete, 4 pruned trials" in ax.get_title()
    finally:
        plots.close(fig)


def test_history_of_the_synthetic_store_counts_every_pruned_trial(
    synthetic: tuple[str, study_data.StudyData],
) -> None:
    _, data = synthetic
    points = plot_data.pruned_points(data)
    n_pruned = sum(t.state == TrialState.PRUNED for t in data.trials)
    assert len(points) == n_pruned > 0
    fig = plot_optuna.draw_history(data)
    try:
        shown = len(scattered(fig, "pruned trial")) + len(scattered(fig, "diverged trial"))
        assert shown == sum(p.value is not None for p in points) == n_pruned
    finally:
        plots.close(fig)


def exponential_trials(
    n: int, *, low: float, high: float, minimize: bool = False
) -> study_data.StudyData:
    rng = np.random.default_rng(7)
    lrs = np.exp(rng.uniform(np.log(low), np.log(high), n))
    rates = rng.uniform(0.1, 0.9, n)
    values = rng.uniform(0.1, 0.95, n)
    values[0], values[1] = 0.1, 0.95  # the worst and the best trial
    data = data_of(
        [
            trial("exponential", float(v), lr=float(lr), rate=float(r))
            for v, lr, r in zip(values, lrs, rates, strict=True)
        ]
    )
    if minimize:
        data.direction = "minimize"
    return data


def trial_lines(fig: Any) -> Any:
    from matplotlib.collections import LineCollection

    (lines,) = [
        c
        for ax in fig.axes
        for c in ax.collections
        if isinstance(c, LineCollection) and c.get_array() is not None
    ]
    return lines


@pytest.mark.parametrize(("n", "minimize"), [(8, False), (8, True), (200, False)])
def test_parallel_draws_every_trial_visibly_better_darker(n: int, minimize: bool) -> None:
    data = exponential_trials(n, low=0.002, high=0.4, minimize=minimize)
    fig = plots.draw(data, "parallel")
    try:
        fig.canvas.draw()
        lines = trial_lines(fig)
        assert len(lines.get_segments()) == n
        lightness = luma(lines.get_edgecolor())
        assert lightness.shape == (n,) and lightness.max() < 0.75  # white is 1.0
        values = np.asarray(lines.get_array())
        best, worst = (np.argmin, np.argmax) if minimize else (np.argmax, np.argmin)
        assert lightness[best(values)] < lightness[worst(values)] - 0.3
        order = -values if minimize else values
        assert list(np.argsort(order, kind="stable")) == list(range(n))  # the best on top
        bar = lines.colorbar  # follows the lines: the same map and value range
        assert bar.cmap is lines.get_cmap()
        assert (bar.norm.vmin, bar.norm.vmax) == pytest.approx((values.min(), values.max()))
        ends = luma(bar.cmap([0.0, 1.0]))
        assert ends.max() < 0.75 and abs(ends[0] - ends[1]) > 0.3
    finally:
        plots.close(fig)


def check_log_axes(fig: Any) -> int:
    """Every log axis of ``fig`` reads: few labels, none overlapping; the number of log axes."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    checked = 0
    for ax in fig.axes:
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale != "log":
                continue
            checked += 1
            labels = plot_axes.shown_tick_labels(axis)
            assert len(labels) <= plot_axes.LOG_TICKS, [t.get_text() for t in labels]
            if labels:
                assert len({t.get_text() for t in labels}) == len(labels)
            boxes = [t.get_window_extent(renderer) for t in labels]
            for i, a in enumerate(boxes):
                for b in boxes[i + 1 :]:
                    assert not a.overlaps(b), [t.get_text() for t in labels]
            assert not any(t.get_text() for t in axis.get_minorticklabels())
    return checked


@pytest.mark.parametrize(("low", "high"), [(0.0011, 0.49), (0.012, 0.34), (0.051, 0.089)])
def test_slice_log_axis_labels_are_few_and_apart(low: float, high: float) -> None:
    fig = plots.draw(exponential_trials(12, low=low, high=high), "slice")
    try:
        assert check_log_axes(fig) == 1
        (ax,) = [ax for ax in fig.axes if ax.get_xscale() == "log"]
        labels = plot_axes.shown_tick_labels(ax.xaxis)
        assert len(labels) >= 2  # the axis still tells its range
        assert all(float(t.get_text()) > 0 for t in labels)  # plain numbers
    finally:
        plots.close(fig)


def test_contour_log_axes_labels_are_few_and_apart() -> None:
    fig = plots.draw(exponential_trials(20, low=0.012, high=0.34), "contour")
    try:
        assert check_log_axes(fig) == 1  # two parameters: one panel, initial_lr on log scale
        (axis,) = [
            axis for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) if axis.get_scale() == "log"
        ]
        assert len(plot_axes.shown_tick_labels(axis)) >= 2
    finally:
        plots.close(fig)


@pytest.mark.parametrize("kind", ["parallel", "slice", "contour"])
def test_log_axes_of_the_synthetic_store_read(
    kind: str, synthetic: tuple[str, study_data.StudyData]
) -> None:
    _, data = synthetic
    fig = plots.draw(data, kind)
    try:
        assert check_log_axes(fig) >= 1
    finally:
        plots.close(fig)


@pytest.mark.parametrize(
    ("low", "high", "most", "expected"),
    [
        (0.04, 0.35, 6, [0.05, 0.1, 0.2]),
        (0.012, 0.34, 6, [0.02, 0.05, 0.1, 0.2]),
        (0.012, 0.34, 3, [0.03, 0.1, 0.3]),
        (0.001, 0.5, 6, [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]),
        (0.001, 0.5, 4, [0.001, 0.01, 0.1]),
        (1e-6, 1.0, 4, [1e-6, 1e-4, 0.01, 1.0]),
        (0.00077, 0.64, 2, [0.001, 0.1]),  # every other decade, two of them in range
        (0.0023, 0.64, 2, [0.01, 0.1]),
    ],
)
def test_log_ticks(low: float, high: float, most: int, expected: list[float]) -> None:
    assert plot_axes.log_ticks(low, high, most) == pytest.approx(expected)


def test_log_ticks_on_a_narrow_range_are_evenly_spaced() -> None:
    ticks = plot_axes.log_ticks(0.061, 0.089, 4)
    assert 2 <= len(ticks) <= 4 and all(0.061 <= t <= 0.089 for t in ticks)
    assert len(set(np.round(np.diff(ticks), 12))) == 1


def test_learning_curves_draw_epochs_from_0(synthetic: tuple[str, study_data.StudyData]) -> None:
    url, data = synthetic
    d = plot_data.learning_curves_data(data, an.read_epochs(url, "synthetic"))
    fig = plots.draw_learning_curves(d)
    try:
        (ax,) = fig.axes
        assert "from 0" in ax.get_xlabel()
        ticks = list(ax.get_xticks())
        last = max(int(c.epochs.max()) for c in d.curves)
        assert ticks[0] == 0 and ticks == list(range(last + 1))  # 8 epochs: every one
        fig.canvas.draw()
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(e) for e in ticks]
        low, _ = ax.get_xlim()
        assert low < 0
        (best,) = [line for line in ax.get_lines() if line.get_marker() == "o"]
        assert best.get_xdata()[0] == 0
        segments = [s for c in ax.collections for s in c.get_segments()]
        assert segments and min(float(s[0, 0]) for s in segments) == 0
    finally:
        plots.close(fig)


def test_the_later_families_are_listed_and_drawn(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sweeper.cli.commands import main

    later = ["linear", "wsd", "one_cycle", "rex", "shape"]
    listed = CliRunner().invoke(main, ["families"])
    assert listed.exit_code == 0
    names = [line.split()[0] for line in listed.output.splitlines()]
    assert names == list(FAMILIES) and set(later) <= set(names)
    d = plot_data.schedule_curves_data(later, 400, {"initial_lr": 0.2})
    assert [label.split("(")[0] for label, _ in d.curves] == later
    for label, rates in d.curves:
        assert rates.max() == pytest.approx(0.2, rel=1e-3), label
    ends = {label.split("(")[0]: rates[-1] for label, rates in d.curves}
    assert ends["linear"] == ends["wsd"] == ends["rex"] == 0.0  # at the last step drawn
    assert ends["one_cycle"] == pytest.approx(0.2 / 25 / 1e4)
    assert ends["shape"] == pytest.approx(0.2 * 0.01)
    png = tmp_path / "later.png"
    args = [f"--family={f}" for f in later]
    drawn = CliRunner().invoke(main, ["schedules", *args, "--steps", "300", "--plot", str(png)])
    assert drawn.exit_code == 0, drawn.output
    assert "wsd(initial_lr=0.1" in drawn.output and "cooldown=1-sqrt" in drawn.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", ["parallel", "slice"])
def test_a_multi_fidelity_study_draws_its_configurations_at_an_epoch(
    kind: str, tmp_path: Path
) -> None:
    """An ASHA study with one complete tuned trial: parallel and slice draw the configurations
    that trained the epoch importance reads, each once, and say so in the title."""
    from conftest import asha_trials, write_store

    url = write_store(tmp_path / "s.db", asha_trials(), "asha")
    data = an.load(url, "asha")
    reached = an.importance_epochs(data)
    epoch = max(e for e, n in reached.items() if n >= an.MIN_IMPORTANCE_TRIALS)
    fig = plots.draw(data, kind)
    title = fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title()
    assert f"configurations at epoch {epoch} of asha" in title
    n = int(title.split("\n")[1].split()[0])
    family_n = sum(
        1 for t in an.at_epoch_trials(data, epoch) if an.family_of(t) == title.split("'")[1]
    )
    assert n == family_n > 0
    plots.close(fig)
