"""Confirm the winner: retrain a study's best configurations with several seeds each.

The ``top`` best complete configurations (:func:`sweeper.retraining.confirmation.candidates`:
baselines excluded, the reference configuration included) are rebuilt from the stored study
file and retrained ``seeds`` times each, as their trials trained: on the training split, for the
study's length, with the study's steps per epoch; each run is scored once on the validation
split (never the test split, which ``evaluate`` keeps for the last word). Repeat ``i`` is seeded
with the study's seed ``+ 1 + i``: the study's own seed trained the run that picked them, and
running it again would bring back the luck this command removes. Every seed gives each
configuration the same initial weights and batches, so the configurations are compared paired
(:mod:`sweeper.retraining.confirmation`).

Each complete run is one row of ``sweeper_confirmations``, unique per (configuration, repeat,
epochs): the same command run again trains only the runs missing (after Ctrl-C, SIGTERM or a
killed process), and two processes never store one run twice. Every epoch trained, including
those of a run cut short, is written to the study's ledger as it ends, so it counts in the
study's epoch budget (``Store.epochs_spent``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from sweeper.errors import ConfirmError, StorageError
from sweeper.interrupts import INTERRUPTS
from sweeper.retraining.confirmation import (
    DEFAULT_SEEDS,
    DEFAULT_TOP,
    MIN_SEEDS,
    Confirmation,
    ConfirmRun,
    candidates,
    confirmation,
)
from sweeper.retraining.evaluate import check_store_exists, load_study, stored_spec
from sweeper.retraining.retrain import train_and_score, trial_config
from sweeper.search.configurations import Configuration, configurations
from sweeper.store.store import Store
from sweeper.store.tables import ConfirmationRow
from sweeper.training.backend import CONSOLE

if TYPE_CHECKING:
    from sweeper.studyfile.study_spec import StudySpec
    from sweeper.training.data import Dataset

log = logging.getLogger(__name__)


def check_request(top: int | None, seeds: int) -> None:
    """One line for a request no study could satisfy."""
    if top is not None and top < 1:
        raise ConfirmError(f"--top must be at least 1, got {top}")
    if seeds < MIN_SEEDS:
        raise ConfirmError(
            f"--seeds must be at least {MIN_SEEDS}: a spread needs two runs per configuration, "
            f"got {seeds}"
        )


def chosen(study_name: str, configs: list[Configuration], top: int | None) -> list[Configuration]:
    """The ``top`` best complete candidates; one line when the study has fewer. ``None``: the
    default, :data:`~sweeper.retraining.confirmation.DEFAULT_TOP` or as many as there are."""
    found = candidates(configs)
    if not found:
        raise ConfirmError(
            f"study {study_name!r} has no complete configuration besides the baselines yet; "
            "run 'sweeper tune' first"
        )
    if top is None:
        return found[:DEFAULT_TOP]
    if top > len(found):
        n = len(found)
        raise ConfirmError(
            f"--top {top}: study {study_name!r} has {n} complete configuration"
            f"{'s' if n != 1 else ''} besides the baselines; give --top {n} or less"
        )
    return found[:top]


def stored_runs(store: Store, study_name: str, epochs: int) -> list[ConfirmRun]:
    """The study's stored confirming runs of ``epochs`` epochs, oldest first."""
    with store.session() as s:
        rows = s.scalars(
            sa.select(ConfirmationRow)
            .where(ConfirmationRow.study_name == study_name, ConfirmationRow.epochs == epochs)
            .order_by(ConfirmationRow.id)
        ).all()
        return [_run_of(r) for r in rows]


def _run_of(row: ConfirmationRow) -> ConfirmRun:
    return ConfirmRun(
        config_number=row.config_number,
        trial_number=row.trial_number,
        repeat=row.repeat,
        seed=row.seed,
        val_accuracy=row.val_accuracy,
        val_loss=row.val_loss,
        seconds=row.seconds,
    )


def _save(
    store: Store, study_name: str, run: ConfirmRun, epochs: int, request: tuple[int, int]
) -> bool:
    """Store a complete run; False when another process stored that run first."""
    try:
        with store.session() as s:
            s.add(
                ConfirmationRow(
                    study_name=study_name,
                    config_number=run.config_number,
                    trial_number=run.trial_number,
                    repeat=run.repeat,
                    seed=run.seed,
                    val_accuracy=run.val_accuracy,
                    val_loss=run.val_loss,
                    epochs=epochs,
                    seconds=run.seconds,
                    request_top=request[0],
                    request_seeds=request[1],
                )
            )
    except StorageError as exc:
        if isinstance(exc.__cause__, sa.exc.IntegrityError):
            return False
        raise
    return True


class _Runner:
    """The runs of one ``confirm`` call: what they share, and the epochs they trained."""

    def __init__(
        self,
        store: Store,
        spec: StudySpec,
        study_name: str,
        dataset: Dataset,
        request: tuple[int, int],
    ) -> None:
        self.store, self.spec, self.study_name, self.dataset = store, spec, study_name, dataset
        self.request = request
        self.settings = spec.train
        self.epochs_trained = 0

    def _spent(self, trial_number: int, epoch: int) -> None:
        with INTERRUPTS.deferred():  # the ledger row is written whole, then a stop is raised
            self.store.add_spent_epoch(self.study_name, trial_number, epoch)
            self.epochs_trained += 1

    def run(self, config: Configuration, repeat: int) -> tuple[ConfirmRun, bool]:
        """Train one repeat of ``config`` and store it: (the run, whether this call stored it)."""
        from sweeper.training.train_trial import steps_per_epoch

        ds = self.dataset
        trial = config.last
        built = trial_config(trial, self.spec.space)
        spe = steps_per_epoch(len(ds.x_train), self.settings.batch_size)
        training = (built.schedule(spe, self.settings.epochs), built.optimizer)
        seed = self.spec.seed + 1 + repeat
        t0 = time.perf_counter()
        accuracy, loss = train_and_score(
            (ds.x_train, ds.y_train),
            (ds.x_val, ds.y_val),
            ds,
            training,
            self.settings,
            seed,
            on_epoch=lambda epoch: self._spent(trial.number, epoch),
        )
        INTERRUPTS.check()  # a run cut short by a stop is not a run
        run = ConfirmRun(
            config.number, trial.number, repeat, seed, accuracy, loss, time.perf_counter() - t0
        )
        with INTERRUPTS.deferred():
            saved = _save(self.store, self.study_name, run, self.settings.epochs, self.request)
        if not saved:
            log.info("trial %d, repeat %d: stored by another process first", trial.number, repeat)
        return run, saved


def _load(spec: StudySpec) -> Dataset:
    from sweeper.training.data import load_dataset

    return load_dataset(spec.data)


@INTERRUPTS.handling
def confirm(
    study_name: str,
    *,
    storage: str | None = None,
    top: int | None = None,
    seeds: int = DEFAULT_SEEDS,
    progress: Callable[[ConfirmRun], None] | None = None,
) -> Confirmation:
    """Retrain the study's ``top`` best complete configurations (default 3, or as many as it
    has when fewer) ``seeds`` times each on the
    training split, score each run on the validation split, and store every run; the runs
    already stored (by an earlier, interrupted call) are not trained again.

    Raises :class:`ConfirmError` (one line, the store untouched) for ``top`` < 1, ``seeds`` < 2,
    a study with no complete configuration besides its baselines or fewer than ``top``, and
    :class:`~sweeper.errors.EvaluationError` for an unknown study or store. Ctrl-C or
    SIGTERM raises :class:`~sweeper.interrupts.SweepInterrupted`, every complete run stored.
    """
    check_request(top, seeds)
    store = Store(storage)
    try:
        return _confirm(store, study_name, top, seeds, progress)
    finally:
        store.close()


def _confirm(
    store: Store,
    study_name: str,
    top: int | None,
    seeds: int,
    progress: Callable[[ConfirmRun], None] | None,
) -> Confirmation:
    check_store_exists(store)
    study = load_study(store, study_name)
    top_configs = chosen(study_name, configurations(study.get_trials(deepcopy=False)), top)
    top = len(top_configs)
    spec = stored_spec(store, study_name)  # nothing is written before this line
    epochs = spec.train.epochs
    have = {(r.config_number, r.repeat) for r in stored_runs(store, study_name, epochs)}
    # seed by seed, so that the runs of an interrupted call stay paired
    todo = [(c, i) for i in range(seeds) for c in top_configs if (c.number, i) not in have]
    trained = 0
    runner: _Runner | None = None
    if todo:
        dataset = _load(spec)
        runner = _Runner(store, spec, study_name, dataset, (top, seeds))
        stored = top * seeds - len(todo)
        CONSOLE.info(
            "confirming %s: %d of %d runs to train%s, %d epochs each on %s training examples, "
            "scored on %s validation examples",
            study_name,
            len(todo),
            top * seeds,
            f" ({stored} stored already)" if stored else "",
            epochs,
            f"{len(dataset.y_train):,}",
            f"{len(dataset.y_val):,}",
        )
        for config, repeat in todo:
            run, saved = runner.run(config, repeat)
            trained += saved
            if progress is not None:
                progress(run)
    return confirmation(
        study_name,
        top_configs,
        stored_runs(store, study_name, epochs),
        seeds=seeds,
        epochs=epochs,
        trained=trained,
        epochs_trained=runner.epochs_trained if runner is not None else 0,
        epochs_spent=store.epochs_spent(study_name),
        budget_epochs=study.user_attrs.get("budget_epochs"),
    )
