"""Plot data of a study: NamedTuples computed from its trials, apart from their drawing
(:mod:`sweeper.analysis.plots`), so that they are tested without Matplotlib.

``lr_curves_data``, ``learning_curves_data``, ``families_data`` and ``schedule_curves_data`` give
what our own kinds draw; ``pruned_points`` the pruned trials ``history`` adds; ``family_scope``
the family (and its parameters) that parallel, slice and contour plots show.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sweeper.analysis import queries as an
from sweeper.analysis import study_data
from sweeper.errors import PlotUnavailableError, SweeperError, did_you_mean
from sweeper.search.trial_record import SCHEDULE_ATTR, STEPS_PER_EPOCH_ATTR
from sweeper.store import optuna_ids
from sweeper.training.schedules import FAMILIES, from_dict, from_dimensions

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


MAX_CURVE_POINTS = 4000


MIN_SCOPE_TRIALS = 3  # complete trials a family needs for parallel / slice / contour


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


def lr_curves_data(data: study_data.StudyData, top: int = 5) -> LrCurves:
    """LR over the run of the ``top`` best trials, plus the best baseline when not among them."""
    best = an.best_trials(data, top)
    chosen = list(best.top)
    if best.best_baseline is not None and best.best_baseline not in chosen:
        chosen.append(best.best_baseline)
    chosen = [t for t in chosen if t.user_attrs.get(SCHEDULE_ATTR)]
    if not chosen:
        raise PlotUnavailableError(
            f"lr-curves: study {data.name!r} has no complete trial with a stored schedule"
        )
    spe = data.steps_per_epoch or int(chosen[0].user_attrs.get(STEPS_PER_EPOCH_ATTR) or 1)
    epochs = data.epochs or 1
    steps = _sampled_steps(spe * epochs)
    curves = [
        LrCurve(
            t.number,
            _label(t),
            t.value,
            an.baseline_of(t) is not None,
            steps,
            from_dict(t.user_attrs[SCHEDULE_ATTR]).rates(steps),
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
    data: study_data.StudyData, epoch_rows: Sequence[Mapping[str, Any]]
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


def pruned_points(data: study_data.StudyData) -> list[PrunedPoint]:
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


def families_data(data: study_data.StudyData) -> list[FamilyStats]:
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
                sum(o in ("paused", "pruned", "stalled", "diverged") for o in outcomes),
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
    data: study_data.StudyData,
    family: str | None = None,
    *,
    min_params: int = 2,
    numeric: bool = False,
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
    """Parameters that show ``family``'s shape over ``n_steps`` steps (a dict for ``from_dict``):
    the family's own ``plot_default``."""
    n = max(int(n_steps), 10)
    lr = float(initial_lr)
    return {"family": family, "initial_lr": lr, **FAMILIES[family].plot_default(n, lr)}


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
        hint = did_you_mean(unknown[0], FAMILIES)
        raise SweeperError(
            f"unknown schedule family {unknown[0]!r}; {hint + ' ' if hint else ''}choose from: "
            f"{', '.join(FAMILIES)}"
        )
    takes = {f: {x.name for x in dataclasses.fields(FAMILIES[f])} for f in families}
    # the study file's names (decay_rate, drop_every in epochs, ...), as in [space]: the
    # dimensions each family declares (the optimizer's, which every family has, are no
    # schedule parameter)
    uses = {f: set(FAMILIES[f].dimensions) for f in families}
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
