"""``sweeper tune`` on a terminal and in a pipe: real processes, the embedded digits study shrunk
to three trials of three epochs.

On a terminal (a pseudo-terminal here) each epoch rewrites one status line in place with ``\\r``
(``trial 3 epoch 2/3 val_acc=0.6133 0:01``, :func:`sweeper.api.progress.epoch_text`) and the
trial's own line replaces it; in a pipe or a log there is one line per trial and no ``\\r``.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from process_helpers import sweeper_env

pytestmark = pytest.mark.slow

TRIALS = 3
EPOCHS = 3
ARGS = [
    *("tune", "--n-trials", str(TRIALS), "--set", f"train.epochs={EPOCHS}"),
    *("--set", "data.subset=800", "--set", "pruner.type=none", "--storage", "sqlite:///t.db"),
]
STATUS = re.compile(rf"\rtrial (\d+) epoch (\d)/{EPOCHS} val_acc=(\d\.\d{{4}}|-) \d+:\d\d")
TRIAL_LINE = re.compile(rf"^\[[#.]{{20}}\] (\d+)/{TRIALS}  trial (\d+) ", re.MULTILINE)


def tune_on_a_terminal(cwd: Path, timeout: float = 300.0) -> str:
    """``python -m sweeper ARGS`` with stdin, stdout and stderr on a pseudo-terminal; all it
    wrote, as written (the terminal's newline translation off)."""
    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # oflag: keep "\n" as "\n", not "\r\n"
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeper", *ARGS],
        cwd=cwd,
        env=sweeper_env(),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([master], [], [], left)[0]:
                break  # nothing more in time: the wait below fails the test
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every end of the terminal's other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))  # TimeoutExpired: a hang
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    output = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, output[-3000:]
    return output


def test_a_terminal_shows_each_epoch_on_one_status_line_rewritten_in_place(
    tmp_path: Path,
) -> None:
    output = tune_on_a_terminal(tmp_path)
    status = [(int(n), int(e)) for n, e, _ in STATUS.findall(output)]
    assert any(epoch < EPOCHS for _, epoch in status), output[-3000:]
    # a trial's epochs update the same line: 1/3, 2/3, 3/3 of one trial, in order
    every = list(range(1, EPOCHS + 1))
    assert any([e for m, e in status if m == n] == every for n, _ in status), status
    # what the screen keeps of each line: the text after its last "\r"
    kept = [line for line in output.split("\n") if TRIAL_LINE.match(line.rsplit("\r", 1)[-1])]
    assert len(kept) == TRIALS, output[-3000:]
    for line in kept:  # the status line is wiped (blanks over it) before the trial's line
        *statuses, wipe, _ = line.split("\r")
        assert statuses and wipe.strip() == "" and len(wipe) >= len(statuses[-1]), repr(line)


def test_a_pipe_gets_one_line_per_trial_and_no_carriage_return(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", *ARGS],
        cwd=tmp_path,
        env=sweeper_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "\r" not in output, repr(output[-3000:])
    assert not re.search(r"trial \d+ epoch \d/", output), output  # no epoch lines: short trials
    trials = TRIAL_LINE.findall(done.stderr)
    assert [int(k) for k, _ in trials] == list(range(1, TRIALS + 1)), done.stderr
    assert len({n for _, n in trials}) == TRIALS, done.stderr
