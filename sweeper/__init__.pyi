# Types of the names sweeper/__init__.py loads from sweeper.api on first use.
from sweeper.api import Best as Best
from sweeper.api import Study as Study
from sweeper.api import TuneInterrupted as TuneInterrupted
from sweeper.api import TuneResult as TuneResult
from sweeper.api import WorkerRun as WorkerRun
from sweeper.api import join as join
from sweeper.api import load as load
from sweeper.api import tune as tune

__version__: str
__all__ = [
    "Best",
    "Study",
    "TuneInterrupted",
    "TuneResult",
    "WorkerRun",
    "__version__",
    "join",
    "load",
    "tune",
]
API_NAMES: tuple[str, ...]
