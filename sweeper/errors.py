"""The project's exceptions.

``SweeperError`` is the base of every error a user can fix (bad study file, missing data, bad
storage URL); the CLI turns it into one line and a non-zero exit status. ``SweepAborted`` stops the
whole sweep; a trial that fails is recorded FAIL by Optuna and the sweep goes on.

Every subclass of ``SweeperError`` is declared here, whichever layer raises it, and the package
exports each (``except sweeper.StorageError``); ``tests/test_errors.py`` holds both. The
exceptions that steer control flow rather than report a mistake stay beside their code
(:class:`sweeper.interrupts.SweepInterrupted`, ``EnvironmentFailed`` in
:mod:`sweeper.search.attempt`, ``NoSpaceForCheckpoint`` in :mod:`sweeper.training.checkpoints`).

:func:`did_you_mean` is the one hint for a misspelt name (a key, a family, a kind, a keyword).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


def did_you_mean(word: object, known: Iterable[str], shown: Callable[[str], str] = repr) -> str:
    """``"did you mean 'epochs'?"`` for the name of ``known`` closest to ``word`` (difflib's
    ratio at least 0.6), written by ``shown``; ``""`` when none is close (or ``word`` is not a
    string)."""
    close = difflib.get_close_matches(word, list(known), n=1) if isinstance(word, str) else []
    return f"did you mean {shown(close[0])}?" if close else ""


class SweeperError(Exception):
    """An error the user can fix; its message is one line saying what is wrong and how to fix it."""

    exit_code = 1


class ConfigError(SweeperError):
    """A study file (or a value given on the command line) is invalid."""

    exit_code = 2


class KeywordError(ConfigError, TypeError):
    """A function of the Python API was called with a keyword it does not take (a
    ``TypeError`` too, as Python's own)."""


class DataError(SweeperError):
    """A dataset cannot be found or read."""

    exit_code = 2


class StorageError(SweeperError):
    """The storage URL cannot be opened or written (its password is masked in the message)."""

    exit_code = 1


class StudyChangedError(SweeperError):
    """The study file differs from the one the stored study was created with."""

    exit_code = 2


class SweepAborted(SweeperError):
    """The sweep must stop (for instance too many failed trials in a row)."""

    exit_code = 1


# -- raised by the layers above; declared here so that each is one name of the package ----------


class RescaleError(ConfigError):
    """A tuned schedule cannot be rebuilt for the run asked for (a length of 0, an unknown rule,
    a warm-up that no longer fits)."""


class LrFindError(SweeperError):
    """A range test cannot run as asked (bad bounds, unknown optimizer for the study)."""

    exit_code = 2


class NotTrainedError(SweeperError):
    """A trial asked for by number has no schedule to hand over: it never started training."""


class BestModelError(SweeperError):
    """A study has no kept model that can be read here (none yet, none kept by the version that
    tuned it, kept on another host, or removed)."""

    exit_code = 1


class EvaluationError(SweeperError):
    """A study cannot be evaluated (unknown, nothing complete, no stored study file)."""

    exit_code = 1


class ConfirmError(EvaluationError):
    """A study cannot be confirmed as asked (bad --top or --seeds, nothing complete)."""

    exit_code = 1


class StoreNotFoundError(StorageError):
    """The store to read does not exist."""


class StudyNotFoundError(SweeperError):
    """No study of that name in the store."""

    exit_code = 2


class TooFewTrialsError(SweeperError):
    """Not enough finished trials for the analysis asked for."""


class PlotUnavailableError(SweeperError):
    """The study lacks what a plot needs (complete trials, a family with two parameters...)."""


class UnknownPlotKindError(SweeperError):
    """A plot kind that is not one of the kinds drawn (``sweeper.analysis.plots.KINDS``)."""

    exit_code = 2
