"""The ``sweeper`` program: Ctrl-C is one clean stop from its first moment.

The handlers are installed before the command line (click, the library) is even imported, so an
interrupt during start-up is one line and exit status 130 like any other, never a traceback
or click's "Aborted!".
"""

from __future__ import annotations

import sys


def main() -> None:
    from sweeper.interrupts import INTERRUPTS, SweepInterrupted

    with INTERRUPTS.installed():
        try:
            from sweeper.cli.commands import main as cli

            cli()
        except SweepInterrupted:
            from sweeper.cli.common import EXIT_INTERRUPTED, INTERRUPTED

            print(INTERRUPTED, file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
