"""Read-only analysis of a store: the state of its studies, their trials, best trials, importance.

Nothing here writes to the store: a SQLite file that does not exist is reported, never created,
and Optuna's tables are read with plain SQL through SQLAlchemy. :func:`status` runs a few aggregate
queries over every study; :func:`load` reads one study's trials in one bulk query per table and
builds Optuna ``FrozenTrial`` objects from the rows (Optuna's storage builds one ORM object per
row, which takes seconds for ten thousand trials). Optuna's own functions (importance, plots) then
run on a read-only study over the trials read (:class:`TrialsStorage`).

The store is opened and Optuna's tables read in :mod:`sweeper.analysis.read_store`, the status computed in
:mod:`sweeper.analysis.store_status`, and a study's trials held in :mod:`sweeper.analysis.study_data`; this module
loads one study, describes its trials in words and ranks parameter importance.

Never imports Keras or TensorFlow.
"""

from __future__ import annotations

import json
import logging
import math
import random
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from optuna.trial import TrialState

from sweeper.analysis import display
from sweeper.analysis.read_store import (
    DIRECTIONS,
    STUDY_ATTRS,
    find_study_id,
    open_store,
    read_trials,
    reading,
)
from sweeper.analysis.study_data import StudyData, copy_study
from sweeper.errors import SweeperError, TooFewTrialsError
from sweeper.search import space as space_mod
from sweeper.search.configurations import ConfigState, Configuration, configurations
from sweeper.search.outcomes import count_states, tuned_of
from sweeper.search.outcomes import describe as describe_trial
from sweeper.search.trial_record import BASELINE_ATTR, OUTCOME_ATTR, SCHEDULE_ATTR
from sweeper.store import optuna_ids
from sweeper.store.tables import EpochRow
from sweeper.studyfile.config import DEFAULT_STUDY

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from sweeper.training.handover import Tuned

log = logging.getLogger(__name__)

EVALUATORS = ("ped-anova", "fanova", "mean-decrease-impurity")
MIN_IMPORTANCE_TRIALS = 4  # complete tuned trials needed to rank parameters
# At most this many trials per importance evaluation: fANOVA (Optuna's, in pure Python) takes
# about a second per scope for 100 trials and 32 trees, and grows faster than linearly.
IMPORTANCE_SAMPLE = {"ped-anova": 5000, "fanova": 100, "mean-decrease-impurity": 2000}
FANOVA_TREES = 32


def load(url: str | None, name: str) -> StudyData:
    """Read study ``name`` from the store at ``url``."""
    store = open_store(url)
    with reading(store) as conn:
        sid = find_study_id(conn, store, name)
        direction = conn.scalar(
            sa.select(DIRECTIONS.c.direction).where(
                DIRECTIONS.c.study_id == sid, DIRECTIONS.c.objective == 0
            )
        )
        attrs = {
            k: json.loads(v)
            for k, v in conn.execute(
                sa.select(STUDY_ATTRS.c.key, STUDY_ATTRS.c.value_json).where(
                    STUDY_ATTRS.c.study_id == sid
                )
            )
        }
        trials = read_trials(conn, sid)
    log.info("read %d trials of study %s from %s", len(trials), name, store.masked_url)
    return StudyData(
        name=name,
        storage=store.masked_url,
        direction="minimize" if str(direction) == "MINIMIZE" else "maximize",
        user_attrs=attrs,
        trials=trials,
    )


def read_epochs(url: str | None, name: str) -> list[dict[str, Any]]:
    """The study's ``sweeper_epochs`` rows (none for a store without that table)."""
    store = open_store(url)
    table = sa.Table(EpochRow.__tablename__, EpochRow.metadata)
    cols = [c for c in table.columns if c.name not in ("id", "created_at")]
    with reading(store) as conn:
        if not sa.inspect(conn).has_table(table.name):
            return []
        result = conn.execute(
            sa.select(*cols)
            .where(table.c.study_name == name)
            .order_by(table.c.trial_number, table.c.trial_id, table.c.epoch)
        )
        return [dict(r._mapping) for r in result]


def counts(data: StudyData) -> dict[str, int]:
    """Trials by outcome: ``sweeper.search.outcomes.count_states`` plus ``diverged`` (among the pruned)."""
    out = count_states(data.trials)
    out["diverged"] = sum(outcome_of(t) == "diverged" for t in data.trials)
    return out


# -- trials in words ------------------------------------------------------------------------------
def family_of(trial: FrozenTrial) -> str:
    family = trial.params.get(space_mod.SCHEDULE_PARAM)
    if family is None:
        family = (trial.user_attrs.get(SCHEDULE_ATTR) or {}).get("family")
    return str(family) if family is not None else "?"


def baseline_of(trial: FrozenTrial) -> str | None:
    name = trial.user_attrs.get(BASELINE_ATTR)
    return str(name) if name else None


def outcome_of(trial: FrozenTrial) -> str:
    """How this trial (one segment of a configuration) ended: complete | paused (at a rung or
    for the epoch budget: its configuration may go on) | pruned | stalled | diverged | failed |
    running | waiting."""
    outcome = trial.user_attrs.get(OUTCOME_ATTR)
    if trial.state == TrialState.PRUNED and outcome in ("diverged", "stalled", "paused"):
        return str(outcome)
    name = trial.state.name.lower()
    return "failed" if name == "fail" else name


def describe(trial: FrozenTrial) -> str:
    """The trial's schedule in one line, e.g. ``cosine(initial_lr=0.1, ...)``: the study's
    :func:`sweeper.search.outcomes.describe` without the baseline's name (shown apart here)."""
    return describe_trial(trial, baseline=False, unknown="?")


def trial_by_number(data: StudyData, number: int) -> FrozenTrial:
    """Trial ``number`` of the study; one line naming the study's range when it has none."""
    for t in data.trials:
        if t.number == number:
            return t
    span = f"0 to {len(data.trials) - 1}" if data.trials else "none yet"
    raise SweeperError(f"study {data.name!r} has no trial {number}; its trials: {span}")


def tuned(data: StudyData, trial: FrozenTrial) -> Tuned | None:
    """What ``trial`` trained with, ready to hand over (:mod:`sweeper.training.handover`); None
    for a trial that never started or a store without the run's length."""
    epochs = data.epochs
    if epochs is None or not trial.user_attrs.get(SCHEDULE_ATTR):
        return None
    return tuned_of(trial, epochs, data.steps_per_epoch)


def duration_of(trial: FrozenTrial) -> float | None:
    d = trial.duration
    return None if d is None else d.total_seconds()


@dataclass(frozen=True)
class BestTrials:
    top: list[FrozenTrial]  # best complete trials, best first (baselines included)
    baselines: list[FrozenTrial]  # every baseline trial, best complete first
    best_tuned: FrozenTrial | None  # best complete trial that is not a baseline
    best_baseline: FrozenTrial | None

    @property
    def gain(self) -> float | None:
        """Best tuned value minus best baseline value."""
        if self.best_tuned is None or self.best_baseline is None:
            return None
        return float(self.best_tuned.value or 0.0) - float(self.best_baseline.value or 0.0)


def best_trials(data: StudyData, top: int = 5) -> BestTrials:
    ranked = data.ranked()
    rank = {t.number: i for i, t in enumerate(ranked)}
    baselines = [t for t in data.trials if baseline_of(t)]
    baselines.sort(key=lambda t: (rank.get(t.number, len(rank)), t.number))
    tuned = [t for t in ranked if not baseline_of(t)]
    best_base = [t for t in ranked if baseline_of(t)]
    return BestTrials(
        top=ranked[:top],
        baselines=baselines,
        best_tuned=tuned[0] if tuned else None,
        best_baseline=best_base[0] if best_base else None,
    )


# -- parameter importance -------------------------------------------------------------------------
# Optuna's evaluators read COMPLETE trials only, and under ASHA most configurations end paused
# at a rung. So the importance is taken at one fidelity (an epoch count): every tuned
# configuration that trained that many epochs, once, as a read-only in-memory COMPLETE trial
# carrying its parameters and its validation accuracy after those epochs (:func:`at_epoch_trials`).
@dataclass(frozen=True)
class Importance:
    scope: str  # "all families" or a family name
    n_trials: int  # configurations the evaluator saw
    n_available: int  # tuned configurations of the scope at the report's epoch
    values: dict[str, float]  # parameter -> importance (sums to 1), most important first

    @property
    def caption(self) -> str:
        """``all families (12 configurations)``, and the sample when it is one."""
        sample = f", a sample of {self.n_available}" if self.n_trials < self.n_available else ""
        return f"{self.scope} ({self.n_trials} configurations{sample})"


@dataclass(frozen=True)
class ImportanceReport:
    evaluator: str
    overall: Importance
    families: list[Importance]
    skipped: dict[str, str]  # family -> why it has no ranking
    baselines_excluded: int  # baseline and reference configurations at that epoch, left out
    epoch: int  # the epoch count the configurations are compared at
    configurations: int  # tuned configurations that trained ``epoch`` epochs

    @property
    def heading(self) -> str:
        """``importance at epoch 3, 14 configurations``."""
        return f"importance at epoch {self.epoch}, {_configurations(self.configurations)}"

    def lines(self) -> list[str]:
        """The report in lines, as ``sweeper importance`` prints it: the heading, each scope's
        bars, the families not ranked."""
        return [self._title(), *display.bar_lines(self._scopes()), *self._unranked()]

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text("ImportanceReport(...)" if cycle else "\n".join(self.lines()))

    def _repr_html_(self) -> str:
        return display.block(self._title(), display.bars_html(self._scopes()), self._unranked())

    def _title(self) -> str:
        return (
            f"{self.heading} ({self.evaluator}; {self.baselines_excluded} baseline or reference "
            "configuration(s) left out)"
        )

    def _scopes(self) -> list[tuple[str, dict[str, float]]]:
        return [(imp.caption, imp.values) for imp in [self.overall, *self.families]]

    def _unranked(self) -> list[str]:
        return [f"{family}: not ranked, {why}" for family, why in self.skipped.items()]


def make_evaluator(name: str, seed: int = 0) -> Any:
    from optuna import importance as imp

    makers: dict[str, Callable[[], Any]] = {
        "ped-anova": imp.PedAnovaImportanceEvaluator,
        "fanova": lambda: imp.FanovaImportanceEvaluator(n_trees=FANOVA_TREES, seed=seed),
        "mean-decrease-impurity": lambda: imp.MeanDecreaseImpurityImportanceEvaluator(seed=seed),
    }
    if name not in makers:
        raise SweeperError(
            f"unknown importance evaluator {name!r}; choose one of: {', '.join(EVALUATORS)}"
        )
    return makers[name]()


def _importance(
    trials: list[FrozenTrial],
    scope: str,
    evaluator: str,
    direction: str,
    max_trials: int,
    seed: int,
    params: list[str] | None = None,
) -> Importance:
    import optuna

    used = trials
    if len(trials) > max_trials:
        used = sorted(random.Random(seed).sample(trials, max_trials), key=lambda t: t.number)
    study = copy_study(used, direction)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = optuna.importance.get_param_importances(
                study, evaluator=make_evaluator(evaluator, seed), params=params
            )
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            raise TooFewTrialsError(f"{scope}: {exc}") from exc
    for w in caught:
        log.info("importance of %s: %s", scope, w.message)
    values = dict(
        sorted(
            ((k, float(v)) for k, v in values.items() if math.isfinite(v)),
            key=lambda kv: (-kv[1], kv[0]),
        )
    )
    return Importance(scope, len(used), len(trials), values)


def _configurations(n: int) -> str:
    return f"{n} configuration" if n == 1 else f"{n} configurations"


def _epoch_values(data: StudyData) -> list[tuple[Configuration, dict[int, float]]]:
    """Every configuration with its finite validation accuracy per epoch count trained; a
    complete one's value after its last epoch is its final value (the trial's, as before)."""
    out = []
    for c in configurations(data.trials):
        values = {e: v for e, v in c.values.items() if math.isfinite(v)}
        full = c.epochs or data.epochs
        final = c.value if c.state is ConfigState.COMPLETE else None
        if full and final is not None and math.isfinite(final):
            values[full] = final
        out.append((c, values))
    return out


def importance_epochs(data: StudyData) -> dict[int, int]:
    """Per epoch count (ascending), the tuned configurations that trained it (with a value)."""
    return _reached(_epoch_values(data))


def _reached(folded: list[tuple[Configuration, dict[int, float]]]) -> dict[int, int]:
    reached: dict[int, int] = defaultdict(int)
    for c, values in folded:
        if c.tuned:
            for e in values:
                reached[e] += 1
    return dict(sorted(reached.items()))


def at_epoch_trials(data: StudyData, epoch: int) -> list[FrozenTrial]:
    """Per tuned configuration that trained ``epoch`` epochs, a read-only COMPLETE trial with its
    first trial's parameters and distributions and, as its value, its validation accuracy after
    ``epoch`` epochs: what Optuna's evaluators read (a continued configuration counts once)."""
    return _at(_epoch_values(data), epoch)


def _at(folded: list[tuple[Configuration, dict[int, float]]], epoch: int) -> list[FrozenTrial]:
    return [_frozen_at(c, values[epoch]) for c, values in folded if c.tuned and epoch in values]


def _frozen_at(config: Configuration, value: float) -> FrozenTrial:
    from optuna.trial import FrozenTrial, TrialState

    first = config.first
    return FrozenTrial(
        number=config.number,
        trial_id=optuna_ids.trial_id(first),
        state=TrialState.COMPLETE,
        value=value,
        values=None,
        datetime_start=first.datetime_start,
        datetime_complete=config.last.datetime_complete or first.datetime_start,
        params=first.params,
        distributions=first.distributions,
        user_attrs=first.user_attrs,
        system_attrs={},
        intermediate_values={},
    )


def _importance_epoch(
    data: StudyData, folded: list[tuple[Configuration, dict[int, float]]], at_epoch: int | None
) -> int:
    """The epoch to rank at: ``at_epoch``, else the deepest with enough configurations; one line
    naming the epochs there are when it cannot be."""
    reached = _reached(folded)
    enough = {e: n for e, n in reached.items() if n >= MIN_IMPORTANCE_TRIALS}
    if at_epoch is None and enough:
        return max(enough)
    if at_epoch is None:
        raise TooFewTrialsError(_too_few(data, folded, reached))
    if at_epoch in enough:
        return at_epoch
    have = reached.get(at_epoch, 0)
    what = (
        f"at epoch {at_epoch} only {_configurations(have)}"
        if have
        else f"no tuned configuration trained {at_epoch} epoch{'s' if at_epoch != 1 else ''}"
    )
    if not enough:
        raise TooFewTrialsError(f"{what}; {_too_few(data, folded, reached)}")
    listed = ", ".join(f"{e} ({n})" for e, n in enough.items())
    raise TooFewTrialsError(f"{what}; epochs with enough: {listed}")


def _too_few(
    data: StudyData, folded: list[tuple[Configuration, dict[int, float]]], reached: dict[int, int]
) -> str:
    """Why no epoch can be ranked, and the command that adds configurations: ``--n-trials``
    counts configurations (a continuation is its configuration's), every one in the study takes
    a place, queued ones included, and a study of baselines only queues the reference first."""
    most = max(reached.values(), default=0)
    need = MIN_IMPORTANCE_TRIALS - most
    reference = all(c.baseline for c, _ in folded)
    n_trials = len(folded) + reference + need
    file = "" if data.name == DEFAULT_STUDY.stem else "STUDY_FILE "
    epochs = ", ".join(f"{e} ({n})" for e, n in reached.items()) or "none"
    budget = (
        " (and a larger --budget-epochs if its budget is spent)"
        if data.user_attrs.get("budget_epochs")
        else ""
    )
    return (
        f"importance needs at least {MIN_IMPORTANCE_TRIALS} tuned configurations (baselines and "
        f"the reference left out) that trained the same number of epochs; study {data.name!r} "
        f"has at most {most} (epochs: {epochs}): add {need} or more configurations with "
        f"`sweeper tune {file}--n-trials {n_trials}`{budget}"
    )


def importances(
    data: StudyData,
    evaluator: str = "ped-anova",
    *,
    at_epoch: int | None = None,
    max_trials: int | None = None,
    seed: int = 0,
) -> ImportanceReport:
    """Importance of the searched parameters over the tuned configurations at one epoch count,
    overall, then within each family.

    Every configuration that trained ``at_epoch`` epochs (default: the deepest epoch count with
    at least :data:`MIN_IMPORTANCE_TRIALS` of them) counts once, with its validation accuracy
    after those epochs: paused, stopped and complete ones alike (:func:`at_epoch_trials`).
    Baselines and the reference configuration are left out: their values are fixed by hand
    (some outside the searched ranges) rather than sampled. Conditional parameters only exist
    inside a family, so each family is also ranked on its own configurations. Each scope is
    sampled down to ``max_trials`` (default: :data:`IMPORTANCE_SAMPLE` of the evaluator). With
    no pruner, at the last epoch, this is the importance over the complete tuned trials.
    """
    make_evaluator(evaluator)
    folded = _epoch_values(data)
    epoch = _importance_epoch(data, folded, at_epoch)
    tuned = _at(folded, epoch)
    left_out = sum(1 for c, v in folded if not c.tuned and epoch in v)
    max_trials = max_trials or IMPORTANCE_SAMPLE[evaluator]
    overall = _importance(tuned, "all families", evaluator, data.direction, max_trials, seed)
    by_family: dict[str, list[FrozenTrial]] = defaultdict(list)
    for t in tuned:
        by_family[family_of(t)].append(t)
    families, skipped = [], {}
    for family in sorted(by_family, key=lambda f: (-len(by_family[f]), f)):
        trials = by_family[family]
        if len(trials) < MIN_IMPORTANCE_TRIALS:
            skipped[family] = f"{_configurations(len(trials))}, {MIN_IMPORTANCE_TRIALS} needed"
            continue
        common = set.intersection(*(set(t.params) for t in trials))
        params = sorted(common - {space_mod.SCHEDULE_PARAM})
        if len(params) < 2:
            skipped[family] = f"only one searched parameter ({', '.join(params) or 'none'})"
            continue
        try:
            families.append(
                _importance(trials, family, evaluator, data.direction, max_trials, seed, params)
            )
        except TooFewTrialsError as exc:
            skipped[family] = str(exc)
    return ImportanceReport(evaluator, overall, families, skipped, left_out, epoch, len(tuned))
