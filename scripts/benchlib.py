"""Helpers the benchmark scripts share: the machine description and plain-text tables."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
from datetime import datetime
from pathlib import Path


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine_lines() -> list[str]:
    """Date, machine, package versions and load average, printed before a benchmark's figures."""
    from importlib import metadata

    versions = []
    for pkg in ("tensorflow", "keras", "optuna", "sqlalchemy", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{pkg} {metadata.version(pkg)}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"date: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {platform.node()}, {_cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}",
        f"packages: {', '.join(versions)}; KERAS_BACKEND={os.environ.get('KERAS_BACKEND', '-')}",
        f"load average at start (1/5/15 min): {load}",
    ]


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Columns padded to their widest cell; the first column left-aligned, the rest right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))


def mean_std(values: list[float], fmt: str = ".4f") -> str:
    """mean +- std (sample std; 0 for a single value)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):{fmt}} +- {std:{fmt}}"
