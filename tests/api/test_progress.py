"""How a run and its results show: the epoch status line on a terminal (not in a log), the best
value and the ETA on each trial's line, the interrupted summary, the notebook's HTML of a result,
its best trial and its importance, and the short reason of the trials table.

A real study on the digits held in memory (a one-layer model, a few two-epoch trials) and
stores written with fake trials.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import asha_trials, frozen_trial, write_store
from optuna.trial import TrialState

import sweeper
from sweeper import environment
from sweeper.api.progress import ProgressLines, eta, summary_lines
from sweeper.search.outcomes import EpochEvent, TrialEvent
from sweeper.search.summary import TuneSummary


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_process: None) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(environment.DATA_DIR_ENV, str(tmp_path / "arrays"))


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


CLEAR = re.compile(r"\r +\r")


def trial(n: int, **facts: Any) -> TrialEvent:
    return TrialEvent(n, "complete", 0.5, "constant(initial_lr=0.1)", 10.0, n + 1, 10, **facts)


# --------------------------------------------------------------------------------------------
# lines, status line and ETA, without training
# --------------------------------------------------------------------------------------------


def test_the_eta_is_the_first_of_the_trials_the_budget_and_the_timeout_to_end_the_run() -> None:
    # 9 trials missing at 10 s each
    assert eta(trial(0), 10.0) == 90.0
    # a budget of 6 more epochs, 4 trained in 20 s: 5 s each
    budget = {"elapsed": 20.0, "epochs_run": 4, "epochs_left": 6}
    assert eta(trial(0, **budget), 10.0) == 30.0
    # and 12 s of the timeout left
    assert eta(trial(0, **budget, time_left=12.0), 10.0) == 12.0
    assert eta(trial(0, time_left=500.0), 10.0) == 90.0
    # the budget spent, or the target reached: nothing left
    assert eta(trial(0, elapsed=20.0, epochs_run=0, epochs_left=0), 10.0) == 0.0
    assert eta(trial(9, time_left=50.0), 10.0) == 0.0
    # no epoch trained yet in this run: the budget gives no rate
    assert eta(trial(0, elapsed=20.0, epochs_run=0, epochs_left=6), 10.0) == 90.0


def test_a_trial_line_shows_the_best_so_far_and_the_eta_of_the_budget() -> None:
    out = io.StringIO()
    lines = ProgressLines(out)
    lines(trial(0, best=0.9812, elapsed=10.0, epochs_run=2, epochs_left=3))
    (line,) = out.getvalue().splitlines()
    assert "val_acc=0.5000 best 0.9812" in line
    assert line.endswith("eta 0:15]  constant(initial_lr=0.1)")  # 3 epochs at 5 s, not 9 trials


def test_epochs_rewrite_one_status_line_on_a_terminal_and_nothing_in_a_log() -> None:
    tty, log = Tty(), io.StringIO()
    on_tty, in_log = ProgressLines(tty), ProgressLines(log)
    for display in (on_tty, in_log):
        display.epoch(EpochEvent(7, 3, 9, 0.9612, 12.0))
        display.epoch(EpochEvent(7, 4, 9, None, 13.4))
        display(trial(7))
    shown = tty.getvalue()
    assert shown.startswith("\rtrial 7 epoch 3/9 val_acc=0.9612 0:12\rtrial 7 epoch 4/9 val_acc=- ")
    assert CLEAR.search(shown) and CLEAR.split(shown)[-1].startswith("[########")
    assert log.getvalue() == CLEAR.split(shown)[-1]  # the same trial line, nothing else
    on_tty.epoch(EpochEvent(8, 1, 9, 0.5, 1.0))
    on_tty.clear()
    assert tty.getvalue().endswith("\r" + " " * len("trial 8 epoch 1/9 val_acc=0.5000 0:01") + "\r")


def test_a_log_gets_an_epoch_line_only_now_and_then_in_a_long_trial() -> None:
    log = io.StringIO()
    display = ProgressLines(log)
    for k, seconds in enumerate([30.0, 61.0, 90.0, 125.0, 130.0], start=1):
        display.epoch(EpochEvent(3, k, 5, 0.8, seconds))
    assert log.getvalue().splitlines() == [
        "  trial 3 epoch 2/5 val_acc=0.8000 1:01",
        "  trial 3 epoch 4/5 val_acc=0.8000 2:05",
    ]  # the last epoch has its trial's line


def test_an_interrupted_run_is_advised_to_resume_only() -> None:
    summary = TuneSummary("s", "sqlite:///s.db", 10, dict.fromkeys(["complete", "pruned",
                          "paused", "failed"], 0), 1, 5.0, interrupted=True,
                          best_baseline="constant 0.1", best_baseline_value=0.5)  # fmt: skip
    text = "\n".join(summary_lines(summary))
    assert "raise" not in text and "--n-trials" not in text
    assert text.endswith(
        "interrupted: rerun the same command to resume; the stopped trial runs again"
    )
    summary.interrupted = False
    assert "(raise --n-trials to tune)" in "\n".join(summary_lines(summary))


# --------------------------------------------------------------------------------------------
# stores of fake trials: the reason column, the importance
# --------------------------------------------------------------------------------------------


def test_the_trials_table_shows_a_short_reason_and_keeps_the_whole(tmp_path: Path) -> None:
    long = "paused after epoch 2: not in the best 1/3 of 12 at this rung yet, " + "x" * 80
    trials = [
        frozen_trial(0, {0: 0.5, 1: 0.6}, state=TrialState.COMPLETE),
        frozen_trial(1, {0: 0.2}, reason=long),
        frozen_trial(2, {0: 0.3}, reason="diverged at epoch 1, lr=3.2"),
    ]
    result = sweeper.load("r", write_store(tmp_path / "r.db", trials, "r"))
    table = result.trials
    rows = table.to_dict("records") if hasattr(table, "to_dict") else table
    short = rows[1]["reason"]
    assert len(short) == 60 and short.endswith("…") and long.startswith(short[:-1])
    assert rows[1]["reason_full"] == long
    assert rows[2]["reason"] == rows[2]["reason_full"] == "diverged at epoch 1, lr=3.2"
    assert not isinstance(rows[0]["reason"], str)  # None (NaN in a DataFrame's text column)


def test_importance_shows_as_bars_in_html_and_as_lines(tmp_path: Path) -> None:
    report = sweeper.load(
        "asha", write_store(tmp_path / "s.db", asha_trials(), "asha")
    ).importance()
    page = report._repr_html_()
    assert "importance at epoch 4, 4 configurations (ped-anova;" in page
    assert page.count("<tr>") == sum(len(i.values) for i in [report.overall, *report.families])
    lines = report.lines()
    assert lines[0].startswith("importance at epoch 4") and lines[1].startswith("all families")
    shares = lines[2 : 2 + len(report.overall.values)]
    assert [ln.split()[0] for ln in shares] == list(report.overall.values), lines
    assert all(re.fullmatch(r"  \w+ +\d+\.\d%  #*", ln) for ln in shares), lines
    pretty = pytest.importorskip("IPython.lib.pretty")
    assert pretty.pretty(report) == "\n".join(lines)


# --------------------------------------------------------------------------------------------
# a real study
# --------------------------------------------------------------------------------------------


def dense(input_shape: tuple[int, ...], num_classes: int) -> Any:
    import keras

    inputs = keras.Input(shape=input_shape)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


class Both:
    """Progress shown on a terminal and in a log at once."""

    def __init__(self) -> None:
        self.tty, self.log = Tty(), io.StringIO()
        self.displays = [ProgressLines(self.tty), ProgressLines(self.log)]

    def __call__(self, event: TrialEvent) -> None:
        for d in self.displays:
            d(event)

    def epoch(self, event: EpochEvent) -> None:
        for d in self.displays:
            d.epoch(event)

    def clear(self) -> None:
        for d in self.displays:
            d.clear()


@pytest.mark.slow
def test_a_real_run_shows_its_epochs_on_a_terminal_and_its_best_in_html(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    digits = ((bunch.images / 16.0).astype(np.float32), bunch.target)
    both = Both()
    result = sweeper.tune(dense, digits, storage=f"sqlite:///{tmp_path / 'r.db'}", study_name="r",
                          n_trials=3, epochs=2, subset=300, pruner="none", progress=both,
                          space={"schedules": ["constant"], "initial_lr": (0.05, 0.5, "log")})  # type: ignore[arg-type]  # fmt: skip

    shown = both.tty.getvalue()
    for n in range(3):
        assert re.search(rf"\rtrial {n} epoch 1/2 val_acc=0\.\d{{4}} 0:\d\d *\rtrial {n} epoch 2/2 ",
                         shown), shown  # fmt: skip
    # each trial's line once its status line was cleared (then the next trial's status line)
    lines = [part.split("\n")[0] for part in CLEAR.split(shown)[1:]]
    assert len(lines) == 3 and all(re.match(r"\[#+\.*\] \d/3  trial \d", ln) for ln in lines)
    log = both.log.getvalue()
    assert "\r" not in log and "epoch" not in log and len(log.splitlines()) == 3
    assert log.splitlines() == lines

    best = result.best
    assert best is not None and best.value is not None
    value = f"{best.value:.4f}"
    assert f"best {value}" in log.splitlines()[-1]
    page = result._repr_html_()
    assert (
        f'<td style="font-family: monospace; text-align: left; padding: 1px 8px">{value}</td>'
        in page
    )
    assert "study &#x27;r&#x27;" in page and "3 configurations" in page
    assert value in best._repr_html_() and "schedule" in best._repr_html_()
    pretty = pytest.importorskip("IPython.lib.pretty")
    assert pretty.pretty(result) == repr(result)
    assert pretty.pretty(best).startswith(f"trial {best.number}\n  val_accuracy: {value}\n")
