"""The anytime curve of a study: the best validation accuracy found against the epochs trained.

A budgeted search is first asked *how good was the best result after N epochs of training?*
The ledger (``sweeper_ledger``, :mod:`sweeper.store.tables`) answers it: one row per epoch
actually trained, by any trial, in training order. Epoch ``i`` of the curve is the ``i``-th row;
its value the best validation accuracy of any epoch the search trained up to there (tuned
configurations and the reference configuration; every epoch of a paused, continued or stopped one
counts). The baselines' epochs count as epochs trained but not in the search's best: they are
marked (:attr:`AnytimeCurve.baseline`), and their best is a level of its own. An epoch without
a value (a loss that diverged, ``confirm`` retraining a configuration) counts and leaves the best
as it was. The reference configuration's completion is marked at the epoch it completed.

:func:`read_ledger` reads the ledger read-only (nothing for a store without the table);
:func:`anytime_data` computes the curve (plot data, drawn by
:func:`sweeper.analysis.plots.draw_anytime`); :func:`load_curves` reads several studies, from one
store or several, labelled apart. Never imports Keras or Matplotlib.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa

from sweeper.analysis import queries as an
from sweeper.analysis import read_store, study_data
from sweeper.errors import PlotUnavailableError
from sweeper.search.trial_record import REFERENCE_ATTR
from sweeper.store.tables import LedgerRow
from sweeper.studyfile.names import shown


class AnytimeCurve(NamedTuple):
    """One study's anytime curve; index ``i`` is the state after ``i + 1`` epochs trained."""

    label: str  # the study's name on the figure (with its store when two share a name)
    best: np.ndarray  # best validation accuracy of the search so far; NaN before its first value
    baseline: np.ndarray  # bool: the epoch was trained by a baseline
    best_baseline: float | None  # best validation accuracy of any baseline epoch
    reference_epochs: int | None  # epochs trained when the reference configuration completed
    reference_value: float | None  # its final validation accuracy

    @property
    def epochs(self) -> int:
        """Epochs trained in all (the baselines' included)."""
        return len(self.best)

    @property
    def baseline_epochs(self) -> int:
        return int(self.baseline.sum())

    def best_after(self, epochs: int) -> float | None:
        """The search's best after ``epochs`` epochs trained (None before it has one)."""
        if epochs < 1 or not self.epochs:
            return None
        value = float(self.best[min(epochs, self.epochs) - 1])
        return None if math.isnan(value) else value

    def baseline_spans(self) -> list[tuple[int, int]]:
        """The baselines' runs of epochs, as (first, last) epoch numbers counted from 1."""
        spans: list[tuple[int, int]] = []
        for i in np.flatnonzero(self.baseline):
            n = int(i) + 1
            if spans and spans[-1][1] == n - 1:
                spans[-1] = (spans[-1][0], n)
            else:
                spans.append((n, n))
        return spans


def read_ledger(url: str | None, name: str) -> list[dict[str, Any]]:
    """The study's ledger rows in training order: trial_number, epoch, val_accuracy (none for a
    store without the table). Read-only, as every read of :mod:`sweeper.analysis.queries`."""
    store = read_store.open_store(url)
    table = sa.Table(LedgerRow.__tablename__, LedgerRow.metadata)
    with read_store.reading(store) as conn:
        if not sa.inspect(conn).has_table(table.name):
            return []
        result = conn.execute(
            sa.select(table.c.trial_number, table.c.epoch, table.c.val_accuracy)
            .where(table.c.study_name == name)
            .order_by(table.c.id)
        )
        return [dict(r._mapping) for r in result]


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def anytime_data(
    data: study_data.StudyData, ledger: Sequence[Mapping[str, Any]], label: str | None = None
) -> AnytimeCurve:
    """The anytime curve of ``data`` from its ledger rows (:func:`read_ledger`), in their order.

    Raises :class:`PlotUnavailableError` when the study has no trained epoch in its ledger.
    """
    if not ledger:
        raise PlotUnavailableError(
            f"study {data.name!r} has no trained epoch in its ledger yet: no anytime curve to "
            "draw (a store written before sweeper kept a ledger has none either)"
        )
    trials = {t.number: t for t in data.trials}
    baselines = {n for n, t in trials.items() if an.baseline_of(t)}
    sign = 1.0 if data.maximize else -1.0
    best = np.full(len(ledger), np.nan)
    marked = np.zeros(len(ledger), dtype=bool)
    running: float | None = None
    base: float | None = None
    for i, row in enumerate(ledger):
        number = int(row["trial_number"])
        value = _finite(row.get("val_accuracy"))
        if number in baselines:
            marked[i] = True
            if value is not None and (base is None or sign * value > sign * base):
                base = value
        elif value is not None and (running is None or sign * value > sign * running):
            running = value
        best[i] = np.nan if running is None else running
    ref_epochs: int | None = None
    ref_value: float | None = None
    for t in data.complete():
        if t.user_attrs.get(REFERENCE_ATTR):
            at = _completed_at(t.number, max(t.intermediate_values, default=None), ledger)
            if at is not None and (ref_epochs is None or at < ref_epochs):
                ref_epochs, ref_value = at, float(t.value or 0.0)
    return AnytimeCurve(shown(label or data.name), best, marked, base, ref_epochs, ref_value)


def _completed_at(
    number: int, last_epoch: int | None, ledger: Sequence[Mapping[str, Any]]
) -> int | None:
    """Epochs trained when trial ``number`` completed: up to its first row of its last epoch
    with a value (a later row of the trial, without one, is ``confirm`` retraining it)."""
    found = None
    for i, row in enumerate(ledger):
        if int(row["trial_number"]) != number or _finite(row.get("val_accuracy")) is None:
            continue
        if last_epoch is None:
            found = i + 1
        elif int(row["epoch"]) == last_epoch:
            return i + 1
    return found


Source = tuple[str | None, str]  # (store URL or None for the default store, study name)


def labels(sources: Sequence[Source], stores: Sequence[str]) -> list[str]:
    """Each study's label: its name, and its store (``stores``: masked URLs; a SQLite file's
    name alone where those tell the stores apart) where two studies share the name."""
    short = [s.rsplit("/", 1)[-1] if s.startswith("sqlite") else s for s in stores]
    if len(set(short)) < len(set(stores)):
        short = list(stores)
    shared = Counter(name for _, name in sources)
    return [
        f"{name} ({store})" if shared[name] > 1 else name
        for (_, name), store in zip(sources, short, strict=True)
    ]


def load_curves(sources: Sequence[Source]) -> list[AnytimeCurve]:
    """The anytime curves of several studies, each ``(url, name)`` from its own store."""
    datas = [an.load(url, name) for url, name in sources]
    names = labels(sources, [d.storage for d in datas])
    return [
        anytime_data(d, read_ledger(url, name), label)
        for d, (url, name), label in zip(datas, sources, names, strict=True)
    ]
