"""Crash points for the fault tests: ``SWEEPER_KILL_AT=NAME`` makes the process kill itself with
SIGKILL when it reaches the point ``NAME`` (``NAME:N``: the N-th time it does); unset (always,
outside those tests) nothing happens.

The points are the moments a crash is hardest to recover from: a trial taken but not yet stamped
with its worker, stamped but not yet trained, the baselines half queued, a trial trained but not
yet told to Optuna, told but its checkpoint not yet removed, a promotion claimed but its trial
not yet created, a place of the study claimed but its trial not yet taken, a checkpoint half
uploaded to the shared store. Each is a single call of :func:`point`, so the code around it is
what runs.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

from sweeper.environment import kill_at_from_env

POINTS = (
    "after-ask",
    "after-stamp",
    "baselines",
    "before-tell",
    "after-tell",
    "after-claim",
    "after-place",
    "during-upload",
)

_reached: Counter[str] = Counter()


def point(name: str) -> None:
    """Die here with SIGKILL if ``$SWEEPER_KILL_AT`` names this point (and this is the time)."""
    wanted = kill_at_from_env()
    if not wanted:
        return
    target, _, nth = wanted.partition(":")
    if target != name:
        return
    _reached[name] += 1
    if _reached[name] >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
