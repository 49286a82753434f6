"""sweeper's own tables, prefixed ``sweeper_``, beside Optuna's in one database: what Optuna has
no place for. Every table is declared here, and nowhere else.

* ``sweeper_epochs`` — one row per finished epoch of every trial (pruned, diverged and failed
  ones included), written as the epoch ends;
* ``sweeper_study_files`` — each study's file text, overrides and their hash;
* ``sweeper_runs`` — one row per ``tune``/``worker`` process: host, pid, start/end and the
  environment (package versions, Keras backend, devices);
* ``sweeper_ledger`` — one row per epoch actually trained, in training order, never copied nor
  deleted: the study's spent epochs (its budget) and its anytime curve; an epoch of ``confirm``'s
  retraining has no ``val_accuracy`` (it is spent, but no search result);
* ``sweeper_promotions`` — one row per paused trial a worker has claimed to continue
  (:mod:`sweeper.search.promotion`), so no two workers continue the same one;
* ``sweeper_places`` — one row per place of a study's target a worker has claimed for a new
  configuration (:mod:`sweeper.search.places`), unique per (study, place), so no more
  configurations start than the target has places;
* ``sweeper_evaluations`` — test accuracies of retrained configurations (:mod:`sweeper.retraining.evaluate`);
* ``sweeper_confirmations`` — validation accuracies of the best configurations retrained with
  several seeds (:mod:`sweeper.retraining.confirm`), one row per complete run, never two for one
  (configuration, repeat, epochs);
* ``sweeper_lr_finds`` — LR range tests and the ranges they gave (:mod:`sweeper.search.lrfind`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

EPOCH_FIELDS = (
    "epoch",
    "step",
    "lr",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "seconds",
)


def utcnow() -> datetime:
    """Naive UTC now, as stored in sweeper's tables."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class EpochRow(Base):
    __tablename__ = "sweeper_epochs"
    __table_args__ = (sa.UniqueConstraint("trial_id", "epoch", name="uq_sweeper_epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str] = mapped_column(sa.String(512), index=True)
    trial_id: Mapped[int] = mapped_column(index=True)  # Optuna's trial_id
    trial_number: Mapped[int]
    epoch: Mapped[int]  # 0-based
    step: Mapped[int]
    lr: Mapped[float]
    loss: Mapped[float | None]
    accuracy: Mapped[float | None]
    val_loss: Mapped[float | None]
    val_accuracy: Mapped[float | None]
    seconds: Mapped[float]
    run_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StudyFileRow(Base):
    __tablename__ = "sweeper_study_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str] = mapped_column(sa.String(512), unique=True)
    source: Mapped[str] = mapped_column(sa.Text)
    text: Mapped[str] = mapped_column(sa.Text)
    overrides: Mapped[str] = mapped_column(sa.Text, default="[]")  # JSON list
    hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunRow(Base):
    __tablename__ = "sweeper_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str] = mapped_column(sa.String(512), index=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    environment: Mapped[str] = mapped_column(sa.Text, default="{}")  # JSON


class LedgerRow(Base):
    __tablename__ = "sweeper_ledger"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str] = mapped_column(sa.String(512), index=True)
    trial_number: Mapped[int]
    epoch: Mapped[int]  # 0-based
    val_accuracy: Mapped[float | None]
    run_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromotionRow(Base):
    __tablename__ = "sweeper_promotions"
    __table_args__ = (
        sa.UniqueConstraint("study_name", "parent_number", name="uq_sweeper_promotion"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str] = mapped_column(sa.String(512), index=True)
    parent_number: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlaceRow(Base):
    __tablename__ = "sweeper_places"
    __table_args__ = (sa.UniqueConstraint("study_name", "place", name="uq_sweeper_place"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str] = mapped_column(sa.String(512), index=True)
    place: Mapped[int]  # 0-based, below the study's target
    # the configuration holding it (its first trial's number); None: claimed, its trial not
    # taken yet (such a claim older than the heartbeat grace period is taken over)
    config: Mapped[int | None]
    token: Mapped[str] = mapped_column(sa.String(64))  # the claim's own: only it binds the place
    worker: Mapped[str] = mapped_column(sa.String(255))  # host:pid of the claimant
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # claimed (or taken over) at


class EvaluationRow(Base):
    __tablename__ = "sweeper_evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str] = mapped_column(sa.String(512), index=True)
    trial_number: Mapped[int]
    label: Mapped[str] = mapped_column(sa.Text)
    is_baseline: Mapped[bool]
    seed: Mapped[int]
    test_accuracy: Mapped[float | None]
    test_loss: Mapped[float | None]
    epochs: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfirmationRow(Base):
    __tablename__ = "sweeper_confirmations"
    __table_args__ = (
        sa.UniqueConstraint(
            "study_name", "config_number", "repeat", "epochs", name="uq_sweeper_confirmation"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str] = mapped_column(sa.String(512), index=True)
    config_number: Mapped[int]  # the configuration (its first trial's number)
    trial_number: Mapped[int]  # its complete trial, the one retrained
    repeat: Mapped[int]  # 0-based: the run's seed is the study's seed + 1 + repeat
    seed: Mapped[int]
    val_accuracy: Mapped[float]  # 0 when the run diverged
    val_loss: Mapped[float | None]  # None when the run diverged
    epochs: Mapped[int]
    seconds: Mapped[float]
    request_top: Mapped[int]  # the request that trained it: --top and --seeds
    request_seeds: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LrFindRow(Base):
    __tablename__ = "sweeper_lr_finds"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str] = mapped_column(sa.String(512), index=True)
    study_hash: Mapped[str] = mapped_column(sa.String(64))
    dataset: Mapped[str] = mapped_column(sa.Text)  # repr of the DataSpec
    model: Mapped[str] = mapped_column(sa.String(512))
    optimizer: Mapped[str] = mapped_column(sa.String(128))  # OptimizerSpec.describe()
    batch_size: Mapped[int]
    start: Mapped[float]
    end: Mapped[float]
    steps: Mapped[int]
    lrs: Mapped[str] = mapped_column(sa.Text)  # JSON list
    losses: Mapped[str] = mapped_column(sa.Text)  # JSON list
    smoothed: Mapped[str] = mapped_column(sa.Text)  # JSON list
    steepest_lr: Mapped[float]
    min_loss_lr: Mapped[float]
    diverged_lr: Mapped[float | None]
    low: Mapped[float]
    high: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
