# Types of the names sweeper/__init__.py loads from sweeper.api.facade on first use.
from sweeper.api.facade import Best as Best
from sweeper.api.facade import Study as Study
from sweeper.api.facade import TuneInterrupted as TuneInterrupted
from sweeper.api.facade import TuneResult as TuneResult
from sweeper.api.facade import WorkerRun as WorkerRun
from sweeper.api.facade import join as join
from sweeper.api.facade import keras_objects as keras_objects
from sweeper.api.facade import load as load
from sweeper.api.facade import tune as tune

__version__: str
__all__ = [
    "Best",
    "Study",
    "TuneInterrupted",
    "TuneResult",
    "WorkerRun",
    "__version__",
    "join",
    "keras_objects",
    "load",
    "tune",
]
API_NAMES: tuple[str, ...]
