"""The results of a study in the store, as the Python API returns them (:class:`TuneResult`).

Everything is read from the store when asked for; nothing here imports Keras except
:meth:`TuneResult.evaluate` and :meth:`TuneResult.confirm`, which train.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sweeper.analysis import display
from sweeper.api.progress import best_lines, value_text
from sweeper.api.run_context import console, console_stream, figures, nothing, trusted
from sweeper.errors import SweeperError, UnknownPlotKindError

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

    from sweeper.analysis.anytime import AnytimeCurve
    from sweeper.analysis.queries import ImportanceReport
    from sweeper.analysis.study_data import StudyData
    from sweeper.retraining.confirmation import Confirmation, ConfirmedConfig, ConfirmRun
    from sweeper.retraining.evaluate import EvalRun, Evaluation
    from sweeper.search.summary import TuneSummary
    from sweeper.training.handover import Tuned


class RanStudy(Protocol):
    """What a result needs of the :class:`~sweeper.api.study.Study` that ran: its hash, and its model
    function called by this process while a block runs."""

    @property
    def hash(self) -> str: ...

    def registered(self) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class Best:
    """A trial of a study: the best complete one (:attr:`TuneResult.best`), or any asked for
    by number (:meth:`TuneResult.trial`), and what it trained with, ready to leave sweeper.

    :meth:`learning_rate`, :meth:`optimizer` and :meth:`code` give its schedule and optimizer
    for your own training; with no argument exactly as the trial trained, else rebuilt for a
    run of ``epochs`` epochs of ``steps_per_epoch`` updates under ``rule`` (``"fraction"``,
    the default: every warm-up, drop and decay end at the same share of the run; ``"epochs"``:
    what was tuned in epochs stays in epochs, a decay over the run still spans the run).
    """

    number: int
    value: float | None  # its validation accuracy (None for a trial that did not complete)
    params: dict[str, Any]  # the searched parameters, as Optuna stores them
    schedule: str  # the schedule it trained with, e.g. "cosine(initial_lr=0.1, ...)"
    baseline: str | None = None  # the baseline's name when it is one
    tuned: Tuned | None = field(default=None, repr=False, compare=False)
    confirmed: ConfirmedConfig | None = field(default=None, repr=False, compare=False)
    """When :attr:`TuneResult.best` is the confirmed winner: its runs of ``confirm``
    (``.mean``, ``.se``, ``.runs``); else None."""

    def _tuned(self) -> Tuned:
        if self.tuned is None:
            raise SweeperError(f"trial {self.number} has no stored schedule to hand over")
        return self.tuned

    def learning_rate(
        self, steps_per_epoch: int | None = None, epochs: int | None = None, rule: str | None = None
    ) -> Any:
        """The trial's Keras ``LearningRateSchedule`` (a float for a constant rate), for a run
        of ``epochs`` epochs of ``steps_per_epoch`` batches (default: the trial's own run).

        Give it to any Keras optimizer; a model compiled with it saves with ``model.save`` and
        loads back with ``keras.models.load_model`` where sweeper is installed."""
        return self._tuned().learning_rate(steps_per_epoch, epochs, rule)

    def optimizer(
        self, steps_per_epoch: int | None = None, epochs: int | None = None, rule: str | None = None
    ) -> Any:
        """A new Keras optimizer with every tuned setting (family, rate and schedule, momentum,
        Nesterov, a schedule-free optimizer's warm-up), for a run of ``epochs`` epochs of
        ``steps_per_epoch`` batches (default: the trial's own run)::

            model.compile(optimizer=best.optimizer(epochs=30, steps_per_epoch=len(x) // 64 + 1),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        """
        return self._tuned().optimizer(steps_per_epoch, epochs, rule)

    def code(
        self, steps_per_epoch: int | None = None, epochs: int | None = None, rule: str | None = None
    ) -> str:
        """Python code building the same ``learning_rate`` and ``optimizer`` with Keras alone,
        to paste into a training script without sweeper (as ``sweeper best STUDY --code``)."""
        mark = f" [baseline: {self.baseline}]" if self.baseline else ""
        value = "" if self.value is None else f" (val_accuracy {self.value:.4f})"
        title = f"tuned by sweeper: trial {self.number}{value}{mark}"
        return self._tuned().code(steps_per_epoch, epochs, rule, title=title)

    def length(
        self, steps_per_epoch: int | None = None, epochs: int | None = None, rule: str | None = None
    ) -> str:
        """In one line, what the schedule becomes for that run: ``cosine over 27 epochs of 34
        steps (tuned over 9 epochs of 34 steps, rule 'fraction'): decay_steps 272 -> 816``."""
        tuned = self._tuned()
        return tuned.length_line(tuned.horizon(epochs, steps_per_epoch, rule))

    def rows(self) -> list[tuple[str, Any]]:
        """What a notebook shows of it, as (label, value): its value, schedule, baseline name,
        confirming runs and searched parameters."""
        rows: list[tuple[str, Any]] = [("val_accuracy", self.value), ("schedule", self.schedule)]
        if self.baseline:
            rows.append(("baseline", self.baseline))
        confirmed = self.confirmed
        if confirmed is not None and confirmed.mean is not None:
            spread = "" if confirmed.se is None else f" ± {confirmed.se:.4f}"
            rows.append(("confirmed", f"{confirmed.mean:.4f}{spread}, {len(confirmed.runs)} runs"))
        return rows + list(self.params.items())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        rows = [f"  {label}: {display.cell(value)}" for label, value in self.rows()]
        p.text(f"Best(trial {self.number})" if cycle else "\n".join([self._title(), *rows]))

    def _repr_html_(self) -> str:
        return display.block(self._title(), display.table(self.rows()))

    def _title(self) -> str:
        return f"trial {self.number}" + (f" [baseline: {self.baseline}]" if self.baseline else "")


class TuneResult:
    """A study in the store: its best trial, its trials, importance, plots, report, evaluation.

    Everything is read from the store when asked for (other workers may still add trials);
    nothing here imports Keras except :meth:`evaluate`, which trains.
    """

    def __init__(
        self,
        study_name: str,
        storage: str,
        *,
        summary: TuneSummary | None = None,
        study: RanStudy | None = None,
    ) -> None:
        self.study_name = study_name
        self._url = storage
        self.summary = summary
        """What the run did (:class:`sweeper.search.summary.TuneSummary`); None for :func:`load`."""
        self.study = study
        """The :class:`Study` that ran; None for :func:`load`."""

    @property
    def storage(self) -> str:
        """The store's URL, its password masked."""
        from sweeper.store.storage_url import mask_url

        return mask_url(self._url)

    def data(self) -> StudyData:
        """The study as read from the store now (:class:`sweeper.analysis.queries.StudyData`)."""
        from sweeper.analysis import queries as an

        return an.load(self._url, self.study_name)

    @staticmethod
    def _best_of(trial: Any, data: StudyData) -> Best:
        from sweeper.analysis import queries as an

        return Best(
            number=trial.number,
            value=None if trial.value is None else float(trial.value),
            params=dict(trial.params),
            schedule=an.describe(trial),
            baseline=an.baseline_of(trial),
            tuned=an.tuned(data, trial),
        )

    @property
    def best(self) -> Best | None:
        """The confirmed winner (:meth:`confirm`: the best mean over several seeds, its
        ``.confirmed`` set) once the study has one; until then the best complete trial by its
        single validation run (baselines included). None before a trial completed."""
        data = self.data()
        ranked = data.ranked()
        if not ranked:
            return None
        from dataclasses import replace

        from sweeper.analysis import queries as an
        from sweeper.analysis.confirmed import confirmed

        found = confirmed(self._url, data)
        winner = found.winner if found is not None else None
        if winner is None:
            return self._best_of(ranked[0], data)
        trial = an.trial_by_number(data, winner.trial_number)
        return replace(self._best_of(trial, data), confirmed=winner)

    @property
    def confirmation(self) -> Confirmation | None:
        """What :meth:`confirm` has stored, judged against the study now: ``.winner`` (None
        while runs are missing), ``.configs`` (mean ± ``.se`` each), ``.comparison``
        (``.probability`` that the winner beats the runner-up), ``.missing``; None when the
        study has no complete configuration besides its baselines. Reads only."""
        from sweeper.analysis.confirmed import confirmed

        return confirmed(self._url, self.data())

    @property
    def best_baseline(self) -> Best | None:
        """The best complete baseline trial, or None."""
        from sweeper.analysis import queries as an

        data = self.data()
        found = an.best_trials(data, 1).best_baseline
        return self._best_of(found, data) if found is not None else None

    def trial(self, number: int) -> Best:
        """Trial ``number`` of the study and what it trained with (as :attr:`best`): any trial
        that started training, paused or complete."""
        from sweeper.analysis import queries as an

        data = self.data()
        return self._best_of(an.trial_by_number(data, number), data)

    def best_model(self, checkpoint_dir: str | os.PathLike[str] | None = None) -> Any:
        """The trained network of the study's best complete configuration, as the study kept
        it (a compiled ``keras.Model``: imports Keras).

        It is the network the trial trained: on the training split alone, for the trials'
        length. Use it to predict, or to fine-tune. For a final model, retrain with the tuned
        schedule at your own length on all your data: ``result.best.optimizer(epochs=...)``.
        ``checkpoint_dir``: where the study's checkpoints were, should the recorded folder
        have moved (default: ``$SWEEPER_CHECKPOINTS`` or ``sweeper-checkpoints``). Raises a
        one-line :class:`~sweeper.errors.BestModelError` when there is none here.
        """
        from sweeper.search.best_model import kept_model, load_kept
        from sweeper.search.worker import checkpoint_root

        data = self.data()
        root = checkpoint_root(None if checkpoint_dir is None else str(checkpoint_dir))
        kept = kept_model(data.user_attrs, root, self.study_name, completed=len(data.complete()))
        return load_kept(kept.path)

    @property
    def gain(self) -> float | None:
        """Best tuned value minus best baseline value (None without both)."""
        from sweeper.analysis import queries as an

        return an.best_trials(self.data(), 1).gain

    @property
    def trials(self) -> pandas.DataFrame | list[dict[str, Any]]:
        """One row per trial (a segment of training): number, config (its configuration: a
        paused configuration continued later is several trials), config_state (where that
        configuration stands: complete, paused, pruned, stalled, …), state (how this trial
        ended: complete, paused, pruned, …), value, family, schedule, baseline, optimizer,
        duration_s, times, reason (why it stopped, paused or failed, cut to 60 characters for
        the table), epochs (reported), ``param_<name>`` per parameter, and reason_full (the
        whole text); a pandas DataFrame when pandas is installed, else a list of dicts."""
        from sweeper.analysis.report import config_states, trial_record
        from sweeper.search.trial_record import ERROR_ATTR

        rows = []
        data = self.data()
        states = config_states(data)
        for trial in data.trials:
            row = trial_record(trial, states)
            params = row.pop("params")
            reason = row["reason"] or trial.user_attrs.get(ERROR_ATTR)
            row["reason"] = display.shorten(reason)
            row["epochs"] = len(trial.intermediate_values)
            row.update({f"param_{k}": v for k, v in params.items()})
            row["reason_full"] = reason
            rows.append(row)
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows)

    def importance(
        self,
        evaluator: str = "ped-anova",
        *,
        at_epoch: int | None = None,
        max_trials: int | None = None,
    ) -> ImportanceReport:
        """Parameter importance over the tuned configurations at one epoch count, overall
        (``.overall.values``, a dict parameter -> share) and per family (``.families``), as
        ``sweeper importance``: every configuration that trained ``at_epoch`` epochs (default:
        the deepest epoch count with at least 4 of them; ``.epoch``, ``.configurations``), once,
        with its validation accuracy after them, paused and stopped ones included.

        ``evaluator``: ``ped-anova``, ``fanova`` or ``mean-decrease-impurity``. Raises
        :class:`~sweeper.errors.TooFewTrialsError` when no epoch count (or not
        ``at_epoch``) has 4 tuned configurations, naming those that have.
        """
        from sweeper.analysis import queries as an

        return an.importances(self.data(), evaluator, at_epoch=at_epoch, max_trials=max_trials)

    def plot(
        self,
        kind: str = "history",
        *,
        top: int = 5,
        family: str | None = None,
        evaluator: str = "ped-anova",
        others: Sequence[TuneResult] = (),
    ) -> Figure:
        """One figure of the study, as ``sweeper plot`` draws it: a matplotlib ``Figure``,
        shown inline when it is the last value of a notebook cell.

        ``kind``: history, anytime (the best validation accuracy against the epochs trained),
        importance, lr-curves (the ``top`` best trials), learning-curves, families, parallel,
        slice or contour (one schedule ``family``, default the best). ``others``: results of
        other studies (of any store) whose anytime curves go on the same figure, to compare
        them at equal epochs: ``a.plot("anytime", others=[b])``.
        Raises :class:`~sweeper.errors.PlotUnavailableError` when the study cannot show it yet.
        """
        from sweeper.analysis import plots
        from sweeper.analysis import queries as an
        from sweeper.analysis.anytime import load_curves, read_ledger

        if kind not in plots.KINDS:
            raise UnknownPlotKindError(
                f"unknown plot kind {kind!r}; choose one of: {', '.join(plots.KINDS)}"
            )
        if others:
            if kind != "anytime":
                raise SweeperError(
                    f"others: only the anytime plot draws several studies on one figure, not "
                    f"{kind!r}"
                )
            curves = load_curves([(r._url, r.study_name) for r in (self, *others)])
            with figures():
                fig = plots.draw_anytime(curves, plots.anytime_title([c.label for c in curves]))
                plots.close(fig)
            return fig
        data = self.data()
        rows = an.read_epochs(self._url, self.study_name) if kind == "learning-curves" else None
        ledger = read_ledger(self._url, self.study_name) if kind == "anytime" else None
        with figures():
            fig = plots.draw(
                data,
                kind,
                top=top,
                family=family,
                evaluator=evaluator,
                epoch_rows=rows,
                ledger=ledger,
            )
            plots.close(fig)  # not kept by pyplot: the figure is the caller's
        return fig

    def anytime(self) -> AnytimeCurve:
        """The study's anytime curve, as ``plot("anytime")`` draws it: ``.best[i]`` the best
        validation accuracy of the search after ``i + 1`` epochs trained (every trial's, the
        baselines' included and marked in ``.baseline``), ``.best_after(n)``, ``.epochs``,
        ``.best_baseline``, ``.reference_epochs`` (when the reference configuration completed).
        Raises :class:`~sweeper.errors.PlotUnavailableError` before an epoch is trained.
        """
        from sweeper.analysis.anytime import load_curves

        return load_curves([(self._url, self.study_name)])[0]

    def report(
        self, path: str | os.PathLike[str] = ".", *, top: int = 10, evaluator: str = "ped-anova"
    ) -> Path:
        """Write the study's HTML report, as ``sweeper report``: to ``path`` when it ends in
        ``.html``, else to ``path/<study>-report.html``. Returns the file's path."""
        from sweeper.analysis.report import build_report, write_report

        target = Path(path)
        with figures():
            if target.suffix.lower() in (".html", ".htm"):
                page = build_report(self._url, self.study_name, top=top, evaluator=evaluator)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(page, encoding="utf-8")
                return target
            return write_report(self._url, self.study_name, target, top=top, evaluator=evaluator)

    def evaluate(
        self,
        *,
        top: int = 3,
        repeats: int = 3,
        epochs: int | None = None,
        progress: bool | Callable[[EvalRun], None] | None = True,
    ) -> Evaluation:
        """Did tuning help? Retrain the ``top`` best tuned trials and the best baseline on
        train + validation, ``repeats`` seeds each, and score them on the held-out test split,
        as ``sweeper evaluate`` (every run stored). ``epochs`` defaults to the study's;
        ``progress`` prints one line per run (or is called with each run)."""
        from sweeper.retraining.evaluate import evaluate

        callback: Callable[[EvalRun], None] | None
        callback = _print_run if progress is True else (progress or None)
        study = self.study
        with (
            study.registered() if study is not None else nothing(),
            trusted(study.hash) if study is not None else nothing(),
            console(callback is not None),
        ):
            return evaluate(
                self.study_name,
                storage=self._url,
                top=top,
                repeats=repeats,
                epochs=epochs,
                progress=callback,
            )

    def confirm(
        self,
        *,
        top: int | None = None,
        seeds: int = 3,
        progress: bool | Callable[[ConfirmRun], None] | None = True,
    ) -> Confirmation:
        """A winner that survives noise: retrain the ``top`` best complete configurations
        (baselines excluded; default 3, or as many as the study has when fewer) ``seeds``
        times each (at least 2) on the training split, score them
        on the validation split, and name the best mean, as ``sweeper confirm`` (every run
        stored; a second call trains only the runs missing; its epochs count in the study's
        budget). ``.winner``, ``.configs`` (mean ± ``.se``), ``.comparison.probability`` (the
        winner beats the runner-up, paired t over the seeds); :attr:`best` then names the
        winner. ``progress`` prints one line per run (or is called with each run)."""
        from sweeper.retraining.confirm import confirm

        callback: Callable[[ConfirmRun], None] | None
        callback = _print_confirm_run if progress is True else (progress or None)
        study = self.study
        with (
            study.registered() if study is not None else nothing(),
            trusted(study.hash) if study is not None else nothing(),
            console(callback is not None),
        ):
            return confirm(
                self.study_name, storage=self._url, top=top, seeds=seeds, progress=callback
            )

    def __repr__(self) -> str:
        try:
            return self._describe()
        except SweeperError:
            return self._plain()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self._plain() if cycle else repr(self))

    def _repr_html_(self) -> str:
        try:
            heading, best, notes = self._overview()
        except SweeperError:
            return display.block(self._plain(), "")
        if best is None:
            return display.block(heading, "<div>no complete trial yet</div>", notes)
        return display.block(heading, f"<div>best: {best._repr_html_()}</div>", notes)

    def _plain(self) -> str:
        return f"TuneResult(study {self.study_name!r} in {self.storage})"

    def _describe(self) -> str:
        heading, best, notes = self._overview()
        lines = [heading]
        if best is None:
            lines.append("no complete trial yet")
        else:
            lines += best_lines(best.number, float(best.value or 0.0), best.schedule, best.params)
        return "\n".join([*lines, *notes])

    def _overview(self) -> tuple[str, Best | None, list[str]]:
        """What the result says of itself: a heading (configurations, trials), the best
        complete trial, then the confirmation and the best baseline with the gain."""
        from sweeper.analysis import queries as an
        from sweeper.search.configurations import configurations, count_configurations, counts_text

        data = self.data()
        configs = configurations(data.trials)
        heading = (
            f"study {self.study_name!r} in {self.storage}: {len(configs)} configurations "
            f"({counts_text(count_configurations(configs))}) in {len(data.trials)} trials"
        )
        found = an.best_trials(data, 1)
        best = self._best_of(found.top[0], data) if found.top else None
        notes = []
        if best is not None:
            from sweeper.analysis.confirmed import confirmed
            from sweeper.retraining.confirmation import winner_text

            confirmation = confirmed(self._url, data)
            if confirmation is not None:
                notes.append(winner_text(confirmation))
        if found.best_baseline is not None:
            gain = f"; tuning gains {found.gain:+.4f}" if found.gain is not None else ""
            notes.append(
                f"best baseline: {an.baseline_of(found.best_baseline)}, val_accuracy "
                f"{value_text(found.best_baseline.value)}{gain}"
            )
        return heading, best, notes


def _print_run(run: EvalRun) -> None:
    loss = "diverged" if run.test_loss is None else f"loss {run.test_loss:.4f}"
    print(
        f"  trial {run.trial_number:<4} seed {run.seed:<3} test_acc={run.test_accuracy:.4f}  "
        f"{loss}  {run.seconds:5.1f}s  {run.label}",
        file=console_stream(),
        flush=True,
    )


def _print_confirm_run(run: ConfirmRun) -> None:
    loss = "diverged" if run.val_loss is None else f"loss {run.val_loss:.4f}"
    print(
        f"  trial {run.trial_number:<4} seed {run.seed:<3} val_acc={run.val_accuracy:.4f}  "
        f"{loss}  {run.seconds:5.1f}s",
        file=console_stream(),
        flush=True,
    )
