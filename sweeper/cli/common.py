"""What every command of the command line shares: the error edge, logging and the console.

Library errors (:class:`sweeper.errors.SweeperError`) become one ``error:`` line on stderr and the
error's exit status; a stop by Ctrl-C or SIGTERM that reaches a command becomes one line and exit
status 130. Library code never prints: its notices for the console go to the ``sweeper.console``
logger, which the command line shows as plain lines on stderr.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import click

from sweeper.environment import VERBOSE_ENV
from sweeper.errors import SweeperError

INTERRUPTED = "interrupted: rerun the same command to resume"
EXIT_INTERRUPTED = 130


@contextmanager
def user_errors() -> Iterator[None]:
    """A library error becomes one line on stderr and the error's exit status (no traceback)."""
    try:
        yield
    except SweeperError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(exc.exit_code) from None
    except OSError as exc:  # a path the user gave cannot be read or written
        click.echo(f"error: {_os_error(exc)}", err=True)
        raise click.exceptions.Exit(2) from None


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or str(exc)
    hint = {
        errno.EEXIST: "a file is in the way; give a folder that does not exist or is a folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.ENOENT: "a folder on the path does not exist or cannot be created there",
        errno.EACCES: "no permission; choose a path you may write",
        errno.EROFS: "the file system is read-only; choose another path",
    }.get(exc.errno or 0, "check the path")
    return f"{where}{reason}; {hint}"


class _EchoHandler(logging.Handler):
    """Writes records through click, to whatever stderr is at the time (CliRunner's, too)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


def setup_logging(verbose: int) -> None:
    """Log levels for ``-v`` counts; ``sweeper.console`` notices shown as plain lines.

    ``-v`` also lets the backends' native start-up output through (see :mod:`sweeper.training.backend`),
    in this process and in the worker processes it starts.
    """
    from sweeper.training.backend import CONSOLE, quiet_environment

    quiet_environment()
    if verbose:
        os.environ[VERBOSE_ENV] = str(verbose)
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("sweeper").setLevel(level)
    for old in list(CONSOLE.handlers):
        CONSOLE.removeHandler(old)
    handler = _EchoHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    CONSOLE.addHandler(handler)
    CONSOLE.setLevel(logging.INFO)
    CONSOLE.propagate = False
    import optuna

    # a failed trial is shown on its progress line; its traceback is stored on the trial
    # (user attribute "traceback") and printed by Optuna from -v on
    optuna.logging.set_verbosity(
        logging.ERROR if verbose == 0 else logging.WARNING if verbose == 1 else logging.INFO
    )
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
