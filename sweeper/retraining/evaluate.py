"""Did tuning help? Retrain the best trials and the best baseline, score them on the test set.

A study picks its best trial on validation accuracy, so that accuracy flatters it. Here the
``top`` best COMPLETE tuned trials (baselines excluded) and the best COMPLETE baseline trial are
rebuilt from the stored study file, retrained ``repeats`` times each (seeds ``spec.seed + 0 ..
repeats - 1``) on the training and validation splits together, and scored once on the test
split, which no trial has seen. Each run is stored in ``sweeper_evaluations``.

The schedules are rebuilt with the steps per epoch of the merged split, so that intervals given
in epochs keep their meaning. The reported difference is the best tuned trial *by validation
accuracy* (the one tuning would hand over) minus the baseline, on mean test accuracy.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import sqlalchemy as sa

from sweeper.errors import EvaluationError
from sweeper.retraining.retrain import train_and_test, trial_config
from sweeper.search.trial_record import BASELINE_ATTR
from sweeper.store.store import Store
from sweeper.store.tables import Base, EvaluationRow

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from sweeper.search.space import TrialConfig
    from sweeper.studyfile.study_spec import StudySpec
    from sweeper.training.data import Dataset
    from sweeper.training.train_trial import TrainSettings

log = logging.getLogger(__name__)

DEFAULT_TOP = 3
DEFAULT_REPEATS = 3


@dataclass(frozen=True)
class EvalRun:
    """One retraining of one configuration."""

    trial_number: int
    label: str
    is_baseline: bool
    seed: int
    test_accuracy: float
    test_loss: float | None  # None when the run diverged
    seconds: float


@dataclass(frozen=True)
class ConfigEvaluation:
    """One trial's configuration, retrained ``len(runs)`` times."""

    trial_number: int
    label: str
    is_baseline: bool
    val_accuracy: float  # the study's value of the trial
    runs: tuple[EvalRun, ...]

    @property
    def accuracies(self) -> list[float]:
        return [r.test_accuracy for r in self.runs]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        """Sample standard deviation of the test accuracy (0 for a single run)."""
        return statistics.stdev(self.accuracies) if len(self.runs) > 1 else 0.0


@dataclass(frozen=True)
class Evaluation:
    study_name: str
    storage: str
    epochs: int
    repeats: int
    n_train: int  # training + validation examples
    n_test: int
    configs: tuple[ConfigEvaluation, ...]  # tuned trials by validation accuracy, then baseline

    @property
    def tuned(self) -> list[ConfigEvaluation]:
        return [c for c in self.configs if not c.is_baseline]

    @property
    def baseline(self) -> ConfigEvaluation | None:
        return next((c for c in self.configs if c.is_baseline), None)

    @property
    def best_tuned(self) -> ConfigEvaluation | None:
        """The tuned trial the study picked: highest validation accuracy."""
        tuned = self.tuned
        return tuned[0] if tuned else None

    @property
    def difference(self) -> float | None:
        """Mean test accuracy of the best tuned trial minus the baseline's."""
        best, base = self.best_tuned, self.baseline
        if best is None or base is None:
            return None
        return best.mean - base.mean

    @property
    def difference_se(self) -> float | None:
        """Standard error of :attr:`difference` (0 when each was run once)."""
        best, base = self.best_tuned, self.baseline
        if best is None or base is None:
            return None
        return math.sqrt(best.std**2 / len(best.runs) + base.std**2 / len(base.runs))


# --------------------------------------------------------------------------------------------
# The study, its spec and its trials
# --------------------------------------------------------------------------------------------


def check_store_exists(store: Store) -> None:
    file = store.sqlite_file
    if file is not None and not file.is_file():
        raise EvaluationError(
            f"no store at {store.masked_url}: give the --storage the study was tuned in"
        )


def stored_spec(store: Store, study_name: str) -> StudySpec:
    """Rebuild the study's spec from the study file kept in the store."""
    from sweeper.errors import ConfigError
    from sweeper.search.runner import load_stored_spec

    try:
        return load_stored_spec(store, study_name)
    except ConfigError as exc:
        raise EvaluationError(str(exc)) from None


def select_trials(
    trials: list[FrozenTrial], top: int
) -> tuple[list[FrozenTrial], FrozenTrial | None]:
    """The ``top`` best complete tuned trials (best first) and the best complete baseline."""
    from optuna.trial import TrialState

    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    complete.sort(key=lambda t: (-float(t.value or 0.0), t.number))
    tuned = [t for t in complete if not t.user_attrs.get(BASELINE_ATTR)][:top]
    baseline = next((t for t in complete if t.user_attrs.get(BASELINE_ATTR)), None)
    return tuned, baseline


def label_of(trial: FrozenTrial, config: TrialConfig, spe: int, epochs: int) -> str:
    baseline = trial.user_attrs.get(BASELINE_ATTR)
    if baseline:
        return str(baseline)
    text = config.schedule(spe, epochs).describe()
    if config.optimizer.describe() != "sgd":
        text += f" + {config.optimizer.describe()}"
    return text


def _ensure_table(store: Store) -> None:
    Base.metadata.create_all(store.engine, tables=[cast(sa.Table, EvaluationRow.__table__)])


def _save_run(store: Store, study_name: str, run: EvalRun, epochs: int) -> None:
    with store.session() as s:
        s.add(
            EvaluationRow(
                study_name=study_name,
                trial_number=run.trial_number,
                label=run.label,
                is_baseline=run.is_baseline,
                seed=run.seed,
                test_accuracy=run.test_accuracy,
                test_loss=run.test_loss,
                epochs=epochs,
            )
        )


def load_study(store: Store, study_name: str) -> Any:
    """The Optuna study ``study_name`` of ``store``; an EvaluationError naming the studies there
    when it has none of that name."""
    import optuna

    try:
        return optuna.load_study(
            study_name=study_name, storage=store.optuna_storage(heartbeat=False)
        )
    except KeyError:
        names = optuna.get_all_study_names(store.optuna_storage(heartbeat=False))
        known = f"; studies there: {', '.join(names)}" if names else "; it holds no study"
        raise EvaluationError(f"no study {study_name!r} in {store.masked_url}{known}") from None


def _chosen_trials(
    store: Store, study_name: str, top: int
) -> tuple[list[FrozenTrial], FrozenTrial | None]:
    """The study's ``top`` best complete tuned trials and its best baseline; an EvaluationError
    when the store, the study or any complete trial is missing."""
    check_store_exists(store)
    study = load_study(store, study_name)
    tuned, baseline = select_trials(study.get_trials(deepcopy=False), top)
    if not tuned and baseline is None:
        raise EvaluationError(
            f"study {study_name!r} has no complete trial yet; run 'sweeper tune' first"
        )
    return tuned, baseline


@dataclass(frozen=True)
class _Retraining:
    """What the runs of one configuration share: where they are stored, what they retrain."""

    store: Store
    study_name: str
    trial: FrozenTrial
    label: str
    is_baseline: bool
    config: TrialConfig
    settings: TrainSettings  # its epochs are the runs'


def _retrain(
    job: _Retraining,
    data: tuple[np.ndarray, np.ndarray, Dataset],
    seeds: range,
    progress: Callable[[EvalRun], None] | None,
) -> ConfigEvaluation:
    """The configuration retrained once per seed on ``data`` (x_train, y_train, the dataset
    whose test split scores it), each run stored and passed to ``progress``."""
    from sweeper.training.train_trial import steps_per_epoch

    x_train, y_train, dataset = data
    trial = job.trial
    runs: list[EvalRun] = []
    spe = steps_per_epoch(len(x_train), job.settings.batch_size)
    training = (job.config.schedule(spe, job.settings.epochs), job.config.optimizer)
    for seed in seeds:
        t0 = time.perf_counter()
        accuracy, loss = train_and_test(x_train, y_train, dataset, training, job.settings, seed)
        run = EvalRun(
            trial.number, job.label, job.is_baseline, seed, accuracy, loss, time.perf_counter() - t0
        )
        _save_run(job.store, job.study_name, run, job.settings.epochs)
        runs.append(run)
        if progress is not None:
            progress(run)
    assert trial.value is not None
    return ConfigEvaluation(
        trial.number, job.label, job.is_baseline, float(trial.value), tuple(runs)
    )


def evaluate(
    study_name: str,
    *,
    storage: str | None = None,
    top: int = DEFAULT_TOP,
    repeats: int = DEFAULT_REPEATS,
    epochs: int | None = None,
    progress: Callable[[EvalRun], None] | None = None,
) -> Evaluation:
    """Retrain the study's ``top`` best tuned trials and its best baseline ``repeats`` times.

    ``epochs`` defaults to the study's. Raises :class:`EvaluationError` for an unknown study, a
    study without complete trials or without a stored study file.
    """
    from sweeper.training.data import load_dataset
    from sweeper.training.train_trial import steps_per_epoch

    if top < 1 or repeats < 1:
        raise EvaluationError(f"top and repeats must be >= 1, got top={top}, repeats={repeats}")
    if epochs is not None and epochs < 1:
        raise EvaluationError(f"epochs must be >= 1, got {epochs}")
    store = Store(storage)
    tuned, baseline = _chosen_trials(store, study_name, top)
    spec = stored_spec(store, study_name)
    _ensure_table(store)
    dataset = load_dataset(spec.data)
    x_train = np.concatenate([dataset.x_train, dataset.x_val])
    y_train = np.concatenate([dataset.y_train, dataset.y_val])
    n_epochs = epochs or spec.train.epochs
    settings = replace(spec.train, epochs=n_epochs)
    spe = steps_per_epoch(len(x_train), settings.batch_size)
    log.info(
        "evaluating %s: %d tuned trial(s)%s, %d run(s) each, %d epochs on %d examples",
        study_name,
        len(tuned),
        " + baseline" if baseline is not None else "",
        repeats,
        n_epochs,
        len(x_train),
    )
    configs: list[ConfigEvaluation] = []
    seeds = range(spec.seed, spec.seed + repeats)
    for trial in [*tuned, *([baseline] if baseline is not None else [])]:
        config = trial_config(trial, spec.space)
        label = label_of(trial, config, spe, n_epochs)
        job = _Retraining(store, study_name, trial, label, trial is baseline, config, settings)
        configs.append(_retrain(job, (x_train, y_train, dataset), seeds, progress))
    result = Evaluation(
        study_name=study_name,
        storage=store.masked_url,
        epochs=n_epochs,
        repeats=repeats,
        n_train=len(x_train),
        n_test=len(dataset.y_test),
        configs=tuple(configs),
    )
    store.close()
    return result


def stored_evaluations(store: Store, study_name: str) -> list[dict[str, Any]]:
    """Every stored evaluation run of the study, oldest first."""
    _ensure_table(store)
    cols = [c for c in EvaluationRow.__table__.columns if c.name != "id"]
    with store.session() as s:
        result = s.execute(
            sa.select(*cols)
            .where(EvaluationRow.study_name == study_name)
            .order_by(EvaluationRow.id)
        )
        return [dict(r._mapping) for r in result]
