"""The project's exceptions.

``SweeperError`` is the base of every error a user can fix (bad study file, missing data, bad
storage URL); the CLI turns it into one line and a non-zero exit status. ``SweepAborted`` stops the
whole sweep; a trial that fails is recorded FAIL by Optuna and the sweep goes on.
"""

from __future__ import annotations


class SweeperError(Exception):
    """An error the user can fix; its message is one line saying what is wrong and how to fix it."""

    exit_code = 1


class ConfigError(SweeperError):
    """A study file (or a value given on the command line) is invalid."""

    exit_code = 2


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
