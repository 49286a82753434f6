"""The results of a study in the store, as the Python API returns them (:class:`TuneResult`).

Everything is read from the store when asked for; nothing here imports Keras except
:meth:`TuneResult.evaluate`, which trains.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sweeper.api.progress import best_lines, value_text
from sweeper.api.run_context import console, figures, nothing, trusted
from sweeper.errors import SweeperError

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

    from sweeper.analysis.queries import ImportanceReport, StudyData
    from sweeper.study.evaluate import EvalRun, Evaluation
    from sweeper.study.summary import TuneSummary


class RanStudy(Protocol):
    """What a result needs of the :class:`~sweeper.api.facade.Study` that ran: its hash, and its model
    function called by this process while a block runs."""

    @property
    def hash(self) -> str: ...

    def registered(self) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class Best:
    """The best complete trial of a study."""

    number: int
    value: float  # its validation accuracy
    params: dict[str, Any]  # the searched parameters, as Optuna stores them
    schedule: str  # the schedule it trained with, e.g. "cosine(initial_lr=0.1, ...)"
    baseline: str | None = None  # the baseline's name when it is one


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
        """What the run did (:class:`sweeper.study.summary.TuneSummary`); None for :func:`load`."""
        self.study = study
        """The :class:`Study` that ran; None for :func:`load`."""

    @property
    def storage(self) -> str:
        """The store's URL, its password masked."""
        from sweeper.study.storage_url import mask_url

        return mask_url(self._url)

    def data(self) -> StudyData:
        """The study as read from the store now (:class:`sweeper.analysis.queries.StudyData`)."""
        from sweeper.analysis import queries as an

        return an.load(self._url, self.study_name)

    @staticmethod
    def _best_of(trial: Any) -> Best:
        from sweeper.analysis import queries as an

        return Best(
            number=trial.number,
            value=float(trial.value),
            params=dict(trial.params),
            schedule=an.describe(trial),
            baseline=an.baseline_of(trial),
        )

    @property
    def best(self) -> Best | None:
        """The best complete trial (baselines included), or None before one completed."""
        ranked = self.data().ranked()
        return self._best_of(ranked[0]) if ranked else None

    @property
    def best_baseline(self) -> Best | None:
        """The best complete baseline trial, or None."""
        from sweeper.analysis import queries as an

        found = an.best_trials(self.data(), 1).best_baseline
        return self._best_of(found) if found is not None else None

    @property
    def gain(self) -> float | None:
        """Best tuned value minus best baseline value (None without both)."""
        from sweeper.analysis import queries as an

        return an.best_trials(self.data(), 1).gain

    @property
    def trials(self) -> pandas.DataFrame | list[dict[str, Any]]:
        """One row per trial: number, state, value, family, schedule, baseline, optimizer,
        duration_s, times, reason, epochs (reported) and ``param_<name>`` per parameter; a
        pandas DataFrame when pandas is installed, else a list of dicts."""
        from sweeper.analysis.report import trial_record

        rows = []
        for trial in self.data().trials:
            row = trial_record(trial)
            params = row.pop("params")
            row["epochs"] = len(trial.intermediate_values)
            row.update({f"param_{k}": v for k, v in params.items()})
            rows.append(row)
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows)

    def importance(
        self, evaluator: str = "ped-anova", *, max_trials: int | None = None
    ) -> ImportanceReport:
        """Parameter importance over the tuned trials, overall (``.overall.values``, a dict
        parameter -> share) and per family (``.families``), as ``sweeper importance``.

        ``evaluator``: ``ped-anova``, ``fanova`` or ``mean-decrease-impurity``. Raises
        :class:`~sweeper.analysis.queries.TooFewTrialsError` below 4 complete tuned trials.
        """
        from sweeper.analysis import queries as an

        return an.importances(self.data(), evaluator, max_trials=max_trials)

    def plot(
        self,
        kind: str = "history",
        *,
        top: int = 5,
        family: str | None = None,
        evaluator: str = "ped-anova",
    ) -> Figure:
        """One figure of the study, as ``sweeper plot`` draws it: a matplotlib ``Figure``,
        shown inline when it is the last value of a notebook cell.

        ``kind``: history, importance, lr-curves (the ``top`` best trials), learning-curves,
        families, parallel, slice or contour (one schedule ``family``, default the best).
        Raises :class:`~sweeper.analysis.plots.PlotUnavailableError` when the study cannot show it yet.
        """
        from sweeper.analysis import plots
        from sweeper.analysis import queries as an

        if kind not in plots.KINDS:
            raise plots.UnknownPlotKindError(
                f"unknown plot kind {kind!r}; choose one of: {', '.join(plots.KINDS)}"
            )
        data = self.data()
        rows = an.read_epochs(self._url, self.study_name) if kind == "learning-curves" else None
        with figures():
            fig = plots.draw(
                data, kind, top=top, family=family, evaluator=evaluator, epoch_rows=rows
            )
            plots.close(fig)  # not kept by pyplot: the figure is the caller's
        return fig

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
        from sweeper.study.evaluate import evaluate

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

    def __repr__(self) -> str:
        try:
            return self._describe()
        except SweeperError:
            return f"TuneResult(study {self.study_name!r} in {self.storage})"

    def _describe(self) -> str:
        from sweeper.analysis import queries as an

        data = self.data()
        c = an.counts(data)
        lines = [
            f"study {self.study_name!r} in {self.storage}: {len(data.trials)} trials "
            f"({c['complete']} complete, {c['pruned']} pruned, {c['paused']} paused, "
            f"{c['failed']} failed)"
        ]
        found = an.best_trials(data, 1)
        if not found.top:
            lines.append("no complete trial yet")
        else:
            best = self._best_of(found.top[0])
            lines += best_lines(best.number, best.value, best.schedule, best.params)
        if found.best_baseline is not None:
            gain = f"; tuning gains {found.gain:+.4f}" if found.gain is not None else ""
            lines.append(
                f"best baseline: {an.baseline_of(found.best_baseline)}, val_accuracy "
                f"{value_text(found.best_baseline.value)}{gain}"
            )
        return "\n".join(lines)


def _print_run(run: EvalRun) -> None:
    loss = "diverged" if run.test_loss is None else f"loss {run.test_loss:.4f}"
    print(
        f"  trial {run.trial_number:<4} seed {run.seed:<3} test_acc={run.test_accuracy:.4f}  "
        f"{loss}  {run.seconds:5.1f}s  {run.label}",
        file=sys.stderr,
        flush=True,
    )
