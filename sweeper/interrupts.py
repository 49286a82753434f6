"""Ctrl-C and SIGTERM as one clean stop, at any moment of a run.

A Python signal handler runs between two bytecodes of the main thread, wherever that is: inside a
garbage-collection or weak-reference callback (where an exception it raises is printed as
"Exception ignored in ..." and lost), inside a SQLAlchemy transaction, or inside framework code
that turns it into an error of its own. So the handler here never relies on its raise alone:

* it always *records* the request (sticky until the command ends), and calls the stop hooks
  registered at that moment (a training run's hook sets ``model.stop_training``, so ``fit`` ends
  after the batch in progress);
* outside a :meth:`Interrupts.deferred` block it also raises :class:`SweepInterrupted` at once,
  which is what stops a sleep, a data load or an import promptly;
* inside a deferred block (a trial being created, trained or recorded; store writes) it only
  records, and the code raises at its own safe points with :meth:`Interrupts.check`, and when the
  outermost deferred block ends.

A raise that was swallowed is raised again by the next ``check``: an interrupt is never lost.
Where Python swallows it (a callback run by the garbage collector), it is not printed as
"Exception ignored in ..." either: while the handlers are installed, ``sys.unraisablehook``
drops a :class:`SweepInterrupted` (the stop stays recorded) and passes everything else on.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SweepInterrupted(BaseException):
    """Ctrl-C or SIGTERM during a run.

    A BaseException that Optuna's trial runner does not catch (it catches ``Exception`` and
    ``KeyboardInterrupt``), so the running trial is not marked failed behind our back and can be
    put back in the queue as it is.
    """


class Interrupts:
    """The process's interrupt state; one instance, :data:`INTERRUPTS`."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._deferred = 0
        self._installed = 0
        self._previous: dict[int, Any] = {}
        self._hooks: list[Callable[[], None]] = []
        self._previous_unraisable: Callable[[Any], None] = sys.unraisablehook

    # -- the handler ------------------------------------------------------------------------
    def _handler(self, signum: int, _frame: Any) -> None:
        self.requested = True
        self.signum = signum
        for hook in list(self._hooks):
            # a stop hook must never turn into the interrupt's own error
            with suppress(Exception):
                hook()
        if not self._deferred:
            raise SweepInterrupted(signal.Signals(signum).name)

    # -- where code looks --------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`SweepInterrupted` if a stop was requested (a safe point)."""
        if self.requested:
            raise SweepInterrupted(signal.Signals(self.signum or signal.SIGINT).name)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Signals only record the stop while the block runs; it is raised when the block ends
        (or at a :meth:`check` inside it)."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1
        if not self._deferred:
            self.check()

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """Signals only record the stop while the block runs, and nothing is raised when it ends:
        for the clean-up after a stop (putting the trial back in the queue, closing the run)."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1

    @contextmanager
    def undeferred(self) -> Iterator[None]:
        """Inside a deferred block: let a signal raise at once again (for a wait or a sleep)."""
        depth, self._deferred = self._deferred, 0
        try:
            self.check()
            yield
        finally:
            self._deferred = depth

    @contextmanager
    def on_stop(self, hook: Callable[[], None]) -> Iterator[None]:
        """Call ``hook`` when a stop is requested while the block runs (at once if it already was)."""
        self._hooks.append(hook)
        try:
            if self.requested:
                hook()
            yield
        finally:
            self._hooks.remove(hook)

    def _unraisable(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, SweepInterrupted):
            return  # recorded: the next safe point raises it again
        self._previous_unraisable(unraisable)

    def handling(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` so that it runs with the handlers :meth:`installed`."""

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self.installed():
                return fn(*args, **kwargs)

        return wrapper

    # -- installation --------------------------------------------------------------------------
    @contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Handle SIGINT and SIGTERM while the block runs (nested blocks share one installation).

        Off the main thread, where Python cannot install signal handlers, it only yields. The
        outermost block starts and ends with no stop requested, and restores the previous
        handlers.
        """
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        if not self._installed:
            self.requested, self.signum = False, None
            self._previous = {sig: signal.signal(sig, self._handler) for sig in SIGNALS}
            self._previous_unraisable = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        self._installed += 1
        try:
            yield self
        finally:
            self._installed -= 1
            if not self._installed:
                for sig, previous in self._previous.items():
                    signal.signal(sig, previous)
                self._previous = {}
                sys.unraisablehook = self._previous_unraisable
                self.requested, self.signum = False, None


INTERRUPTS = Interrupts()
