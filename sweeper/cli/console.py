"""The ``sweeper`` program: Ctrl-C is one clean stop from its first moment.

The handlers are installed before the command line (click, the library) is even imported, so an
interrupt during start-up is one line and exit status 130 like any other, never a traceback
or click's "Aborted!".
"""

from __future__ import annotations

import os
import sys


def _exit_past_broken_files(code: object) -> None:
    """A checkpoint that a full disk cut short leaves HDF5 buffers whose finalizers write again
    at exit, and can crash the interpreter there (a segmentation fault after the error line):
    once the command has said its one line, the process ends without running them."""
    checkpoints = sys.modules.get("sweeper.training.checkpoints")
    if checkpoints is not None and checkpoints.BROKEN_WRITES:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)


def main() -> None:
    from sweeper.interrupts import INTERRUPTS, SweepInterrupted

    with INTERRUPTS.installed():
        try:
            from sweeper.cli.commands import main as cli

            cli()
        except SystemExit as exc:
            _exit_past_broken_files(exc.code)
            raise
        except SweepInterrupted:
            from sweeper.cli.common import EXIT_INTERRUPTED, INTERRUPTED

            print(INTERRUPTED, file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
