"""Figures of a study: plot data (NamedTuples, computed and tested apart) and their drawing.

Our own kinds (``lr-curves``, ``learning-curves``, ``families``, ``importance``, and the curves of
``sweeper schedules``) are computed by the ``*_data`` functions and drawn by the ``draw_*``
functions; ``anytime`` (one study or several on one figure) is computed by
:mod:`sweeper.analysis.anytime`. ``history``, ``parallel``, ``slice`` and ``contour`` are drawn
by ``optuna.visualization.matplotlib`` on an in-memory copy of the study's trials, then retouched
(size, labels, units, colours, log-axis ticks); ``history`` adds the pruned trials (at their last
reported value, from ``pruned_points``). Parallel coordinates, slices and contours show one
schedule family at a time: its parameters exist only inside it.

The plot data are computed in :mod:`sweeper.analysis.plot_data`, Optuna's kinds drawn in
:mod:`sweeper.analysis.plot_optuna`, with the axis helpers of :mod:`sweeper.analysis.plot_axes`; this module draws
our own kinds, picks the drawing of a kind (:func:`draw`) and writes the files.

Matplotlib is imported inside the drawing functions, with the Agg backend; never Keras.
"""

from __future__ import annotations

import logging
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sweeper.analysis import queries as an
from sweeper.analysis import study_data
from sweeper.analysis.anytime import AnytimeCurve, Source, anytime_data, load_curves, read_ledger
from sweeper.analysis.plot_axes import (
    DPI,
    epoch_axis,
    figure,
    horizontal,
    log_floor,
    positive_rates,
)
from sweeper.analysis.plot_data import (
    FamilyStats,
    LearningCurves,
    LrCurves,
    ScheduleCurves,
    families_data,
    learning_curves_data,
    lr_curves_data,
)
from sweeper.analysis.plot_optuna import draw_history, draw_optuna
from sweeper.errors import (
    PlotUnavailableError,
    SweeperError,
    TooFewTrialsError,
    UnknownPlotKindError,
    did_you_mean,
)
from sweeper.studyfile.names import file_stem, shown

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

KINDS = (
    "history",
    "anytime",
    "importance",
    "lr-curves",
    "learning-curves",
    "families",
    "parallel",
    "slice",
    "contour",
)
FORMATS = ("png", "svg")
MAX_LINES = 2500  # learning curves drawn at most (a random share of each outcome beyond)


def check_kinds(kinds: Sequence[str]) -> list[str]:
    """The kinds asked for, ``all`` expanded; an unknown kind is an error naming the known ones."""
    out: list[str] = []
    for kind in kinds:
        if kind == "all":
            out.extend(k for k in KINDS if k not in out)
        elif kind not in KINDS:
            hint = did_you_mean(kind, (*KINDS, "all"))
            raise UnknownPlotKindError(
                f"unknown plot kind {kind!r}; {hint + ' ' if hint else ''}choose from: "
                f"{', '.join(KINDS)} (or all)"
            )
        elif kind not in out:
            out.append(kind)
    return out


def draw_lr_curves(d: LrCurves, title: str = "") -> Figure:
    fig = figure(10, 5.5)
    ax = fig.add_subplot()
    for c in d.curves:
        style = {"ls": "--", "color": "black", "lw": 1.4} if c.baseline else {"lw": 1.6}
        ax.plot(c.steps, positive_rates(c.rates), label=c.label, **style)
    ax.set_yscale("log")
    log_floor(ax, [c.rates for c in d.curves])
    ax.set_xlabel(f"optimizer step (batch; {d.steps_per_epoch} steps per epoch)")
    ax.set_ylabel("learning rate (log scale)")
    ax.set_xlim(0, max(d.steps_per_epoch * d.epochs - 1, 1))
    ax.grid(True, which="both", alpha=0.3)
    epoch_axis(ax, d.steps_per_epoch, d.epochs)
    ax.set_title(title or "Learning rate of the best trials")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.13), ncol=1, frameon=False)
    return fig


def draw_learning_curves(d: LearningCurves, title: str = "") -> Figure:
    from matplotlib.collections import LineCollection

    fig = figure(10, 5.5)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    n = max(len(d.curves), 1)
    alpha = float(np.clip(60.0 / min(n, MAX_LINES), 0.06, 0.7))
    groups = {
        "complete": ("tab:blue", "complete"),
        "paused": ("tab:olive", "paused (resumable)"),
        "pruned": ("0.6", "pruned"),
        "stalled": ("0.45", "stalled"),
        "diverged": ("tab:red", "diverged"),
        "failed": ("0.3", "failed"),
        "running": ("tab:green", "running"),
    }
    for outcome, (color, label) in groups.items():
        lines = [
            np.column_stack([c.epochs, c.val_accuracy])
            for c in d.curves
            if c.outcome == outcome and not c.baseline
        ]
        if lines:
            a = alpha if outcome in ("complete", "paused", "pruned") else min(1.0, alpha * 2)
            shown = lines
            if n > MAX_LINES:  # the same random share of each outcome, to draw in time
                k = max(1, round(len(lines) * MAX_LINES / n))
                shown = [lines[i] for i in sorted(rng.choice(len(lines), k, replace=False))]
            ax.add_collection(LineCollection(shown, colors=color, alpha=a, lw=0.9))
            drawn = f"{len(shown)} of {len(lines)} drawn" if len(shown) < len(lines) else ""
            ax.plot([], [], color=color, label=f"{label} ({drawn or len(lines)})")
    baselines = [c for c in d.curves if c.baseline]
    for i, c in enumerate(baselines):
        ax.plot(
            c.epochs,
            c.val_accuracy,
            ls="--",
            color="tab:orange",
            lw=1.2,
            marker=".",
            label=f"baselines ({len(baselines)})" if i == 0 else None,
        )
    best = [c for c in d.curves if c.number == d.best_number]
    if best:
        ax.plot(best[0].epochs, best[0].val_accuracy, color="black", lw=2.2, marker="o", ms=3)
        ax.plot([], [], color="black", lw=2.2, label=f"best: trial {best[0].number}")
    if d.curves:
        last = max(int(c.epochs.max()) for c in d.curves)
        ax.set_xlim(-0.2, last + 0.2)
        ax.set_xticks(range(0, last + 1, max(1, math.ceil((last + 1) / 16))))
        ax.set_ylim(0, 1.02)
    ax.set_xlabel("epoch (from 0)")
    ax.set_ylabel("validation accuracy (fraction)")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "Validation accuracy per epoch")
    if ax.get_legend_handles_labels()[1]:  # nothing labelled (no trial has epochs): no legend
        ax.legend(fontsize=8, loc="lower right")
    return fig


def _draw_family(ax: Any, y: int, f: FamilyStats, rng: Any, labelled: set[str]) -> None:
    """One family's row at height ``y``: its values, its best, its baselines; the legend's
    entries drawn once (``labelled``)."""
    if len(f.values):
        ax.boxplot(
            [f.values],
            positions=[y],
            widths=0.55,
            showfliers=False,
            medianprops={"color": "tab:blue"},
            whiskerprops={"color": "0.5"},
            capprops={"color": "0.5"},
            boxprops={"color": "0.5"},
            **horizontal(),
        )
        jitter = rng.uniform(-0.18, 0.18, len(f.values))
        alpha = float(np.clip(30.0 / len(f.values), 0.15, 0.7))
        ax.scatter(f.values, y + jitter, s=8, color="tab:blue", alpha=alpha, lw=0)
    if f.best_value is None:
        ax.annotate(
            "no complete trial",
            (0, y),
            xycoords=("axes fraction", "data"),
            xytext=(6, 0),
            textcoords="offset points",
            fontsize=7,
            va="center",
            color="0.4",
        )
    else:
        lab = "best of family" if "best" not in labelled else None
        labelled.add("best")
        ax.scatter(
            [f.best_value],
            [y],
            marker="*",
            s=160,
            color="gold",
            ec="black",
            zorder=5,
            label=lab,
        )
        ax.annotate(
            f"{f.best_value:.4f} (#{f.best_number})",
            (f.best_value, y),
            xytext=(8, 6),
            textcoords="offset points",
            fontsize=7,
        )
    for _name, value in f.baselines:
        lab = "baseline" if "baseline" not in labelled else None
        labelled.add("baseline")
        ax.scatter(
            [value], [y], marker="D", s=40, color="tab:orange", ec="black", zorder=6, label=lab
        )


def draw_families(d: Sequence[FamilyStats], title: str = "", metric: str = "") -> Figure:
    fig = figure(10, 1.0 + 0.55 * max(len(d), 1))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    rows = list(reversed(d))  # best family at the top
    labelled: set[str] = set()
    for y, f in enumerate(rows):
        _draw_family(ax, y, f, rng, labelled)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(
        [
            f"{f.family}\n{_trials(f.n_trials)}, {f.n_pruned} pruned, {f.n_failed} failed"
            for f in rows
        ],
        fontsize=8,
    )
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(f"final {metric or 'objective value'} of complete trials")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(title or "Schedule families")
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi + 0.12 * (hi - lo))  # room for the best values' labels
    if labelled:
        fig.legend(fontsize=8, loc="outside lower center", ncol=2, frameon=False)
    return fig


def _trials(n: int) -> str:
    return f"{n} trial" if n == 1 else f"{n} trials"


def importance_title(study: str, report: an.ImportanceReport) -> str:
    """``digits: parameter importance at epoch 4, 14 configurations (ped-anova)``."""
    return f"{shown(study)}: parameter {report.heading} ({report.evaluator})"


def draw_importance(report: an.ImportanceReport, title: str = "") -> Figure:
    panels = [report.overall, *report.families]
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig = figure(max(3.4 * ncols, 7.0), 0.9 + 2.4 * nrows)
    for i, imp in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        names = list(imp.values)[::-1]
        values = [imp.values[n] for n in names]
        bars = ax.barh(names, values, height=0.6, color="tab:blue" if i == 0 else "tab:cyan")
        labels = [f"{v:.0%}" if v >= 0.005 else "<1%" for v in values]
        ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
        ax.set_xlim(0, 1.15)
        sampled = f"{imp.n_trials} of {imp.n_available}" if imp.n_trials < imp.n_available else ""
        ax.set_title(f"{imp.scope} ({sampled or imp.n_trials} configurations)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("importance (share of total)", fontsize=8)
    fig.suptitle(title or f"Parameter {report.heading} ({report.evaluator})")
    if report.skipped:
        notes = "; ".join(f"{f}: {why}" for f, why in report.skipped.items())
        width, height = fig.get_size_inches()
        lines = textwrap.wrap(f"not ranked: {notes}", width=int(width * 17))
        extra = 0.13 * len(lines) + 0.15
        fig.set_figheight(height + extra)
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, va="bottom")
        engine: Any = fig.get_layout_engine()
        engine.set(rect=(0, extra / (height + extra), 1, 1 - extra / (height + extra)))
    return fig


def draw_schedules(d: ScheduleCurves, title: str = "") -> Figure:
    fig = figure(10, 5.5)
    ax = fig.add_subplot()
    for label, rates in d.curves:
        ax.plot(d.steps, positive_rates(rates), label=label, lw=1.5)
    ax.set_yscale("log")
    log_floor(ax, [rates for _, rates in d.curves])
    ax.set_xlabel("optimizer step (batch)")
    ax.set_ylabel("learning rate (log scale)")
    ax.set_xlim(0, max(d.n_steps - 1, 1))
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or f"Learning-rate schedules over {d.n_steps} steps")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.12), frameon=False)
    return fig


ANYTIME_COLORS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:cyan")


def draw_anytime(curves: Sequence[AnytimeCurve], title: str = "") -> Figure:
    """The search's best so far as a step line per study, each study's best baseline as a
    dashed level, the baselines' epochs shaded (several studies: a strip each at the bottom),
    and a diamond where the reference configuration completed."""
    from matplotlib.ticker import MaxNLocator

    fig = figure(10, 5.5)
    ax = fig.add_subplot()
    one = len(curves) == 1
    for i, c in enumerate(curves):
        color = ANYTIME_COLORS[i % len(ANYTIME_COLORS)]
        of = "" if one else f", {c.label}"
        final = c.best_after(c.epochs)
        found = "no tuned epoch yet" if final is None else f"{final:.4f} after {c.epochs} epochs"
        ax.plot(
            np.arange(c.epochs + 1),
            np.concatenate([[np.nan], c.best]),
            drawstyle="steps-post",
            color=color,
            lw=2.0,
            label=f"best of the search ({found})" if one else f"{c.label}: {found}",
        )
        if c.best_baseline is not None:
            ax.axhline(
                c.best_baseline,
                ls="--",
                lw=1.2,
                color="tab:orange" if one else color,
                label=f"best baseline{of}: {c.best_baseline:.4f}",
            )
        for k, (first, last) in enumerate(c.baseline_spans()):
            label = f"baseline epochs{of} ({c.baseline_epochs})" if k == 0 else None
            if one:
                ax.axvspan(first - 1, last, color="tab:orange", alpha=0.12, lw=0, label=label)
            else:
                band = (i * 0.025, (i + 1) * 0.025)
                ax.axvspan(first - 1, last, *band, color=color, alpha=0.45, lw=0, label=label)
        if c.reference_epochs is not None and c.reference_value is not None:
            ax.scatter(
                [c.reference_epochs],
                [c.reference_value],
                marker="D",
                s=42,
                color=color,
                ec="black",
                zorder=5,
                label=f"reference completed{of}: {c.reference_value:.4f} at epoch "
                f"{c.reference_epochs}",
            )
    ax.set_xlim(0, max(max(c.epochs for c in curves), 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not one:  # room for the baseline strips under the curves
        low, high = ax.get_ylim()
        ax.set_ylim(low - 0.03 * len(curves) * (high - low), high)
    ax.set_xlabel("epochs trained (every trial's, the baselines' included, in training order)")
    ax.set_ylabel("best validation accuracy so far (fraction)")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "Best validation accuracy against epochs trained")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def save(fig: Figure, path: Path, fmt: str = "png") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt, dpi=DPI)
    close(fig)
    return path


def close(fig: Figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def draw(
    data: study_data.StudyData,
    kind: str,
    *,
    top: int = 5,
    family: str | None = None,
    evaluator: str = "ped-anova",
    importance: an.ImportanceReport | None = None,
    epoch_rows: Sequence[Mapping[str, Any]] | None = None,
    ledger: Sequence[Mapping[str, Any]] | None = None,
) -> Figure:
    """One figure of ``kind`` for the study (``anytime`` from its ``ledger`` rows)."""
    metric = "validation accuracy (fraction)"
    name = shown(data.name)  # a name from another tool may hold control characters
    if kind == "history":
        return draw_history(data, metric)
    if kind == "anytime":
        return draw_anytime([anytime_data(data, ledger or [])], anytime_title([data.name]))
    if kind == "importance":
        report = importance or an.importances(data, evaluator)
        return draw_importance(report, importance_title(name, report))
    if kind == "lr-curves":
        return draw_lr_curves(
            lr_curves_data(data, top), f"Learning rate of the {top} best trials of {name}"
        )
    if kind == "learning-curves":
        rows = epoch_rows if epoch_rows is not None else []
        return draw_learning_curves(
            learning_curves_data(data, rows), f"Validation accuracy per epoch, {name}"
        )
    if kind == "families":
        return draw_families(families_data(data), f"Schedule families of {name}", metric)
    if kind in ("parallel", "slice", "contour"):
        return draw_optuna(data, kind, family, metric)
    raise UnknownPlotKindError(f"unknown plot kind {kind!r}; choose from: {', '.join(KINDS)}")


class PlotFiles(NamedTuple):
    paths: list[Path]  # files written
    skipped: dict[str, str]  # kind -> why it could not be drawn


def write_plots(
    url: str | None,
    study_name: str,
    kinds: Sequence[str],
    out_dir: str | Path = ".",
    fmt: str = "png",
    *,
    top: int = 5,
    family: str | None = None,
    evaluator: str = "ped-anova",
) -> PlotFiles:
    """Draw ``kinds`` of the study into ``out_dir/<study>-<kind>.<fmt>``.

    A kind the study cannot show (too few trials...) is skipped with its reason; the others are
    drawn.
    """
    kinds = check_kinds(kinds)
    if fmt not in FORMATS:
        raise SweeperError(f"unknown image format {fmt!r}; choose from: {', '.join(FORMATS)}")
    data = an.load(url, study_name)
    rows = an.read_epochs(url, study_name) if "learning-curves" in kinds else None
    ledger = read_ledger(url, study_name) if "anytime" in kinds else None
    result = PlotFiles([], {})
    for kind in kinds:
        try:
            fig = draw(
                data,
                kind,
                top=top,
                family=family,
                evaluator=evaluator,
                epoch_rows=rows,
                ledger=ledger,
            )
        except (PlotUnavailableError, TooFewTrialsError) as exc:
            log.info("%s plot skipped: %s", kind, exc)
            result.skipped[kind] = str(exc)
            continue
        path = save(fig, Path(out_dir) / f"{file_stem(study_name)}-{kind}.{fmt}", fmt)
        log.info("wrote %s", path)
        result.paths.append(path)
    return result


def anytime_title(labels: Sequence[str]) -> str:
    return f"Best validation accuracy against epochs trained, {' vs '.join(map(shown, labels))}"


def write_anytime(sources: Sequence[Source], out_dir: str | Path = ".", fmt: str = "png") -> Path:
    """Draw the anytime curves of several studies (``(url, name)`` each, from one store or
    several) on one figure: ``out_dir/<A>-vs-<B>-anytime.<fmt>``.

    Raises :class:`PlotUnavailableError` when one of them has no trained epoch yet.
    """
    if fmt not in FORMATS:
        raise SweeperError(f"unknown image format {fmt!r}; choose from: {', '.join(FORMATS)}")
    curves = load_curves(sources)
    names = "-vs-".join(file_stem(name) for _, name in sources)
    fig = draw_anytime(curves, anytime_title([c.label for c in curves]))
    path = save(fig, Path(out_dir) / f"{names}-anytime.{fmt}", fmt)
    log.info("wrote %s", path)
    return path
