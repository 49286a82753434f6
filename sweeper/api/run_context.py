"""The context a run of the Python API wraps itself in: the console's notices as plain lines,
Optuna's own logging quiet, the trusted study hash, and figures drawn without leaving pyplot on
another backend (shown inline in a notebook)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from sweeper.api.progress import in_notebook
from sweeper.environment import TRUSTED_HASH_ENV, trusted_hash_from_env


def console_stream() -> IO[str]:
    """Where the API's lines for a person go: stderr, or stdout in a notebook (which shows
    stderr as red text, as if something were wrong)."""
    return sys.stdout if in_notebook() else sys.stderr


def print_lines(lines: list[str]) -> None:
    out = console_stream()
    for line in lines:
        print(line, file=out, flush=True)


@contextmanager
def console(show: bool) -> Iterator[None]:
    """The notices meant for the person at the console as plain lines (:func:`console_stream`),
    unless the application has given them a handler of its own."""
    from sweeper.training.backend import CONSOLE

    if not show or CONSOLE.handlers:
        yield
        return
    handler = logging.StreamHandler(console_stream())
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = CONSOLE.level, CONSOLE.propagate
    CONSOLE.addHandler(handler)
    CONSOLE.setLevel(logging.INFO)
    CONSOLE.propagate = False
    try:
        yield
    finally:
        CONSOLE.removeHandler(handler)
        CONSOLE.setLevel(level)
        CONSOLE.propagate = propagate


@contextmanager
def optuna_quiet() -> Iterator[None]:
    """Optuna's own line per trial off while a study runs (the progress shows each trial)."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


@contextmanager
def trusted(digest: str) -> Iterator[None]:
    """Let this process run the stored definition of hash ``digest``: it built that study."""
    previous = trusted_hash_from_env()
    os.environ[TRUSTED_HASH_ENV] = digest
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(TRUSTED_HASH_ENV, None)
        else:
            os.environ[TRUSTED_HASH_ENV] = previous


@contextmanager
def nothing() -> Iterator[None]:
    yield


@contextmanager
def figures() -> Iterator[None]:
    """Draw without leaving pyplot on another backend, and let a notebook show figures.

    The drawing functions use the Agg backend. In a notebook, the kernel's own (inline) backend
    is set up first and put back afterwards, and a ``Figure`` shown as a cell's value renders
    as a PNG.
    """
    import matplotlib

    notebook = in_notebook()
    if notebook:
        import matplotlib.pyplot
    before = matplotlib.get_backend() if "matplotlib.pyplot" in sys.modules else None
    try:
        yield
    finally:
        if before is not None and matplotlib.get_backend() != before:
            import matplotlib.pyplot as plt

            plt.switch_backend(before)
        if notebook:
            _show_figures_inline()


def _figure_png(fig: Any) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _show_figures_inline() -> None:
    """Make the notebook render a ``Figure`` value as a PNG (the inline backend does so too)."""
    from matplotlib.figure import Figure

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, _figure_png)
