"""The store: Optuna's RDB storage plus sweeper's own tables (:mod:`sweeper.store.tables`), in one
database reached by one URL.

Optuna's tables hold studies and trials (so ``optuna trials``, ``optuna best-trial`` and
optuna-dashboard read a sweeper store as it is); :class:`Store` opens both on the same URL, masks
its password in every message, sets SQLite up for several writers (WAL, busy timeout; the URL
and engine settings are in :mod:`sweeper.store.storage_url`) and reads and writes sweeper's
tables: epochs, study files, runs, the ledger of trained epochs and the promotion claims.

This module never imports Keras, so read-only commands stay fast.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from sweeper.environment import heartbeat_grace_from_env, host_name
from sweeper.errors import StorageError, StudyChangedError
from sweeper.store.storage_url import (
    CheckedOut,
    check_sqlite_dir,
    check_url,
    engine_kwargs,
    is_sqlite,
    mask_url,
    resolve_url,
    sqlite_file,
    sqlite_pragmas,
    sqlite_serializable,
    url_secrets,
)
from sweeper.store.tables import (
    EPOCH_FIELDS,
    Base,
    EpochRow,
    LedgerRow,
    PromotionRow,
    RunRow,
    StudyFileRow,
    utcnow,
)

if TYPE_CHECKING:
    import optuna


def _grace_period() -> int:
    """Seconds without a heartbeat before a trial is stale: 40, or ``$SWEEPER_HEARTBEAT_GRACE``
    (at least 2; shorter notices dead workers sooner, longer tolerates slow networks)."""
    seconds = heartbeat_grace_from_env()
    return max(2, seconds) if seconds is not None else 40


GRACE_PERIOD = _grace_period()  # seconds without a heartbeat before a trial is stale
HEARTBEAT_INTERVAL = max(1, GRACE_PERIOD // 4)  # seconds between a running trial's heartbeats
# seconds before a promotion claimed but never created (its process died) is taken over
CLAIM_GRACE = GRACE_PERIOD


@dataclass(frozen=True)
class StoredStudyFile:
    study_name: str
    source: str
    text: str
    overrides: tuple[str, ...]
    hash: str


class Store:
    """One storage URL: Optuna's RDBStorage and our tables on the same database."""

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.masked_url = mask_url(self.url)
        check_url(self.url)
        self._engine: Engine | None = None
        self._optuna: optuna.storages.RDBStorage | None = None
        self._checked_out = CheckedOut()  # SQLite: this process's connections, both engines

    # -- errors ---------------------------------------------------------------------------
    def as_error(self, exc: BaseException) -> StorageError:
        """``exc`` as a one-line StorageError naming the store (its password masked)."""
        cause: BaseException | None = exc
        while cause is not None and getattr(cause, "orig", None) is None:  # Optuna's wrapping
            cause = cause.__cause__
        reason = str(getattr(cause, "orig", None) or exc).strip().splitlines()[0]
        for secret in url_secrets(self.url):
            reason = reason.replace(secret, "***")
        if "readonly database" in reason or "read-only" in reason.lower():
            reason += " (the store is read-only for this user: the read-only commands can read it)"
        elif "disk is full" in reason or "No space left" in reason:
            where = self.sqlite_file.parent if self.sqlite_file else "the database server"
            reason += (
                f"; free space on the disk of {where} and rerun the same command (a trial left "
                "running is queued again)"
            )
        return StorageError(f"cannot use storage {self.masked_url}: {reason}")

    @contextmanager
    def writes(self) -> Iterator[None]:
        """Database errors of a study's run (Optuna's storage included) become one-line
        StorageErrors; nothing else is caught (training's own errors pass)."""
        try:
            yield
        except StorageError:
            raise
        except SQLAlchemyError as exc:
            raise self.as_error(exc) from exc
        except Exception as exc:
            from optuna.exceptions import StorageInternalError

            if not isinstance(exc, StorageInternalError):
                raise
            raise self.as_error(exc) from exc

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Database errors and a missing driver inside the block become one-line StorageErrors."""
        try:
            yield
        except StorageError:
            raise
        except ImportError as exc:  # the URL's database driver is not installed
            raise StorageError(
                f"cannot use storage {self.masked_url}: its database driver is missing "
                f"({exc.name or exc}); install it, e.g. pip install 'sweeper[postgres]' for "
                "postgresql+psycopg"
            ) from exc
        except (SQLAlchemyError, OSError) as exc:
            raise self.as_error(exc) from exc

    @property
    def sqlite_file(self) -> Path | None:
        """The store's SQLite file on disk; None for other databases, ``:memory:`` and URI forms."""
        return sqlite_file(self.url)

    # -- engines --------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            check_sqlite_dir(self.url)
            with self.guard():
                engine = sa.create_engine(self.url, **engine_kwargs(self.url))
                if is_sqlite(self.url):
                    sqlite_pragmas(engine)
                    self._checked_out.watch(engine)
                Base.metadata.create_all(engine)
                self._engine = engine
        return self._engine

    def optuna_storage(self, *, heartbeat: bool = True) -> optuna.storages.RDBStorage:
        """Optuna's storage on this URL; with ``heartbeat``, killed trials are retried."""
        if self._optuna is None:
            import optuna
            from optuna.exceptions import ExperimentalWarning
            from optuna.storages import RetryHeartbeatStaleTrialCallback

            check_sqlite_dir(self.url)
            hb: dict[str, Any] = {}
            if heartbeat:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ExperimentalWarning)
                    # the copy keeps the reported epochs: it resumes from the checkpoint
                    retry = RetryHeartbeatStaleTrialCallback(inherit_intermediate_values=True)
                hb = {
                    "heartbeat_interval": HEARTBEAT_INTERVAL,
                    "grace_period": GRACE_PERIOD,
                    "heartbeat_stale_trial_callback": retry,
                }
            with self.guard(), warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                self._optuna = optuna.storages.RDBStorage(
                    self.url, engine_kwargs=engine_kwargs(self.url), **hb
                )
                if is_sqlite(self.url):
                    sqlite_serializable(self._optuna.engine)
                    self._checked_out.watch(self._optuna.engine)
        return self._optuna

    def roll_back_abandoned(self) -> int:
        """End the SQLite transactions an interrupt left open on this thread's connections (see
        :class:`~sweeper.store.storage_url.CheckedOut`), so that this process's next write does
        not wait on its own lock; call it where the thread runs no database call of its own."""
        return self._checked_out.roll_back_abandoned()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._optuna is not None:
            self._optuna.engine.dispose()
            self._optuna = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.guard(), Session(self.engine) as session, session.begin():
            yield session

    # -- study files ----------------------------------------------------------------------
    def _has_table(self, name: str) -> bool:
        """Whether table ``name`` exists, asked without creating tables (or a SQLite file): a
        store of Optuna's alone, or one written before the table existed, has none."""
        if self._engine is not None:
            return True  # this process opened the store for writing: every table is there
        file = self.sqlite_file
        if file is not None and not file.is_file():
            return False
        with self.guard():
            engine = sa.create_engine(self.url)
            try:
                return sa.inspect(engine).has_table(name)
            finally:
                engine.dispose()

    def _has_own_tables(self) -> bool:
        return self._has_table(StudyFileRow.__tablename__)

    def study_file(self, study_name: str) -> StoredStudyFile | None:
        if not self._has_own_tables():  # a store of Optuna's alone (or none): nothing stored
            return None
        with self.session() as s:
            row = s.scalars(
                sa.select(StudyFileRow).where(StudyFileRow.study_name == study_name)
            ).first()
            if row is None:
                return None
            return StoredStudyFile(
                row.study_name, row.source, row.text, tuple(json.loads(row.overrides)), row.hash
            )

    def check_study_file(
        self,
        study_name: str,
        digest: str,
        *,
        allow_changed: bool,
        text: str | None = None,
        overrides: tuple[str, ...] = (),
    ) -> None:
        """Refuse a study file whose hash differs from the stored one (before any write).

        With the file's ``text`` and ``overrides``, a change of ``--set`` values alone is named
        as such, with the stored and the new values, and a changed file by the settings that
        differ, old -> new (:mod:`sweeper.studyfile.study_diff`).
        """
        stored = self.study_file(study_name)
        if stored is None or stored.hash == digest or allow_changed:
            return
        if text is not None and stored.text == text:
            before = " ".join(f"--set {o}" for o in stored.overrides) or "no --set"
            now = " ".join(f"--set {o}" for o in overrides) or "no --set"
            raise StudyChangedError(
                f"study {study_name!r} in {self.masked_url} was run with {before}, this run has "
                f"{now}; use the same --set values, another --study-name, or --allow-changed to "
                "continue it with the new ones"
            )
        changed = ""
        if text is not None:
            from sweeper.studyfile.study_diff import changes_text

            found = changes_text(stored.text, stored.overrides, text, overrides)
            changed = "" if found is None else f"; the study file changed: {found}"
        raise StudyChangedError(
            f"study {study_name!r} in {self.masked_url} was created from a different study "
            f"file (stored from {stored.source}){changed}; use the same file, another "
            "--study-name, or --allow-changed to continue it with the new file"
        )

    def save_study_file(
        self, study_name: str, source: str, text: str, overrides: tuple[str, ...], digest: str
    ) -> None:
        with self.session() as s:
            row = s.scalars(
                sa.select(StudyFileRow).where(StudyFileRow.study_name == study_name)
            ).first()
            if row is None:
                s.add(
                    StudyFileRow(
                        study_name=study_name,
                        source=source,
                        text=text,
                        overrides=json.dumps(list(overrides)),
                        hash=digest,
                    )
                )
            elif row.hash != digest:
                row.source, row.text, row.hash = source, text, digest
                row.overrides = json.dumps(list(overrides))
                row.updated_at = utcnow()

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, study_name: str, environment: Mapping[str, Any]) -> int:
        with self.session() as s:
            row = RunRow(
                study_name=study_name,
                host=host_name(),
                pid=os.getpid(),
                environment=json.dumps(environment, default=str),
            )
            s.add(row)
            s.flush()
            return int(row.id)

    def finish_run(self, run_id: int) -> None:
        with self.session() as s:
            row = s.get(RunRow, run_id)
            if row is not None:
                row.finished_at = utcnow()

    # -- per-epoch records ----------------------------------------------------------------
    def add_epoch(
        self,
        study_name: str,
        trial_id: int,
        trial_number: int,
        record: Mapping[str, Any],
        run_id: int | None = None,
    ) -> None:
        """Write one epoch of a trial as it ends; writing the same (trial, epoch) twice keeps one
        row. The ledger gets a row each time, in the same transaction: the epoch was trained."""
        fields = {k: record[k] for k in ("epoch", "step", "lr", "seconds")}
        metrics = {k: record.get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        for key, value in metrics.items():  # NaN/inf are stored as NULL
            if value is not None and not (abs(value) < float("inf")):
                metrics[key] = None
        with self.session() as s:
            row = s.scalars(
                sa.select(EpochRow).where(
                    EpochRow.trial_id == trial_id, EpochRow.epoch == fields["epoch"]
                )
            ).first()
            if row is None:
                row = EpochRow(study_name=study_name, trial_id=trial_id, trial_number=trial_number)
                s.add(row)
            for key, value in {**fields, **metrics, "run_id": run_id}.items():
                setattr(row, key, value)
            s.add(
                LedgerRow(
                    study_name=study_name,
                    trial_number=trial_number,
                    epoch=fields["epoch"],
                    val_accuracy=metrics["val_accuracy"],
                    run_id=run_id,
                )
            )

    def add_spent_epoch(self, study_name: str, trial_number: int, epoch: int) -> None:
        """Write one epoch trained outside a trial (``confirm``'s retraining of trial
        ``trial_number``) to the ledger alone: it counts in the budget, and carries no
        validation accuracy (it is no search result for the anytime curve)."""
        with self.session() as s:
            s.add(
                LedgerRow(
                    study_name=study_name,
                    trial_number=trial_number,
                    epoch=epoch,
                    val_accuracy=None,
                    run_id=None,
                )
            )

    def epochs_spent(self, study_name: str) -> int:
        """Epochs trained for the study so far, by every process and run."""
        if not self._has_ledger():
            return 0
        with self.session() as s:
            q = sa.select(sa.func.count()).where(LedgerRow.study_name == study_name)
            return int(s.scalar(q) or 0)

    def ledger(self, study_name: str) -> list[dict[str, Any]]:
        """The epochs trained for the study, in training order: trial_number, epoch,
        val_accuracy, created_at (the anytime curve of the search)."""
        if not self._has_ledger():
            return []
        cols = [LedgerRow.trial_number, LedgerRow.epoch, LedgerRow.val_accuracy]
        with self.session() as s:
            result = s.execute(
                sa.select(*cols, LedgerRow.created_at)
                .where(LedgerRow.study_name == study_name)
                .order_by(LedgerRow.id)
            )
            return [dict(r._mapping) for r in result]

    def _has_ledger(self) -> bool:
        return self._has_table(LedgerRow.__tablename__)

    # -- promotions -----------------------------------------------------------------------
    def now(self) -> datetime:
        return utcnow()

    def claim_promotion(self, study_name: str, parent_number: int) -> bool:
        """Claim the continuation of a paused trial; False when another process has it."""
        try:
            with self.session() as s:
                s.add(PromotionRow(study_name=study_name, parent_number=parent_number))
        except StorageError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                return False
            raise
        return True

    def renew_claim(self, study_name: str, parent_number: int) -> bool:
        """Take over a claim whose process died before continuing the trial (one taker wins)."""
        cutoff = utcnow() - timedelta(seconds=CLAIM_GRACE)
        with self.session() as s:
            result = s.execute(
                sa.update(PromotionRow)
                .where(
                    PromotionRow.study_name == study_name,
                    PromotionRow.parent_number == parent_number,
                    PromotionRow.created_at < cutoff,
                )
                .values(created_at=utcnow())
            )
            return int(getattr(result, "rowcount", 0) or 0) == 1

    def promotion_claims(self, study_name: str) -> list[tuple[int, datetime]]:
        """(parent trial number, claimed at) of every promotion claimed in the study."""
        with self.session() as s:
            rows = s.execute(
                sa.select(PromotionRow.parent_number, PromotionRow.created_at).where(
                    PromotionRow.study_name == study_name
                )
            )
            return [(int(p), at) for p, at in rows]

    def copy_epochs(
        self, study_name: str, from_trial_id: int, to_trial_id: int, to_number: int, below: int
    ) -> int:
        """Copy epochs ``< below`` of one trial to another that resumed from its checkpoint."""
        with self.session() as s:
            have = set(s.scalars(sa.select(EpochRow.epoch).where(EpochRow.trial_id == to_trial_id)))
            rows = s.scalars(
                sa.select(EpochRow).where(
                    EpochRow.trial_id == from_trial_id, EpochRow.epoch < below
                )
            ).all()
            n = 0
            for r in rows:
                if r.epoch in have:
                    continue
                s.add(
                    EpochRow(
                        study_name=study_name,
                        trial_id=to_trial_id,
                        trial_number=to_number,
                        **{k: getattr(r, k) for k in (*EPOCH_FIELDS, "run_id")},
                    )
                )
                n += 1
            return n

    def trim_epochs(self, trial_id: int, last_epoch: int) -> int:
        """Delete a trial's rows after ``last_epoch`` (left by an earlier, longer attempt)."""
        with self.session() as s:
            result = s.execute(
                sa.delete(EpochRow).where(
                    EpochRow.trial_id == trial_id, EpochRow.epoch > last_epoch
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def epochs(self, study_name: str) -> list[dict[str, Any]]:
        """Every stored epoch of the study, ordered by trial number then epoch."""
        cols = [c for c in EpochRow.__table__.columns if c.name not in ("id", "created_at")]
        with self.session() as s:
            result = s.execute(
                sa.select(*cols)
                .where(EpochRow.study_name == study_name)
                .order_by(EpochRow.trial_number, EpochRow.trial_id, EpochRow.epoch)
            )
            return [dict(r._mapping) for r in result]
