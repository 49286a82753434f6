"""Progress of a run for the Python API and the command line: lines in a terminal or a log, an
HTML block updated in place in a notebook (:class:`NotebookProgress`, no widget package needed).

The trial loop reports each finished trial as a :class:`~sweeper.search.outcomes.TrialEvent`, and
each epoch trained as an :class:`~sweeper.search.outcomes.EpochEvent` to a display's ``epoch``
method (``clear`` once the trials end). :class:`ProgressLines` writes one line per trial (stderr,
or stdout in a notebook without IPython's display), each with the best value so far and an ETA;
on a terminal an epoch rewrites one status line in place (``\r``), in a log only an epoch of a
long trial gets a line. No Keras, no click; IPython is never imported here, only looked at when
the process already has it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeper.search.outcomes import EpochEvent, TrialEvent
    from sweeper.search.summary import TuneSummary

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


def is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


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


def epoch_text(event: EpochEvent) -> str:
    """``trial 7 epoch 3/9 val_acc=0.9612 0:12``."""
    return (
        f"trial {event.number} epoch {event.epoch}/{event.epochs} "
        f"val_acc={value_text(event.val_accuracy)} {clock(event.seconds)}"
    )


def eta(event: TrialEvent, per_trial: float) -> float:
    """Seconds the run still needs, by whichever ends it first: the trials still missing at
    ``per_trial`` seconds each, the epochs left of the budget at the run's seconds per epoch,
    the time left of the timeout. 0 once the target is reached or the budget spent."""
    bounds = [max(0, event.target - event.finished) * per_trial]
    if event.epochs_left is not None and (event.epochs_left == 0 or event.epochs_run > 0):
        bounds.append(event.epochs_left * event.elapsed / max(1, event.epochs_run))
    if event.time_left is not None:
        bounds.append(event.time_left)
    return max(0.0, min(bounds))


class Tally:
    """What a display keeps of a run: when it began, the trials shown and the best value."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.seconds: list[float] = []
        self.best: float | None = None

    def add(self, event: TrialEvent) -> None:
        self.seconds.append(event.seconds)
        if event.best is not None:
            self.best = event.best
        elif event.value is not None and (self.best is None or event.value > self.best):
            self.best = event.value

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def eta(self, event: TrialEvent) -> float:
        """:func:`eta` at this run's seconds per trial: its wall time per trial shown (trials
        trained at once in a pack overlap), or their mean time when the event has no clock."""
        n = len(self.seconds)
        per_trial = event.elapsed / n if event.elapsed > 0 else sum(self.seconds) / max(1, n)
        return eta(event, per_trial)


class ProgressLines:
    """One line per finished trial: its outcome and time, the best value so far, the run's
    elapsed time and its ETA (:func:`eta`). Per epoch: on a terminal a status line rewritten in
    place and cleared before the next line; in a log a line only every ``LOG_EVERY`` seconds of
    a long trial."""

    LOG_EVERY = 60.0

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self.tally = Tally()
        self.status = ""  # the status line on screen now
        self.logged: dict[int, float] = {}  # trial -> its seconds at its last epoch line

    @property
    def out(self) -> IO[str]:
        return self.stream or sys.stderr

    def __call__(self, event: TrialEvent) -> None:
        self.clear()
        self.logged.pop(event.number, None)
        self.tally.add(event)
        print(
            f"{bar_text(event.finished, event.target)}  trial {event.number:<3} "
            f"{event.state:<8} val_acc={value_text(event.value)} best "
            f"{value_text(self.tally.best)}  {event.seconds:5.1f}s  "
            f"[{clock(self.tally.elapsed)} eta {clock(self.tally.eta(event))}]  "
            f"{event.description}",
            file=self.out,
            flush=True,
        )

    def epoch(self, event: EpochEvent) -> None:
        out = self.out
        text = epoch_text(event)
        if is_terminal(out):
            out.write("\r" + text + " " * max(0, len(self.status) - len(text)))
            out.flush()
            self.status = text
        elif (
            event.epoch < event.epochs  # the trial's own line follows its last epoch
            and event.seconds - self.logged.get(event.number, 0.0) >= self.LOG_EVERY
        ):
            self.logged[event.number] = event.seconds
            print(f"  {text}", file=out, flush=True)

    def clear(self) -> None:
        """Remove the status line, if one is on screen."""
        if self.status:
            self.out.write("\r" + " " * len(self.status) + "\r")
            self.out.flush()
            self.status = ""


def can_display() -> bool:
    """Whether IPython's rich display (HTML updated in place) can be imported."""
    try:
        from IPython.display import display  # noqa: F401
    except ImportError:
        return False
    return True


class NotebookProgress:
    """The run's progress in a notebook: one HTML block (a bar, trials done of the target, the
    best value so far, the ETA, the trial in training at epoch k of N, the last trial), shown
    with ``display(..., display_id=True)`` and updated in place; a plain-text twin for
    front ends without HTML. Epochs redraw it at most every ``EVERY`` seconds."""

    EVERY = 0.25

    def __init__(self, description: str = "") -> None:
        self.description = description
        self.tally = Tally()
        self.last: TrialEvent | None = None
        self.current: EpochEvent | None = None
        self.handle: Any = None
        self.drawn = 0.0

    def __call__(self, event: TrialEvent) -> None:
        self.tally.add(event)
        self.last, self.current = event, None
        self.draw()

    def epoch(self, event: EpochEvent) -> None:
        self.current = event
        if time.monotonic() - self.drawn >= self.EVERY:
            self.draw()

    def clear(self) -> None:
        """The trials have ended: no trial in training any more."""
        if self.current is not None:
            self.current = None
            self.draw()

    def lines(self) -> list[str]:
        """What the block says, line by line (its text form)."""
        last, best = self.last, self.tally.best
        head = f"{self.description}: " if self.description else ""
        if last is None:
            lines = [f"{head}first trial running, {clock(self.tally.elapsed)}"]
        else:
            lines = [
                f"{head}{last.finished}/{last.target} trials, best {value_text(best)}, "
                f"{clock(self.tally.elapsed)} (eta {clock(self.tally.eta(last))})"
            ]
        if self.current is not None:
            lines.append(f"training {epoch_text(self.current)}")
        if last is not None:
            lines.append(
                f"last: trial {last.number} {last.state} val_acc={value_text(last.value)} "
                f"{last.seconds:.1f}s  {last.description}"
            )
        return lines

    def html(self) -> str:
        import html

        last = self.last
        value = "" if last is None else f' value="{last.finished}" max="{max(1, last.target)}"'
        lines = [html.escape(line) for line in self.lines()]
        rest = "".join(f"<div>{line}</div>" for line in lines[1:])
        return (
            '<div style="font-family: monospace">'
            f'<div><progress{value} style="width: 16em; vertical-align: middle"></progress> '
            f"{lines[0]}</div>{rest}</div>"
        )

    def draw(self) -> None:
        from IPython.display import display

        data = {"text/html": self.html(), "text/plain": "\n".join(self.lines())}
        if self.handle is None:
            self.handle = display(data, raw=True, display_id=True)
        else:
            self.handle.update(data, raw=True)
        self.drawn = time.monotonic()


@contextmanager
def reporting(progress: bool | Progress | None, description: str = "") -> Iterator[Progress | None]:
    """The callback for ``progress``: ``True`` an HTML block updated in place in a notebook
    (:class:`~sweeper.api.notebook.NotebookProgress`; plain lines on stdout there when IPython's
    display cannot be had), lines on stderr elsewhere; ``False``/``None`` nothing, a callable
    itself. The display's status line is cleared when the block ends, however it ends."""
    if progress is None or progress is False:
        yield None
        return
    if progress is not True:
        yield progress
        return
    display: ProgressLines | NotebookProgress = ProgressLines()
    if in_notebook():
        display = NotebookProgress(description) if can_display() else ProgressLines(sys.stdout)
    try:
        yield display
    finally:
        display.clear()


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
    from sweeper.search.configurations import counts_text

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
        # an interrupted run is resumed as it was (its last line): no other advice
        hint = "" if summary.interrupted else f" (raise {more} to tune)"
        verdict = (
            f"tuning gains {summary.gain:+.4f}"
            if summary.tuned_complete
            else f"no tuned trial has completed yet{hint}"
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
