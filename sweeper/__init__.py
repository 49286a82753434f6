"""sweeper: find the best learning-rate schedule for a Keras model.

From Python (a notebook, a script)::

    import sweeper

    result = sweeper.tune(model=build, data=(x, y), n_trials=20, epochs=5)
    result.best, result.trials, result.plot("history"), result.report("report.html")

:func:`tune`, :class:`Study` (a study file in Python: ``Study.from_file``, ``to_toml``),
:class:`TuneResult` and :func:`load` (a stored study's results), :func:`join` (one more
worker for a stored study) live in :mod:`sweeper.api.facade`; the command line calls the same
functions.

Every error a user can fix is a :class:`SweeperError` (one line saying what is wrong), each kind
a name of the package: ``except sweeper.StorageError``, ``except sweeper.ConfigError``. They are
declared in :mod:`sweeper.errors`.

Importing the package is cheap: the API is loaded on first use, and Keras and TensorFlow are
only imported by the modules that train (``sweeper.training``: ``train_trial``, ``models``) and only
inside their functions.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
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

# Loaded on first access (PEP 562) from the module that defines each. Not imported here: those
# modules use the package's others, which import this package first, so a static import would be
# a cycle and would make `import sweeper` load the whole library. sweeper/__init__.pyi types them.
API_NAMES = {
    "Best": "sweeper.api.results",
    "Study": "sweeper.api.study",
    "TuneInterrupted": "sweeper.api.study",
    "TuneResult": "sweeper.api.results",
    "WorkerRun": "sweeper.api.facade",
    "join": "sweeper.api.facade",
    "keras_objects": "sweeper.training.handover",
    "load": "sweeper.api.facade",
    "tune": "sweeper.api.facade",
}
# SweeperError and each of its subclasses (all declared in sweeper/errors.py), for
# ``except sweeper.StorageError``: loaded the same way, so `import sweeper` imports nothing more.
ERROR_NAMES = (
    "SweeperError",
    "ConfigError",
    "KeywordError",
    "DataError",
    "StorageError",
    "StudyChangedError",
    "SweepAborted",
    "RescaleError",
    "LrFindError",
    "NotTrainedError",
    "BestModelError",
    "EvaluationError",
    "ConfirmError",
    "StoreNotFoundError",
    "StudyNotFoundError",
    "TooFewTrialsError",
    "PlotUnavailableError",
    "UnknownPlotKindError",
)


def __getattr__(name: str) -> Any:
    if name in API_NAMES or name in ERROR_NAMES:
        module = API_NAMES.get(name, "sweeper.errors")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sweeper' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API_NAMES, *ERROR_NAMES})
