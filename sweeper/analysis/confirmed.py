"""The confirmed winner of a study, read from its store without writing it.

``sweeper confirm`` (:mod:`sweeper.retraining.confirm`) stores its runs in ``sweeper_confirmations``;
here they are read read-only and judged against the study as it is now
(:func:`sweeper.retraining.confirmation.confirmation`): the top of the latest request that trained a
run (its ``--top`` and ``--seeds``) among the study's complete configurations today. When every run of that top is
stored, the confirmation names a winner; when runs are missing (an interrupted ``confirm``, or a
configuration that entered the top since), it says which command completes it. A study never
confirmed is judged against the default request (3 configurations, 3 seeds; fewer
configurations when it has fewer). Never imports Keras.
"""

from __future__ import annotations

import sqlalchemy as sa

from sweeper.analysis.read_store import open_store, reading
from sweeper.analysis.study_data import StudyData
from sweeper.retraining.confirmation import (
    DEFAULT_SEEDS,
    DEFAULT_TOP,
    Confirmation,
    ConfirmRun,
    candidates,
    confirmation,
)
from sweeper.search.configurations import configurations
from sweeper.store.tables import ConfirmationRow


def read_runs(
    url: str | None, name: str, epochs: int | None
) -> tuple[list[ConfirmRun], tuple[int, int] | None]:
    """The study's stored confirming runs of ``epochs`` epochs (any length when None), oldest
    first, and the latest request (top, seeds) among them (None without a run)."""
    store = open_store(url)
    table = sa.Table(ConfirmationRow.__tablename__, ConfirmationRow.metadata)
    with reading(store) as conn:
        if not sa.inspect(conn).has_table(table.name):
            return [], None
        query = sa.select(table).where(table.c.study_name == name)
        if epochs is not None:
            query = query.where(table.c.epochs == epochs)
        rows = list(conn.execute(query.order_by(table.c.id)))
    runs = [
        ConfirmRun(
            config_number=int(r.config_number),
            trial_number=int(r.trial_number),
            repeat=int(r.repeat),
            seed=int(r.seed),
            val_accuracy=float(r.val_accuracy),
            val_loss=None if r.val_loss is None else float(r.val_loss),
            seconds=float(r.seconds),
        )
        for r in rows
    ]
    request = (int(rows[-1].request_top), int(rows[-1].request_seeds)) if rows else None
    return runs, request


def confirmed(url: str | None, data: StudyData) -> Confirmation | None:
    """The study's confirmation as the store holds it now: complete (``.winner`` set) or not
    yet; None when the study has no complete configuration besides its baselines."""
    found = candidates(configurations(data.trials))
    if not found:
        return None
    runs, request = read_runs(url, data.name, data.epochs)
    top, seeds = request or (DEFAULT_TOP, DEFAULT_SEEDS)
    top = min(top, len(found))
    return confirmation(data.name, found[:top], runs, seeds=seeds, epochs=data.epochs or 0)
