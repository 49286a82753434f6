# Types of the names sweeper/__init__.py loads from sweeper.api.facade and sweeper.errors on first
# use.
from sweeper.api.facade import WorkerRun as WorkerRun
from sweeper.api.facade import join as join
from sweeper.api.facade import load as load
from sweeper.api.facade import tune as tune
from sweeper.api.results import Best as Best
from sweeper.api.results import TuneResult as TuneResult
from sweeper.api.study import Study as Study
from sweeper.api.study import TuneInterrupted as TuneInterrupted
from sweeper.errors import BestModelError as BestModelError
from sweeper.errors import ConfigError as ConfigError
from sweeper.errors import ConfirmError as ConfirmError
from sweeper.errors import DataError as DataError
from sweeper.errors import EvaluationError as EvaluationError
from sweeper.errors import KeywordError as KeywordError
from sweeper.errors import LrFindError as LrFindError
from sweeper.errors import NotTrainedError as NotTrainedError
from sweeper.errors import PlotUnavailableError as PlotUnavailableError
from sweeper.errors import RescaleError as RescaleError
from sweeper.errors import StorageError as StorageError
from sweeper.errors import StoreNotFoundError as StoreNotFoundError
from sweeper.errors import StudyChangedError as StudyChangedError
from sweeper.errors import StudyNotFoundError as StudyNotFoundError
from sweeper.errors import SweepAborted as SweepAborted
from sweeper.errors import SweeperError as SweeperError
from sweeper.errors import TooFewTrialsError as TooFewTrialsError
from sweeper.errors import UnknownPlotKindError as UnknownPlotKindError
from sweeper.training.handover import keras_objects as keras_objects

__version__: str
__all__ = [
    "Best",
    "BestModelError",
    "ConfigError",
    "ConfirmError",
    "DataError",
    "EvaluationError",
    "KeywordError",
    "LrFindError",
    "NotTrainedError",
    "PlotUnavailableError",
    "RescaleError",
    "StorageError",
    "StoreNotFoundError",
    "Study",
    "StudyChangedError",
    "StudyNotFoundError",
    "SweepAborted",
    "SweeperError",
    "TooFewTrialsError",
    "TuneInterrupted",
    "TuneResult",
    "UnknownPlotKindError",
    "WorkerRun",
    "__version__",
    "join",
    "keras_objects",
    "load",
    "tune",
]
API_NAMES: dict[str, str]
ERROR_NAMES: tuple[str, ...]
