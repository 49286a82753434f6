"""Figures of a study: plot data (NamedTuples, computed and tested apart) and their drawing.

Our own kinds (``lr-curves``, ``learning-curves``, ``families``, ``importance``, and the curves of
``sweeper schedules``) are computed by the ``*_data`` functions and drawn by the ``draw_*``
functions. ``history``, ``parallel``, ``slice`` and ``contour`` are drawn by
``optuna.visualization.matplotlib`` on an in-memory copy of the study's trials, then retouched
(size, labels, units, colours, log-axis ticks); ``history`` adds the pruned trials (at their last
reported value, from ``pruned_points``). Parallel coordinates, slices and contours show one
schedule family at a time: its parameters exist only inside it.

Matplotlib is imported inside the drawing functions, with the Agg backend; never Keras.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sweeper import analysis as an
from sweeper import optuna_ids
from sweeper.errors import SweeperError
from sweeper.names import file_stem
from sweeper.schedules import FAMILIES, from_dict, from_dimensions

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.figure import Figure
    from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)

KINDS = (
    "history",
    "importance",
    "lr-curves",
    "learning-curves",
    "families",
    "parallel",
    "slice",
    "contour",
)
FORMATS = ("png", "svg")
MAX_CURVE_POINTS = 4000
MAX_LINES = 2500  # learning curves drawn at most (a random share of each outcome beyond)
MIN_SCOPE_TRIALS = 3  # complete trials a family needs for parallel / slice / contour
DPI = 110
LOG_TICKS = 6  # most labelled major ticks on a log axis of parallel / slice / contour
VISIBLE_FROM = 0.45  # share of the parallel plot's colour map cut off at its light end
LUMA = np.array([0.299, 0.587, 0.114])  # Rec. 601 weights: a colour's lightness, 0 to 1


class UnknownPlotKindError(SweeperError):
    exit_code = 2


class PlotUnavailableError(SweeperError):
    """The study lacks what a plot needs (complete trials, a family with two parameters...)."""


def check_kinds(kinds: Sequence[str]) -> list[str]:
    """The kinds asked for, ``all`` expanded; an unknown kind is an error naming the known ones."""
    out: list[str] = []
    for kind in kinds:
        if kind == "all":
            out.extend(k for k in KINDS if k not in out)
        elif kind not in KINDS:
            raise UnknownPlotKindError(
                f"unknown plot kind {kind!r}; choose from: {', '.join(KINDS)} (or all)"
            )
        elif kind not in out:
            out.append(kind)
    return out


# -- plot data ------------------------------------------------------------------------------------
class LrCurve(NamedTuple):
    number: int
    label: str
    value: float | None
    baseline: bool
    steps: np.ndarray  # optimizer steps (0-based)
    rates: np.ndarray  # learning rate at each step


class LrCurves(NamedTuple):
    steps_per_epoch: int
    epochs: int
    curves: list[LrCurve]


def _sampled_steps(n_steps: int) -> np.ndarray:
    if n_steps <= MAX_CURVE_POINTS:
        return np.arange(n_steps)
    return np.unique(np.linspace(0, n_steps - 1, MAX_CURVE_POINTS).astype(np.int64))


def _label(trial: FrozenTrial) -> str:
    value = "" if trial.value is None else f" {trial.value:.4f}"
    base = an.baseline_of(trial)
    return f"#{trial.number}{value} " + (f"[baseline] {base}" if base else an.describe(trial))


def lr_curves_data(data: an.StudyData, top: int = 5) -> LrCurves:
    """LR over the run of the ``top`` best trials, plus the best baseline when not among them."""
    best = an.best_trials(data, top)
    chosen = list(best.top)
    if best.best_baseline is not None and best.best_baseline not in chosen:
        chosen.append(best.best_baseline)
    chosen = [t for t in chosen if t.user_attrs.get("schedule")]
    if not chosen:
        raise PlotUnavailableError(
            f"lr-curves: study {data.name!r} has no complete trial with a stored schedule"
        )
    spe = data.steps_per_epoch or int(chosen[0].user_attrs.get("steps_per_epoch") or 1)
    epochs = data.epochs or 1
    steps = _sampled_steps(spe * epochs)
    curves = [
        LrCurve(
            t.number,
            _label(t),
            t.value,
            an.baseline_of(t) is not None,
            steps,
            from_dict(t.user_attrs["schedule"]).rates(steps),
        )
        for t in chosen
    ]
    return LrCurves(spe, epochs, curves)


class LearningCurve(NamedTuple):
    number: int
    outcome: str  # complete | pruned | diverged | failed | running
    baseline: bool
    epochs: np.ndarray  # 0-based epoch numbers, as in sweeper_epochs and the CSV export
    val_accuracy: np.ndarray


class LearningCurves(NamedTuple):
    curves: list[LearningCurve]
    best_number: int | None


def learning_curves_data(
    data: an.StudyData, epoch_rows: Sequence[Mapping[str, Any]]
) -> LearningCurves:
    """Validation accuracy per epoch of every trial (from ``sweeper_epochs``).

    Trials without epoch rows fall back on their intermediate values (val_accuracy by epoch).
    Epochs count from 0, like the rows, the intermediate values' steps and the CSV export.
    """
    by_trial: dict[int, list[tuple[int, float]]] = {}
    for row in epoch_rows:
        if row.get("val_accuracy") is not None:
            by_trial.setdefault(int(row["trial_id"]), []).append(
                (int(row["epoch"]), float(row["val_accuracy"]))
            )
    curves = []
    for t in data.trials:
        points = by_trial.get(optuna_ids.trial_id(t)) or sorted(t.intermediate_values.items())
        points = [(e, v) for e, v in points if v is not None and math.isfinite(v)]
        if not points:
            continue
        epochs, values = zip(*sorted(points), strict=True)
        curves.append(
            LearningCurve(
                t.number,
                an.outcome_of(t),
                an.baseline_of(t) is not None,
                np.asarray(epochs, dtype=np.int64),
                np.asarray(values, dtype=np.float64),
            )
        )
    ranked = data.ranked()
    return LearningCurves(curves, ranked[0].number if ranked else None)


class PrunedPoint(NamedTuple):
    number: int
    outcome: str  # pruned | diverged
    epoch: int | None  # step of the value (0-based epoch); None: the trial's own value
    value: float | None  # last finite reported value; None: the trial reported none


def pruned_points(data: an.StudyData) -> list[PrunedPoint]:
    """Pruned and diverged trials at their last finite reported value, in number order.

    Falls back on the trial's own value (Optuna stores the last intermediate value there).
    """
    from optuna.trial import TrialState

    out = []
    for t in data.trials:
        if t.state != TrialState.PRUNED:
            continue
        finite = [
            (step, float(v))
            for step, v in sorted(t.intermediate_values.items())
            if v is not None and math.isfinite(v)
        ]
        own = t.value if t.value is not None and math.isfinite(t.value) else None
        epoch, value = finite[-1] if finite else (None, own)
        out.append(PrunedPoint(t.number, an.outcome_of(t), epoch, value))
    return out


class FamilyStats(NamedTuple):
    family: str
    values: np.ndarray  # final values of complete tuned trials
    n_trials: int
    n_pruned: int  # diverged included
    n_failed: int
    best_value: float | None
    best_number: int | None
    baselines: list[tuple[str, float]]  # complete baseline trials: name, value


def families_data(data: an.StudyData) -> list[FamilyStats]:
    """Per schedule family: the distribution of final values, its best, its baselines.

    Families are ordered best first; families without a complete trial come last.
    """
    groups: dict[str, list[FrozenTrial]] = {}
    for t in data.trials:
        groups.setdefault(an.family_of(t), []).append(t)
    complete = {t.number for t in data.complete()}
    sign = 1.0 if data.maximize else -1.0
    out = []
    for family, trials in groups.items():
        done = [t for t in trials if t.number in complete]
        tuned = [float(t.value or 0.0) for t in done if not an.baseline_of(t)]
        best = max(done, key=lambda t: sign * float(t.value or 0.0), default=None)
        outcomes = [an.outcome_of(t) for t in trials]
        out.append(
            FamilyStats(
                family,
                np.asarray(tuned, dtype=np.float64),
                len(trials),
                sum(o in ("pruned", "diverged") for o in outcomes),
                outcomes.count("failed"),
                None if best is None else float(best.value or 0.0),
                None if best is None else best.number,
                [
                    (str(an.baseline_of(t)), float(t.value or 0.0))
                    for t in done
                    if an.baseline_of(t)
                ],
            )
        )
    out.sort(key=lambda f: (f.best_value is None, -sign * (f.best_value or 0.0), f.family))
    return out


class FamilyScope(NamedTuple):
    family: str
    trials: list[FrozenTrial]  # complete trials of the family
    params: list[str]  # its searched parameters present in every one of them


def family_scope(
    data: an.StudyData, family: str | None = None, *, min_params: int = 2, numeric: bool = False
) -> FamilyScope:
    """The trials and parameters of ``family`` (default: the best family with enough params)."""
    complete = data.ranked()
    by_family: dict[str, list[FrozenTrial]] = {}
    for t in complete:
        by_family.setdefault(an.family_of(t), []).append(t)

    def params_of(trials: list[FrozenTrial]) -> list[str]:
        tuned = [t for t in trials if not an.baseline_of(t)] or trials
        common = set.intersection(*(set(t.params) for t in tuned)) - {"schedule"}
        if numeric:
            common = {p for p in common if not isinstance(tuned[0].params[p], (bool, str))}
        return sorted(common, key=lambda p: (p != "initial_lr", p))

    if family is not None:
        if family not in by_family:
            raise PlotUnavailableError(
                f"study {data.name!r} has no complete trial of family {family!r}; it has: "
                f"{', '.join(by_family) or 'none'}"
            )
        order = [family]
    else:
        order = list(by_family)  # families by their best trial, best first
    for name in order:
        params = params_of(by_family[name])
        enough = sum(set(params) <= set(t.params) for t in by_family[name]) >= MIN_SCOPE_TRIALS
        if len(params) >= min_params and enough:
            trials = [t for t in by_family[name] if set(params) <= set(t.params)]
            return FamilyScope(name, sorted(trials, key=lambda t: t.number), params)
    which = f"family {family!r}" if family else "no family"
    raise PlotUnavailableError(
        f"{which} of study {data.name!r} has {MIN_SCOPE_TRIALS} complete trials with "
        f"{min_params} or more searched parameters; run more trials or choose one with --family"
    )


class ScheduleCurves(NamedTuple):
    n_steps: int
    steps: np.ndarray
    curves: list[tuple[str, np.ndarray]]  # description, rates


def default_schedule(family: str, n_steps: int, initial_lr: float = 0.1) -> dict[str, Any]:
    """Parameters that show ``family``'s shape over ``n_steps`` steps (a dict for ``from_dict``)."""
    n = max(int(n_steps), 10)
    lr = float(initial_lr)
    tenth = max(n / 10, 1.0)
    defaults: dict[str, dict[str, Any]] = {
        "constant": {},
        "time": {"decay": 10.0 / n},
        "step": {"drop": 0.5, "epochs_drop": 2.0, "steps_per_epoch": max(n // 10, 1)},
        "exponential": {"decay_steps": tenth, "decay_rate": 0.7},
        "piecewise": {
            "boundaries": [round(n * f) for f in (0.3, 0.6, 0.85)],
            "values": [float(f"{lr * 0.3**i:.6g}") for i in range(4)],
        },
        "polynomial": {"decay_steps": float(n), "end_lr": lr * 0.01, "power": 2.0},
        "inverse_time": {"decay_steps": tenth, "decay_rate": 1.0, "staircase": True},
        "cosine": {"decay_steps": n * 0.95, "alpha": 0.0, "warmup_steps": n * 0.05},
        "cosine_restarts": {"first_decay_steps": n / 7, "t_mul": 2.0, "m_mul": 0.8},
        # the later families end at the last step drawn, as in a run
        "linear": {"decay_steps": float(n - 1), "end_lr": 0.0, "warmup_steps": n * 0.05},
        "wsd": {
            "decay_steps": float(n - 1),
            "decay_start": (n - 1) * 0.8,
            "warmup_steps": n * 0.05,
            "end_lr": 0.0,
            "cooldown": "1-sqrt",
        },
        "one_cycle": {"total_steps": float(n), "pct_start": 0.3},
        "rex": {"decay_steps": float(n - 1)},
        "shape": {
            "decay_steps": float(n - 1),
            "warmup_fraction": 0.05,
            "stable_fraction": 0.3,
            "decay_exponent": 1.5,
            "final_lr_ratio": 0.01,
        },
    }
    return {"family": family, "initial_lr": lr, **defaults[family]}


SCHEDULE_EPOCHS = 10  # `sweeper schedules` draws its steps as a run of this many epochs


def schedule_curves_data(
    families: Sequence[str], n_steps: int = 1000, settings: Mapping[str, Any] | None = None
) -> ScheduleCurves:
    """Curves of ``families`` with their default parameters, ``settings`` applied over them.

    A setting applies to every family that takes it (``initial_lr`` to all); one that no chosen
    family takes is an error.
    """
    settings = dict(settings or {})
    families = list(families) or list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise SweeperError(
            f"unknown schedule family {unknown[0]!r}; choose from: {', '.join(FAMILIES)}"
        )
    from sweeper.config import ALL_FAMILIES, DIMENSIONS

    takes = {f: {x.name for x in dataclasses.fields(FAMILIES[f])} for f in families}
    # the study file's names (decay_rate, drop_every in epochs, ...), as in [space]
    # (the optimizer's dimensions, which every family has, are no schedule parameter)
    schedule_dims = {
        n: d for n, d in DIMENSIONS.items() if d.families != ALL_FAMILIES or n == "initial_lr"
    }
    uses = {f: {n for n, d in schedule_dims.items() if f in d.families} for f in families}
    for name in settings:
        if not any(name in takes[f] or name in uses[f] for f in families):
            raise SweeperError(
                f"no chosen family takes {name!r}; they take (study-file names): "
                + "; ".join(f"{f}: {', '.join(sorted(uses[f]))}" for f in families)
            )
    steps = _sampled_steps(n_steps)
    spe = max(int(n_steps) // SCHEDULE_EPOCHS, 1)  # the drawn steps as epochs of a run
    curves = []
    for f in families:
        lr = float(settings.get("initial_lr", 0.1))
        dims = {k: v for k, v in settings.items() if k in uses[f] and k != "initial_lr"}
        if dims:  # as a study builds it from its dimensions
            spec = from_dimensions(
                f, {"initial_lr": lr, **dims}, steps_per_epoch=spe, epochs=SCHEDULE_EPOCHS
            ).to_dict()
        else:
            spec = default_schedule(f, n_steps, lr)
        spec.update({k: v for k, v in settings.items() if k in takes[f] and k not in dims})
        schedule = from_dict(spec)
        curves.append((schedule.describe(), schedule.rates(steps)))
    return ScheduleCurves(n_steps, steps, curves)


# -- drawing --------------------------------------------------------------------------------------
def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _positive(rates: np.ndarray) -> np.ndarray:
    """Rates for a log axis: zeros (warm-up start, cosine end) left out of the line."""
    return np.where(rates > 0, rates, np.nan)


def _log_floor(ax: Any, curves: Sequence[np.ndarray], decades: float = 4.0) -> None:
    """Keep the log axis to ``decades`` below the highest rate (cosine ends dive towards 0)."""
    rates = np.concatenate([np.asarray(c, dtype=np.float64).ravel() for c in curves])
    positive = rates[rates > 0]
    if positive.size:
        top = float(positive.max())
        low = max(float(positive.min()), top * 10**-decades)
        ax.set_ylim(low / 1.5, top * 1.5)


def _epoch_axis(ax: Any, steps_per_epoch: int, epochs: int) -> None:
    sec = ax.secondary_xaxis(
        "top", functions=(lambda s: s / steps_per_epoch, lambda e: e * steps_per_epoch)
    )
    sec.set_xlabel("epoch")
    if epochs <= 30:
        for e in range(1, epochs):
            ax.axvline(e * steps_per_epoch, color="0.85", lw=0.6, zorder=0)


def draw_lr_curves(d: LrCurves, title: str = "") -> Figure:
    fig = _figure(10, 5.5)
    ax = fig.add_subplot()
    for c in d.curves:
        style = {"ls": "--", "color": "black", "lw": 1.4} if c.baseline else {"lw": 1.6}
        ax.plot(c.steps, _positive(c.rates), label=c.label, **style)
    ax.set_yscale("log")
    _log_floor(ax, [c.rates for c in d.curves])
    ax.set_xlabel(f"optimizer step (batch; {d.steps_per_epoch} steps per epoch)")
    ax.set_ylabel("learning rate (log scale)")
    ax.set_xlim(0, max(d.steps_per_epoch * d.epochs - 1, 1))
    ax.grid(True, which="both", alpha=0.3)
    _epoch_axis(ax, d.steps_per_epoch, d.epochs)
    ax.set_title(title or "Learning rate of the best trials")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.13), ncol=1, frameon=False)
    return fig


def draw_learning_curves(d: LearningCurves, title: str = "") -> Figure:
    from matplotlib.collections import LineCollection

    fig = _figure(10, 5.5)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    n = max(len(d.curves), 1)
    alpha = float(np.clip(60.0 / min(n, MAX_LINES), 0.06, 0.7))
    groups = {
        "complete": ("tab:blue", "complete"),
        "pruned": ("0.6", "pruned"),
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
            a = alpha if outcome in ("complete", "pruned") else min(1.0, alpha * 2)
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
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _horizontal() -> dict[str, Any]:
    """Boxplot keyword for horizontal boxes (``vert`` is deprecated from Matplotlib 3.10)."""
    import matplotlib

    major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def draw_families(d: Sequence[FamilyStats], title: str = "", metric: str = "") -> Figure:
    fig = _figure(10, 1.0 + 0.55 * max(len(d), 1))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    rows = list(reversed(d))  # best family at the top
    labelled: set[str] = set()
    for y, f in enumerate(rows):
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
                **_horizontal(),
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


def draw_importance(report: an.ImportanceReport, title: str = "") -> Figure:
    panels = [report.overall, *report.families]
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig = _figure(max(3.4 * ncols, 7.0), 0.9 + 2.4 * nrows)
    for i, imp in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        names = list(imp.values)[::-1]
        values = [imp.values[n] for n in names]
        bars = ax.barh(names, values, height=0.6, color="tab:blue" if i == 0 else "tab:cyan")
        labels = [f"{v:.0%}" if v >= 0.005 else "<1%" for v in values]
        ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
        ax.set_xlim(0, 1.15)
        sampled = f"{imp.n_trials} of {imp.n_available}" if imp.n_trials < imp.n_available else ""
        ax.set_title(f"{imp.scope} ({sampled or imp.n_trials} trials)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("importance (share of total)", fontsize=8)
    fig.suptitle(title or f"Parameter importance ({report.evaluator})")
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
    fig = _figure(10, 5.5)
    ax = fig.add_subplot()
    for label, rates in d.curves:
        ax.plot(d.steps, _positive(rates), label=label, lw=1.5)
    ax.set_yscale("log")
    _log_floor(ax, [rates for _, rates in d.curves])
    ax.set_xlabel("optimizer step (batch)")
    ax.set_ylabel("learning rate (log scale)")
    ax.set_xlim(0, max(d.n_steps - 1, 1))
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or f"Learning-rate schedules over {d.n_steps} steps")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.12), frameon=False)
    return fig


@contextmanager
def _optuna_style(width: float, height: float) -> Iterator[None]:
    """Optuna's matplotlib plots restyle matplotlib globally: keep that inside this block."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.exceptions import ExperimentalWarning

    rc = {"figure.figsize": (width, height), "figure.dpi": DPI}
    quiet = logging.getLogger("optuna.visualization")  # "too few values to draw" notes
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with matplotlib.rc_context(rc), warnings.catch_warnings():  # type: ignore[arg-type]
            warnings.simplefilter("ignore", ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)  # singular limits of one-value axes
            yield
    finally:
        quiet.setLevel(level)


def _axes_figure(axes: Any) -> Figure:
    first = axes.flat[0] if hasattr(axes, "flat") else axes
    fig: Figure = first.figure
    return fig


def draw_history(data: an.StudyData, metric: str = "") -> Figure:
    from optuna.visualization.matplotlib import plot_optimization_history

    complete = data.complete()
    if not complete:
        raise PlotUnavailableError(f"history: study {data.name!r} has no complete trial")
    target = metric or "objective value"
    with _optuna_style(10, 5):
        study = data.as_study()  # all trials: Optuna indexes its values by trial number
        ax = plot_optimization_history(study, target_name="complete trial")
        few = len(data.trials) < 200
        size = 36 if few else 8
        for coll in ax.collections:
            coll.set_sizes([size])  # type: ignore[attr-defined]
            coll.set_alpha(1.0 if few else 0.4)
        pruned = pruned_points(data)
        styles = {
            "pruned": ("v", "0.45", "pruned trial, last reported value"),
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
            f"Optimization history of {data.name} ({len(complete)} complete{n_pruned} trials)"
        )
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig = _axes_figure(ax)
        fig.tight_layout()
        return fig


def draw_optuna(
    data: an.StudyData, kind: str, family: str | None = None, metric: str = ""
) -> Figure:
    """``parallel``, ``slice`` or ``contour`` of one family's complete trials."""
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
    with _optuna_style(*size[kind]):
        axes: Any
        if kind == "parallel":
            axes = ovm.plot_parallel_coordinate(study, params=scope.params, target_name="objective")
        elif kind == "slice":
            axes = ovm.plot_slice(study, params=scope.params, target_name=target)
        else:
            axes = ovm.plot_contour(study, params=scope.params, target_name=target)
        fig = _axes_figure(axes)
        many = len(scope.trials) > 150
        for ax in np.asarray(axes, dtype=object).ravel():
            for coll in ax.collections:
                if isinstance(coll, PathCollection):
                    coll.set_linewidth(0.3)
                    if many:
                        coll.set_sizes([8])
                elif isinstance(coll, LineCollection) and coll.get_array() is not None:
                    _visible_lines(coll, many)  # the parallel plot's trials
                elif getattr(coll, "filled", True) is False:  # contour lines, not their fill
                    coll.set_alpha(0.35)
        title = (
            f"{kind.capitalize()} of schedule family {scope.family!r}\n"
            f"{len(scope.trials)} complete trials of {data.name}"
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
        _readable_log_axes(fig)
        return fig


def _luma(rgba: Any) -> np.ndarray:
    """Lightness (0 black to 1 white) of colours, each laid over white at its alpha."""
    c = np.atleast_2d(np.asarray(rgba, dtype=np.float64))
    alpha = c[:, 3] if c.shape[1] == 4 else np.ones(len(c))
    return np.asarray(1.0 - alpha * (1.0 - c[:, :3] @ LUMA))


def _visible_lines(lines: Any, many: bool) -> None:
    """The parallel plot's trial lines, all visible on white: its light end cut off the map.

    Optuna colours them with ``Blues`` (``Blues_r`` when minimizing): better is darker, and the
    worst trial is near-white. The same map from ``VISIBLE_FROM`` of the way on keeps that order
    (and the colour bar, which follows the lines); the best trials are drawn last, on top.
    """
    from matplotlib.colors import ListedColormap

    cmap = lines.get_cmap()
    light_low = _luma(cmap(0.0))[0] > _luma(cmap(1.0))[0]
    share = (
        np.linspace(VISIBLE_FROM, 1.0, 256)
        if light_low
        else np.linspace(0.0, 1 - VISIBLE_FROM, 256)
    )
    values = np.asarray(lines.get_array(), dtype=np.float64)
    order = np.argsort(values if light_low else -values, kind="stable")
    segments = lines.get_segments()
    lines.set_segments([segments[i] for i in order])
    lines.set_array(values[order])
    lines.set_cmap(ListedColormap(cmap(share), name=f"{cmap.name}_visible"))
    lines.set_linewidth(0.6 if many else 1.3)
    lines.set_alpha(0.85 if many else 1.0)


def _log_ticks(low: float, high: float, most: int) -> list[float]:
    """At most ``most`` major ticks of a log axis from ``low`` to ``high``, at round values.

    1-2-5 in each decade if they fit, else 1-3, else powers of ten (every k-th, the most of
    them); a range too narrow for two of them gets evenly spaced round values.
    """
    from matplotlib.ticker import MaxNLocator

    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))

    def ticks(subs: Sequence[float], stride: int = 1, offset: int = 0) -> list[float]:
        exponents = [e for e in range(first, last + 1) if (e - offset) % stride == 0]
        found = (s * 10.0**e for e in exponents for s in subs)
        return [float(f"{t:.12g}") for t in found if low <= t <= high]

    if len(ticks((1.0, 2.0, 5.0))) < 2:
        linear = MaxNLocator(nbins=max(most - 1, 1), steps=[1, 2, 2.5, 5, 10])
        return [float(t) for t in linear.tick_values(low, high) if low <= t <= high]
    for subs in ((1.0, 2.0, 5.0), (1.0, 3.0)):
        if len(ticks(subs)) <= most:
            return ticks(subs)
    stride = 1
    while len(ticks((1.0,), stride)) > most:
        stride += 1
    # the powers of ten every ``stride`` decades: from the one that keeps the most in range
    return max((ticks((1.0,), stride, k) for k in range(stride)), key=len)


def _log_axes(fig: Figure) -> Iterator[Any]:
    for ax in fig.axes:
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            low, high = sorted(axis.get_view_interval())
            if scale == "log" and 0 < low < high:
                yield axis


def _readable_log_axes(fig: Figure) -> None:
    """Log axes of ``fig`` with few, round, unrotated major labels that never overlap.

    Optuna's slices and contours keep Matplotlib's default log ticks, which label minor ticks
    too on a range of a decade or two (``2x10^-2 3x10^-2 ...``): they run into each other on
    small subplots. Here: at most ``LOG_TICKS`` labels (fewer on a short axis), plain numbers,
    unlabelled minor ticks; then every other label goes while two of them still touch.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    axes = list(_log_axes(fig))
    if not axes:
        return
    for axis in axes:
        low, high = sorted(axis.get_view_interval())
        box = axis.axes.get_position()
        width, height = fig.get_size_inches()
        inches = box.width * width if axis.axis_name == "x" else box.height * height
        per_label = 0.5 if axis.axis_name == "x" else 0.3  # inches
        most = int(np.clip(inches // per_label, 2, LOG_TICKS))
        axis.set_major_locator(FixedLocator(_log_ticks(low, high, most)))
        axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
        axis.set_minor_formatter(NullFormatter())
    for _ in range(4):  # labels' sizes are known once drawn
        fig.draw_without_rendering()
        crowded = False
        for axis in axes:
            boxes = [label.get_window_extent().padded(2) for label in shown_tick_labels(axis)]
            if any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2)):
                crowded = True
                axis.set_major_locator(FixedLocator(list(axis.get_majorticklocs())[::2]))
        if not crowded:
            return


def shown_tick_labels(axis: Any) -> list[Any]:
    """The major tick labels of ``axis`` drawn with a text, in tick order."""
    low, high = sorted(axis.get_view_interval())
    return [
        label
        for tick in axis.get_major_ticks()
        if low <= tick.get_loc() <= high
        for label in (tick.label1, tick.label2)
        if label.get_visible() and label.get_text()
    ]


def save(fig: Figure, path: Path, fmt: str = "png") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt, dpi=DPI)
    close(fig)
    return path


def close(fig: Figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def draw(
    data: an.StudyData,
    kind: str,
    *,
    top: int = 5,
    family: str | None = None,
    evaluator: str = "ped-anova",
    importance: an.ImportanceReport | None = None,
    epoch_rows: Sequence[Mapping[str, Any]] | None = None,
) -> Figure:
    """One figure of ``kind`` for the study."""
    metric = "validation accuracy (fraction)"
    if kind == "history":
        return draw_history(data, metric)
    if kind == "importance":
        report = importance or an.importances(data, evaluator)
        return draw_importance(report, f"Parameter importance in {data.name} ({report.evaluator})")
    if kind == "lr-curves":
        return draw_lr_curves(
            lr_curves_data(data, top), f"Learning rate of the {top} best trials of {data.name}"
        )
    if kind == "learning-curves":
        rows = epoch_rows if epoch_rows is not None else []
        return draw_learning_curves(
            learning_curves_data(data, rows), f"Validation accuracy per epoch, {data.name}"
        )
    if kind == "families":
        return draw_families(families_data(data), f"Schedule families of {data.name}", metric)
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
    result = PlotFiles([], {})
    for kind in kinds:
        try:
            fig = draw(data, kind, top=top, family=family, evaluator=evaluator, epoch_rows=rows)
        except (PlotUnavailableError, an.TooFewTrialsError) as exc:
            log.info("%s plot skipped: %s", kind, exc)
            result.skipped[kind] = str(exc)
            continue
        path = save(fig, Path(out_dir) / f"{file_stem(study_name)}-{kind}.{fmt}", fmt)
        log.info("wrote %s", path)
        result.paths.append(path)
    return result
