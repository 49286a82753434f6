"""The study figures drawn by ``optuna.visualization.matplotlib`` on an in-memory copy of the
study's trials, then retouched: ``history`` (with the pruned trials at their last reported
value), and ``parallel``, ``slice`` and ``contour`` of one schedule family.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeper.analysis import queries as an
from sweeper.analysis import study_data
from sweeper.analysis.plot_axes import axes_figure, optuna_style, readable_log_axes, visible_lines
from sweeper.analysis.plot_data import (
    PrunedPoint,
    family_scope,
    pruned_points,
)
from sweeper.errors import PlotUnavailableError
from sweeper.studyfile.names import shown

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pruned_markers(ax: Any, pruned: list[PrunedPoint], size: float, few: bool) -> None:
    """The pruned and diverged trials of ``history``, at their last reported value."""
    styles = {
        "paused": ("^", "tab:olive", "paused trial (resumable), last reported value"),
        "pruned": ("v", "0.45", "pruned trial, last reported value"),
        "stalled": ("v", "0.25", "stalled trial, last reported value"),
        "diverged": ("X", "tab:red", "diverged trial, last finite value"),
    }
    for outcome, (marker, color, label) in styles.items():
        these = [p for p in pruned if p.outcome == outcome]
        shown = [(p.number, p.value) for p in these if p.value is not None]
        if not these:
            continue
        count = f"{len(shown)} of {len(these)}" if len(shown) < len(these) else len(these)
        ax.scatter(
            [number for number, _ in shown],
            [value for _, value in shown],
            marker=marker,
            s=size * (0.9 if few else 1.5),
            color=color,
            alpha=0.9 if few else 0.5,
            lw=0,
            zorder=0.9,  # under the complete trials, over the grid
            label=f"{label} ({count})",
        )


def draw_history(data: study_data.StudyData, metric: str = "") -> Figure:
    from optuna.visualization.matplotlib import plot_optimization_history

    complete = data.complete()
    if not complete:
        raise PlotUnavailableError(f"history: study {data.name!r} has no complete trial")
    target = metric or "objective value"
    with optuna_style(10, 5):
        study = data.as_study()  # all trials: Optuna indexes its values by trial number
        ax = plot_optimization_history(study, target_name="complete trial")
        few = len(data.trials) < 200
        size = 36 if few else 8
        for coll in ax.collections:
            coll.set_sizes([size])  # type: ignore[attr-defined]
            coll.set_alpha(1.0 if few else 0.4)
        pruned = pruned_points(data)
        _pruned_markers(ax, pruned, size, few)
        base = [t for t in complete if an.baseline_of(t)]
        if base:
            ax.scatter(
                [t.number for t in base],
                [t.value or 0.0 for t in base],
                marker="D",
                s=40,
                color="tab:orange",
                ec="black",
                zorder=5,
                label="baseline",
            )
        for line in ax.get_lines():
            if line.get_label() == "Best Value":
                line.set_label("best so far (complete trials)")
        ax.set_xlabel("trial number")
        ax.set_ylabel(target)
        n_pruned = f", {len(pruned)} pruned" if pruned else ""
        ax.set_title(
            f"Optimization history of {shown(data.name)} ({len(complete)} complete{n_pruned} "
            "trials)"
        )
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig = axes_figure(ax)
        fig.tight_layout()
        return fig


def draw_optuna(
    data: study_data.StudyData, kind: str, family: str | None = None, metric: str = ""
) -> Figure:
    """``parallel``, ``slice`` or ``contour`` of one family's complete trials; where a study
    has too few of them (a multi-fidelity study pauses or stops most configurations), of its
    configurations at the epoch importance reads (the deepest that enough of them trained),
    each counted once with its value there."""
    try:
        return _draw_optuna(data, kind, family, metric, "complete trials")
    except PlotUnavailableError:
        reached = an.importance_epochs(data)
        deep = [e for e, n in reached.items() if n >= an.MIN_IMPORTANCE_TRIALS]
        if not deep:
            raise
        epoch = max(deep)
        at = dataclasses.replace(data, trials=an.at_epoch_trials(data, epoch))
        return _draw_optuna(at, kind, family, metric, f"configurations at epoch {epoch}")


def _draw_optuna(
    data: study_data.StudyData, kind: str, family: str | None, metric: str, what: str
) -> Figure:
    from matplotlib.collections import LineCollection, PathCollection
    from optuna.visualization import matplotlib as ovm

    if kind == "contour":
        scope = family_scope(data, family, numeric=True)
    else:  # a family with two parameters or more if there is one, else one with a single one
        try:
            scope = family_scope(data, family)
        except PlotUnavailableError:
            scope = family_scope(data, family, min_params=1)
    study = data.as_study(scope.trials, f"family:{scope.family}")
    target = metric or "objective value"
    n = len(scope.params)
    # optuna's slice plot is (figure.figsize width / 2) wide per parameter
    size = {"parallel": (11, 5.5), "slice": (6.4, 4.4), "contour": (3.3 * n + 1.5, 3 * n)}
    with optuna_style(*size[kind]):
        axes: Any
        if kind == "parallel":
            axes = ovm.plot_parallel_coordinate(study, params=scope.params, target_name="objective")
        elif kind == "slice":
            axes = ovm.plot_slice(study, params=scope.params, target_name=target)
        else:
            axes = ovm.plot_contour(study, params=scope.params, target_name=target)
        fig = axes_figure(axes)
        many = len(scope.trials) > 150
        for ax in np.asarray(axes, dtype=object).ravel():
            for coll in ax.collections:
                if isinstance(coll, PathCollection):
                    coll.set_linewidth(0.3)
                    if many:
                        coll.set_sizes([8])
                elif isinstance(coll, LineCollection) and coll.get_array() is not None:
                    visible_lines(coll, many)  # the parallel plot's trials
                elif getattr(coll, "filled", True) is False:  # contour lines, not their fill
                    coll.set_alpha(0.35)
        title = (
            f"{kind.capitalize()} of schedule family {scope.family!r}\n"
            f"{len(scope.trials)} {what} of {shown(data.name)}"
        )
        if isinstance(axes, np.ndarray):
            fig.suptitle(title)
        else:
            axes.set_title(title, y=1.03 if kind == "parallel" else 1.0, fontsize=11)
            if kind == "slice":
                fig.tight_layout()
        if kind == "parallel":
            fig.subplots_adjust(left=0.07, bottom=0.17, right=0.86, top=0.88)
            fig.text(0.01, 0.01, f"objective = {target}", fontsize=8)
        readable_log_axes(fig)
        return fig
