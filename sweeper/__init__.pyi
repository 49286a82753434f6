# Types of the names sweeper/__init__.py loads from sweeper.api on first use.
from sweeper.api import Best as Best
from sweeper.api import Study as Study
from sweeper.api import TuneResult as TuneResult
from sweeper.api import load as load
from sweeper.api import tune as tune

__version__: str
__all__ = ["Best", "Study", "TuneResult", "__version__", "load", "tune"]
API_NAMES: tuple[str, ...]
