"""What the trial loops tell a progress display: an :class:`EpochEvent` for every epoch trained
(alone and packed), then a :class:`TrialEvent` with the best value so far and what is left of
the epoch budget and of the timeout.

Real training of a one-layer user model on 300 digits in a real SQLite store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.search.outcomes import EpochEvent, TrialEvent
from sweeper.search.run_options import RunOptions
from sweeper.search.runner import tune
from sweeper.store.store import Store
from sweeper.studyfile.config import parse_study

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_process")]

STUDY = """\
[study]
name = "p"
seed = 0

[data]
dataset = "digits"
subset = 300

[train]
model = "tiny_model:dense"
batch_size = 32
epochs = 3
pack = {pack}

[sampler]
type = "random"

[pruner]
type = "none"

[space]
schedules = ["constant"]
initial_lr = {{ low = 0.02, high = 0.2, log = true }}
"""


class Display:
    """A progress display that keeps what it is told, in order."""

    def __init__(self) -> None:
        self.seen: list[TrialEvent | EpochEvent | str] = []

    def __call__(self, event: TrialEvent) -> None:
        self.seen.append(event)

    def epoch(self, event: EpochEvent) -> None:
        self.seen.append(event)

    def clear(self) -> None:
        self.seen.append("clear")

    def trials(self) -> list[TrialEvent]:
        return [e for e in self.seen if isinstance(e, TrialEvent)]

    def epochs(self) -> list[EpochEvent]:
        return [e for e in self.seen if isinstance(e, EpochEvent)]


def run(tmp_path: Path, display: Display, *, pack: int = 1, **kwargs: object) -> Store:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    spec = parse_study(STUDY.format(pack=pack), str(tmp_path / "p.toml"))
    ckpt = str(tmp_path / "ckpt")
    tune(spec, RunOptions(storage=url, checkpoint_dir=ckpt, progress=display, **kwargs))  # type: ignore[arg-type]
    return Store(url)


@pytest.mark.parametrize("pack", [1, 2])
def test_every_epoch_trained_is_shown_as_k_of_n_before_its_trial(tmp_path: Path, pack: int) -> None:
    display = Display()
    store = run(tmp_path, display, pack=pack, n_trials=3)

    trained = [(int(r["trial_number"]), int(r["epoch"]) + 1) for r in store.ledger("p")]
    assert sorted((e.number, e.epoch) for e in display.epochs()) == sorted(trained)
    assert len(trained) == 9 and {e.epochs for e in display.epochs()} == {3}
    for number in range(3):
        mine = [e for e in display.epochs() if e.number == number]
        assert [e.epoch for e in mine] == [1, 2, 3]
        assert all(0.0 <= (e.val_accuracy or 0.0) <= 1.0 for e in mine)
        assert [e.seconds for e in mine] == sorted(e.seconds for e in mine)
        (ended,) = [i for i, e in enumerate(display.seen) if isinstance(e, TrialEvent)
                    and e.number == number]  # fmt: skip
        assert display.seen.index(mine[-1]) < ended  # its epochs come before its line
    trials = display.trials()
    assert [t.finished for t in trials] == [1, 2, 3]
    values = [t.value for t in trials]
    assert [t.best for t in trials] == [
        max(v for v in values[: i + 1] if v is not None) for i in range(3)
    ]
    assert display.seen[-1] == "clear"  # the display's status line goes when the trials end
    assert all(t.epochs_left is None and t.time_left is None for t in trials)


def test_a_trial_event_says_what_is_left_of_the_budget_and_of_the_timeout(tmp_path: Path) -> None:
    display = Display()
    run(tmp_path, display, n_trials=5, budget_epochs=7, timeout=3600)

    trials = display.trials()
    # 3 + 3 epochs, then the third trial pauses after one: the budget is spent
    assert [(t.epochs_run, t.epochs_left) for t in trials] == [(3, 4), (6, 1), (7, 0)]
    assert trials[-1].state == "paused"
    for t in trials:
        assert t.time_left is not None and 3600 - 120 < t.time_left < 3600
        assert t.time_left == pytest.approx(3600 - t.elapsed, abs=1e-6)
    assert [t.elapsed for t in trials] == sorted(t.elapsed for t in trials)
