"""Range tests in the store: each result saved in ``sweeper_lr_finds`` with the study it was run
for, the latest one read back, and the range it suggests for a study's ``initial_lr``."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, cast

import sqlalchemy as sa

from sweeper.store.store import Store
from sweeper.store.tables import Base, LrFindRow
from sweeper.training.lr_curve import LrFindResult
from sweeper.training.optimizers import OptimizerSpec

if TYPE_CHECKING:
    pass

log = logging.getLogger("sweeper.search.lrfind")  # the range test's one logger


def _tables(store: Store) -> None:
    Base.metadata.create_all(store.engine, tables=[cast(sa.Table, LrFindRow.__table__)])


def union_range(results: Sequence[LrFindResult]) -> tuple[float, float]:
    """One initial_lr range for every optimizer tested: the union of their suggested ranges."""
    return min(r.low for r in results), max(r.high for r in results)


def save_lr_find(
    store: Store, result: LrFindResult, study_name: str, study_hash: str
) -> LrFindResult:
    """Store ``result`` for the study; returns it with its row id, name and hash."""
    _tables(store)
    with store.session() as s:
        row = LrFindRow(
            study_name=study_name,
            study_hash=study_hash,
            dataset=result.dataset,
            model=result.model,
            optimizer=result.optimizer,
            batch_size=result.batch_size,
            start=result.start,
            end=result.end,
            steps=result.steps,
            lrs=json.dumps(list(result.lrs)),
            losses=json.dumps(list(result.losses)),
            smoothed=json.dumps(list(result.smoothed)),
            steepest_lr=result.steepest_lr,
            min_loss_lr=result.min_loss_lr,
            diverged_lr=result.diverged_lr,
            low=result.low,
            high=result.high,
        )
        s.add(row)
        s.flush()
        row_id, created = int(row.id), row.created_at
    return replace(
        result, study_name=study_name, study_hash=study_hash, id=row_id, created_at=created
    )


def _from_row(row: LrFindRow) -> LrFindResult:
    return LrFindResult(
        lrs=tuple(json.loads(row.lrs)),
        losses=tuple(json.loads(row.losses)),
        smoothed=tuple(json.loads(row.smoothed)),
        steepest_lr=row.steepest_lr,
        min_loss_lr=row.min_loss_lr,
        diverged_lr=row.diverged_lr,
        low=row.low,
        high=row.high,
        optimizer=row.optimizer,
        model=row.model,
        dataset=row.dataset,
        batch_size=row.batch_size,
        start=row.start,
        end=row.end,
        steps=row.steps,
        study_name=row.study_name,
        study_hash=row.study_hash,
        id=row.id,
        created_at=row.created_at,
    )


def latest_lr_find(
    store: Store, study_name: str, study_hash: str, optimizer: OptimizerSpec | str
) -> LrFindResult | None:
    """The newest stored range test of this study definition and optimizer, if any."""
    name = optimizer.describe() if isinstance(optimizer, OptimizerSpec) else optimizer
    _tables(store)
    with store.session() as s:
        row = s.scalars(
            sa.select(LrFindRow)
            .where(
                LrFindRow.study_name == study_name,
                LrFindRow.study_hash == study_hash,
                LrFindRow.optimizer == name,
            )
            .order_by(LrFindRow.id.desc())
            .limit(1)
        ).first()
        return None if row is None else _from_row(row)
