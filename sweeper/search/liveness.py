"""Whether the process that stamped a trial or a file is gone, judged only where its pid means
something.

A pid names a process only inside one PID namespace during one boot of one kernel. Two
containers with host networking, or two machines sharing a name, have the same host name and
overlapping pids: a pid that is not alive here may be a live process there. So a stamp carries
the scope of its process, the boot id and the inode of its PID namespace (where ``/proc`` has
them), and a process decides by pid that the owner is dead only when it shares that scope;
otherwise the owner's heartbeat decides. A stamp without a scope (written before scopes, or on a
system without ``/proc``) is judged by host name and pid as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sweeper.environment import host_name

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
PID_NAMESPACE = Path("/proc/self/ns/pid")


def process_scope() -> str:
    """Where this process's pid names it: ``boot=<boot id>,pidns=<namespace inode>``; a part
    that cannot be read is left empty, and "" when neither can (no ``/proc``: no namespaces)."""
    try:
        boot = BOOT_ID.read_text().strip()
    except OSError:
        boot = ""
    try:
        namespace = str(os.stat(PID_NAMESPACE).st_ino)
    except OSError:
        namespace = ""
    return f"boot={boot},pidns={namespace}" if boot or namespace else ""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this namespace runs (a zombie, dead but not yet reaped, counts
    as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: trust kill()
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


@dataclass(frozen=True)
class Owner:
    """The process named by a stamp: ``host:pid`` and its scope (None: a stamp without one)."""

    host: str
    pid: int
    scope: str | None

    @classmethod
    def parse(cls, worker: str, scope: str | None = None) -> Owner | None:
        """The owner named by ``worker`` (``host:pid``) and ``scope``; None when garbled."""
        host, _, pid = worker.rpartition(":")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), scope or None)

    def visible(self, host: str | None = None, scope: str | None = None) -> bool:
        """Whether a process on ``host`` in ``scope`` (default: this one's) sees the owner's pid:
        the same host name and, for a stamp with a scope, the same boot and PID namespace."""
        if self.host != (host_name() if host is None else host):
            return False
        return self.scope is None or self.scope == (process_scope() if scope is None else scope)

    def gone(
        self,
        host: str | None = None,
        scope: str | None = None,
        alive: Callable[[int], bool] = pid_alive,
    ) -> bool:
        """Whether the owner is known to be dead, seen from ``host`` and ``scope`` (default:
        this process): only a process that sees its pid can tell."""
        return self.visible(host, scope) and not alive(self.pid)
