"""Crash points for the fault tests: ``SWEEPER_KILL_AT=NAME`` makes the process kill itself with
SIGKILL when it reaches the point ``NAME``; unset (always, outside those tests) nothing happens.

The points are the moments a crash is hardest to recover from: a trial taken but not yet stamped
with its worker, stamped but not yet trained, the baselines half queued, a trial trained but not
yet told to Optuna, told but its checkpoint not yet removed, a promotion claimed but its trial
not yet created, a place of the study claimed but its trial not yet taken. Each is a single call
of :func:`point`, so the code around it is what runs.
"""

from __future__ import annotations

import os
import signal

from sweeper.environment import kill_at_from_env

POINTS = (
    "after-ask",
    "after-stamp",
    "baselines",
    "before-tell",
    "after-tell",
    "after-claim",
    "after-place",
)


def point(name: str) -> None:
    """Die here with SIGKILL if ``$SWEEPER_KILL_AT`` names this point."""
    if kill_at_from_env() == name:
        os.kill(os.getpid(), signal.SIGKILL)
