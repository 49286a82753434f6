"""Progress of a run for the Python API: a bar in a Jupyter kernel, plain lines anywhere else.

The trial loop reports each finished trial as a :class:`~sweeper.study.trials.TrialEvent`. In a
Jupyter (IPython) kernel the events move a ``tqdm.auto`` bar, which renders as a widget there;
in a terminal, a log or a plain ``python`` process they become one line each on stderr, the
same lines as ``sweeper tune`` prints. No Keras, no click; IPython is never imported here, only
looked at when the process already has it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeper.study.summary import TuneSummary
    from sweeper.study.trials import TrialEvent

Progress = Callable[["TrialEvent"], None]


def in_notebook() -> bool:
    """Whether this process is an IPython kernel (Jupyter, VS Code, Colab), not a terminal."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # a partly imported or unusual IPython
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def bar_text(done: int, total: int, width: int = 20) -> str:
    filled = min(width, round(width * done / total)) if total else width
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


def value_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class ProgressLines:
    """One line per finished trial: its outcome and time, the run's elapsed time and its ETA.

    The ETA is the trials still missing times the mean time of a trial in this run (0 when the
    target is reached).
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self.start = time.monotonic()
        self.seconds: list[float] = []

    def __call__(self, event: TrialEvent) -> None:
        self.seconds.append(event.seconds)
        elapsed = time.monotonic() - self.start
        remaining = max(0, event.target - event.finished)
        eta = clock(sum(self.seconds) / len(self.seconds) * remaining)
        print(
            f"{bar_text(event.finished, event.target)}  trial {event.number:<3} "
            f"{event.state:<8} val_acc={value_text(event.value)}  {event.seconds:5.1f}s  "
            f"[{clock(elapsed)} eta {eta}]  {event.description}",
            file=self.stream or sys.stderr,
            flush=True,
        )


class ProgressBar:
    """A ``tqdm.auto`` bar of finished trials, the last trial and the best value beside it."""

    def __init__(self, description: str = "") -> None:
        self.description = description
        self.bar: Any = None
        self.best: float | None = None

    def __call__(self, event: TrialEvent) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:
            self.bar = tqdm(total=event.target, desc=self.description, unit="trial")
        if event.value is not None and (self.best is None or event.value > self.best):
            self.best = event.value
        self.bar.total = event.target
        self.bar.n = min(event.finished, event.target)
        self.bar.set_postfix_str(
            f"trial {event.number} {event.state} {value_text(event.value)}, "
            f"best {value_text(self.best)}",
            refresh=False,
        )
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def reporting(progress: bool | Progress | None, description: str = "") -> Iterator[Progress | None]:
    """The callback for ``progress``: ``True`` a bar in a notebook (plain lines elsewhere, or
    when tqdm is missing), ``False``/``None`` nothing, a callable itself. A bar is closed when
    the block ends, however it ends."""
    if progress is None or progress is False:
        yield None
        return
    if progress is not True:
        yield progress
        return
    if in_notebook():
        try:
            import tqdm.auto  # noqa: F401
        except ImportError:
            pass
        else:
            bar = ProgressBar(description)
            try:
                yield bar
            finally:
                bar.close()
            return
    yield ProgressLines()


def best_lines(
    number: int | None, value: float, schedule: str | None, params: dict[str, Any]
) -> list[str]:
    """The best trial as a run's summary and a result's ``repr`` show it: three lines."""
    searched = "  ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )
    return [
        f"best: trial {number}, val_accuracy {value:.4f}",
        f"  schedule: {schedule}",
        f"  params:   {searched or '(none searched)'}",
    ]


def summary_lines(summary: TuneSummary, *, python: bool = False) -> list[str]:
    """What a run did, as ``sweeper tune`` ends: trials, epochs, the best trial, the gain over
    the best baseline, throughput and what to do next. ``python`` words the advice for the
    Python API (keywords and calls) instead of the command line (options and commands)."""
    from sweeper.study.configurations import counts_text

    c = summary.counts
    finished = c["complete"] + c["pruned"] + c["paused"] + c["failed"]
    finished -= summary.configs.get("budget", 0)  # a larger budget continues them
    budget_option = "budget_epochs=" if python else "--budget-epochs"
    rerun = "call it again with the same arguments" if python else "rerun the same command"
    lines = [
        f"study {summary.study_name!r} in {summary.storage}: {finished}/{summary.target} "
        f"configurations finished ({counts_text(summary.configs)}); {summary.ran} "
        f"trial{'' if summary.ran == 1 else 's'} run now in {summary.seconds:.0f} s"
    ]
    budget = f" of a budget of {summary.budget_epochs}" if summary.budget_epochs else ""
    lines.append(f"epochs trained: {summary.epochs_spent}{budget}")
    spent = bool(summary.budget_epochs) and summary.epochs_spent >= (summary.budget_epochs or 0)
    if summary.best_value is None:
        lines.append("no completed trial yet")
    else:
        lines += best_lines(
            summary.best_number, summary.best_value, summary.best_schedule, summary.best_params
        )
    if summary.best_baseline is not None:
        more = budget_option if spent else ("n_trials=" if python else "--n-trials")
        verdict = (
            f"tuning gains {summary.gain:+.4f}"
            if summary.tuned_complete
            else f"no tuned trial has completed yet (raise {more} to tune)"
        )
        lines.append(
            f"best baseline: {summary.best_baseline}, val_accuracy "
            f"{value_text(summary.best_baseline_value)}; {verdict}"
        )
    for optimizer, (low, high) in summary.lr_ranges.items():
        lines.append(
            f"initial_lr range from the LR range test ({optimizer}): [{low:.3g}, {high:.3g}] "
            "(stored: resumed runs and other workers use the same bounds)"
        )
    if summary.trials_per_hour:
        lines.append(
            f"throughput: {summary.trials_per_hour:.0f} trials/hour with {summary.workers} "
            f"worker{'s' if summary.workers > 1 else ''}"
        )
    if summary.interrupted:
        lines.append(f"interrupted: {rerun} to resume; the stopped trial runs again")
    elif spent:
        lines.append(f"the epoch budget is spent: raise {budget_option} to go on")
    elif finished < summary.target:
        lines.append(f"stopped before the target: {rerun} to resume")
    return lines
