"""Tests for ``sweeper confirm`` (sweeper.retraining.confirm, sweeper.retraining.confirmation and the read
side's sweeper.analysis.confirmed): a tiny real study, real retraining, a real store."""

from __future__ import annotations

import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner, Result
from process_helpers import sweeper_env

from sweeper.analysis import queries as an
from sweeper.analysis.confirmed import confirmed
from sweeper.api.facade import load
from sweeper.cli.commands import main
from sweeper.errors import ConfirmError
from sweeper.retraining.confirm import chosen, confirm, stored_runs
from sweeper.retraining.confirmation import (
    ConfirmedConfig,
    ConfirmRun,
    candidates,
    confirmation,
    paired_probability,
    student_t_cdf,
    winner_text,
)
from sweeper.search.configurations import configurations
from sweeper.search.run_options import RunOptions
from sweeper.search.runner import tune
from sweeper.store.store import Store
from sweeper.store.tables import ConfirmationRow
from sweeper.studyfile.config import load_study_file

STUDY = "digits"
BASELINE = 'baselines=[{name = "c01", schedule = "constant", initial_lr = 0.1}]'
# a baseline, the reference configuration and 3 tuned configurations, all complete
OVERRIDES = [
    "train.epochs=1",
    "data.subset=300",
    "study.n_trials=5",
    "pruner.type=none",
    BASELINE,
]
EPOCHS = 1

pytestmark = pytest.mark.usefixtures("clean_process")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tuned study nobody has confirmed; copy it before use (:func:`copy_of`)."""
    db = tmp_path_factory.mktemp("confirm") / "pristine.db"
    summary = tune(
        load_study_file(None, overrides=OVERRIDES), RunOptions(storage=f"sqlite:///{db}")
    )
    assert summary.counts["complete"] == 5, summary.counts
    return db


def copy_of(db: Path, target: Path) -> str:
    src, dst = sqlite3.connect(db), sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{target}"


@pytest.fixture(scope="module")
def confirmed_url(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The study confirmed once, top 2, 2 seeds."""
    url = copy_of(pristine, tmp_path_factory.mktemp("confirmed") / "c.db")
    confirm(STUDY, storage=url, top=2, seeds=2)
    return url


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def rows(url: str) -> list[tuple[int, int, int, int, float]]:
    """(id, config_number, repeat, seed, val_accuracy) of every stored confirming run."""
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return con.execute(
            "SELECT id, config_number, repeat, seed, val_accuracy FROM sweeper_confirmations "
            "ORDER BY id"
        ).fetchall()
    finally:
        con.close()


def spent(url: str) -> int:
    return Store(url).epochs_spent(STUDY)


# -- the statistic ---------------------------------------------------------------------------


def test_student_t_cdf_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 9, 40):
        for t in (-7.0, -1.3, -0.2, 0.0, 0.4, 1.9, 25.0):
            assert student_t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-12)


def test_paired_probability_is_one_minus_the_one_sided_paired_t_p_value() -> None:
    stats = pytest.importorskip("scipy.stats")
    a, b = [0.971, 0.969, 0.975, 0.968], [0.970, 0.966, 0.972, 0.969]
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    p_value = stats.ttest_rel(a, b, alternative="greater").pvalue
    assert paired_probability(diffs) == pytest.approx(1 - p_value)
    assert paired_probability([0.01]) is None  # one seed: no spread
    assert paired_probability([0.01, 0.01]) == 1.0
    assert paired_probability([0.0, 0.0]) == 0.5


# -- confirm: runs, winner, resume, ledger -----------------------------------------------------


def test_confirm_stores_seeds_runs_per_configuration_and_names_the_best_mean(
    pristine: Path, tmp_path: Path
) -> None:
    url = copy_of(pristine, tmp_path / "c.db")
    before = spent(url)
    c = confirm(STUDY, storage=url, top=3, seeds=2)
    trials = optuna.load_study(study_name=STUDY, storage=url).get_trials()
    top = candidates(configurations(trials))[:3]
    assert [x.config_number for x in c.configs] == [t.number for t in top]  # validation order
    assert all(x.trial_number == t.last.number for x, t in zip(c.configs, top, strict=True))
    assert not any(t.baseline for t in top)  # baselines never; the reference may be there
    stored = stored_runs(Store(url), STUDY, EPOCHS)
    assert len(stored) == 3 * 2 and c.trained == 6
    for x in c.configs:
        assert [r.repeat for r in x.runs] == [0, 1]
        assert [r.seed for r in x.runs] == [1, 2]  # the study's seed 0 picked them: not reused
        assert x.mean == pytest.approx(statistics.fmean(x.accuracies))
        assert x.se == pytest.approx(statistics.stdev(x.accuracies) / 2**0.5)
    best = max(c.configs, key=lambda x: (x.mean or 0.0, -x.rank))
    assert c.complete and c.winner is best and c.ranked[0] is best
    assert c.comparison is not None and c.comparison.runner_up is c.ranked[1]
    # the ledger counts every epoch confirm trained, with no validation value of the search
    assert spent(url) - before == 3 * 2 * EPOCHS == c.epochs_trained
    assert c.epochs_spent == spent(url)
    ledger = Store(url).ledger(STUDY)
    assert [r["val_accuracy"] for r in ledger[before:]] == [None] * 6


def test_the_same_command_again_trains_nothing_and_more_seeds_train_only_the_new_ones(
    confirmed_url: str, tmp_path: Path
) -> None:
    url = copy_of(Path(confirmed_url.removeprefix("sqlite:///")), tmp_path / "again.db")
    first, ledger = rows(url), spent(url)
    again = run("confirm", STUDY, "--storage", url, "--top", "2", "--seeds", "2")
    assert again.exit_code == 0, again.output
    assert rows(url) == first and spent(url) == ledger
    assert "nothing trained now: every run was stored already" in again.stdout
    assert "confirmed winner: trial " in again.stdout
    more = confirm(STUDY, storage=url, top=2, seeds=3, progress=None)
    assert more.trained == 2 and more.epochs_trained == 2 * EPOCHS
    assert rows(url)[: len(first)] == first and len(rows(url)) == len(first) + 2
    assert all(len(x.runs) == 3 for x in more.configs)


def test_cli_prints_mean_se_per_configuration_and_the_paired_probability(
    confirmed_url: str,
) -> None:
    result = run("confirm", STUDY, "--storage", confirmed_url, "--top", "2", "--seeds", "2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "the 2 best configurations, 2 seeds each, 1 epochs on the training split" in out
    assert "confirmed (2 seeds)" in out and out.count(" ± ") >= 2
    assert "paired t over 2 seeds" in out
    assert "study has spent" in out


# -- bad input: one line, the store unchanged ------------------------------------------------


def _files(db: Path) -> tuple[bytes, bytes]:
    """The store's bytes: its file, and its write-ahead log (none or empty: nothing pending)."""
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes(), wal.read_bytes() if wal.exists() else b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--top", "9"],
            "error: --top 9: study 'digits' has 4 complete configurations besides the "
            "baselines; give --top 4 or less",
        ),
        (["--seeds", "1"], "error: --seeds must be at least 2: a spread needs two runs"),
        (["--seeds", "0"], "error: --seeds must be at least 2"),
        (["--top", "0"], "error: --top must be at least 1, got 0"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_store_as_it_was(
    pristine: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    url = copy_of(pristine, tmp_path / "b.db")
    before = _files(tmp_path / "b.db")
    result = run("confirm", STUDY, "--storage", url, *args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert _files(tmp_path / "b.db") == before


def test_a_study_without_a_complete_configuration_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    store = Store(url)
    study = optuna.create_study(study_name="empty", storage=store.optuna_storage(heartbeat=False))
    study.enqueue_trial({"x": 0.5}, user_attrs={"baseline": "b"})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # a baseline alone
    store.close()
    before = _files(tmp_path / "e.db")
    result = run("confirm", "empty", "--storage", url)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "error: study 'empty' has no complete configuration besides the baselines yet; run "
        "'sweeper tune' first"
    ]
    assert _files(tmp_path / "e.db") == before
    with pytest.raises(ConfirmError, match="no complete configuration"):
        confirm("empty", storage=url)


# -- the read side: best, the report, result.best --------------------------------------------


def test_best_says_when_there_is_no_confirmed_winner_yet(pristine: Path, tmp_path: Path) -> None:
    url = copy_of(pristine, tmp_path / "n.db")
    before = _files(tmp_path / "n.db")
    result = run("best", STUDY, "--storage", url)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == (
        "not confirmed yet: sweeper confirm digits --top 3 --seeds 3"
    )
    assert _files(tmp_path / "n.db") == before  # read-only
    assert load(STUDY, url).confirmation is not None
    assert load(STUDY, url).best.confirmed is None  # type: ignore[union-attr]


def test_best_shows_the_confirmed_winner(confirmed_url: str) -> None:
    result = run("best", STUDY, "--storage", confirmed_url)
    assert result.exit_code == 0, result.output
    c = load(STUDY, confirmed_url).confirmation
    assert c is not None and c.winner is not None and c.comparison is not None
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(
        f"confirmed winner: trial {c.winner.trial_number} (mean {c.winner.mean:.4f} ± "
        f"{c.winner.se:.4f} over 2 seeds; beats trial {c.comparison.runner_up.trial_number} "
        "with probability "
    )


def _store_runs(url: str, winner: int, loser: int, trials: dict[int, int]) -> None:
    """Confirming runs, as ``confirm --top 2 --seeds 2`` would store them, in which ``winner``
    (a configuration number) beats ``loser`` on both seeds."""
    store = Store(url)
    with store.session() as s:
        for config, accuracies in ((winner, (0.9, 0.92)), (loser, (0.5, 0.52))):
            for repeat, acc in enumerate(accuracies):
                s.add(
                    ConfirmationRow(
                        study_name=STUDY,
                        config_number=config,
                        trial_number=trials[config],
                        repeat=repeat,
                        seed=1 + repeat,
                        val_accuracy=acc,
                        val_loss=0.3,
                        epochs=EPOCHS,
                        seconds=1.0,
                        request_top=2,
                        request_seeds=2,
                    )
                )
    store.close()


def test_a_confirmed_winner_other_than_the_validation_best_is_result_best_and_handed_over(
    pristine: Path, tmp_path: Path
) -> None:
    url = copy_of(pristine, tmp_path / "w.db")
    trials = optuna.load_study(study_name=STUDY, storage=url).get_trials()
    first, second = candidates(configurations(trials))[:2]
    numbers = {c.number: c.last.number for c in (first, second)}
    result = load(STUDY, url)
    assert result.best is not None and result.best.number == first.last.number  # unconfirmed
    _store_runs(url, second.number, first.number, numbers)
    best = result.best
    assert best is not None and best.number == second.last.number
    assert best.confirmed is not None and best.confirmed.mean == pytest.approx(0.91)
    out = run("best", STUDY, "--storage", url).stdout
    assert f"confirmed winner: trial {second.last.number} (mean 0.9100 ± 0.0100 over 2" in out
    assert f"beats trial {first.last.number}" in out
    code = run("best", STUDY, "--storage", url, "--code").stdout
    assert f"trial {second.last.number} " in code.splitlines()[0]
    page = (tmp_path / "r").joinpath(f"{STUDY}-report.html")
    assert run("report", STUDY, "--storage", url, "--out", str(tmp_path / "r")).exit_code == 0
    html = page.read_text()
    assert "Confirmed winner" in html and f"confirmed winner: trial {second.last.number}" in html


def test_a_configuration_new_in_the_top_makes_the_confirmation_incomplete(
    confirmed_url: str,
) -> None:
    data = an.load(confirmed_url, STUDY)
    c = confirmed(confirmed_url, data)
    assert c is not None and c.complete and c.top == 2
    # the same runs judged against a top of 3, as after a third configuration entered it
    top3 = candidates(configurations(data.trials))[:3]
    runs = [r for x in c.configs for r in x.runs]
    c3 = confirmation(STUDY, top3, runs, seeds=2, epochs=EPOCHS)
    assert c3.missing == 2 and c3.winner is None and c3.comparison is None
    assert winner_text(c3) == (
        "not confirmed yet (4 of 6 runs stored): sweeper confirm digits --top 3 --seeds 2"
    )


# -- Ctrl-C and SIGKILL: the same command resumes, no run repeated, none lost -----------------


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_stopped_confirm_resumes_without_repeating_a_stored_run(
    pristine: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    url = copy_of(pristine, tmp_path / "k.db")
    cmd = [sys.executable, "-m", "sweeper", "confirm", STUDY, "--storage", url]
    cmd += ["--top", "2", "--seeds", "3"]
    env = sweeper_env()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not _stored(tmp_path / "k.db") and proc.poll() is None:
        assert time.monotonic() < deadline, "no run stored in time"
        time.sleep(0.05)
    os.kill(proc.pid, sig)  # mid-way: a run stored, the next one training
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1] == "interrupted: rerun the same command to resume"
    before = rows(url)
    assert 1 <= len(before) < 6, before
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    after = rows(url)
    assert after[: len(before)] == before  # nothing stored was touched
    assert len(after) == 6 and len({(r[1], r[2]) for r in after}) == 6  # none lost, none twice
    trained = [ln for ln in again.stderr.splitlines() if ln.startswith("  trial ")]
    assert len(trained) == 6 - len(before)  # only the missing runs were trained
    assert f"{6 - len(before)} of 6 runs to train ({len(before)} stored already)" in again.stderr
    assert "confirmed winner: trial " in again.stdout


def _stored(db: Path) -> bool:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return bool(con.execute("SELECT count(*) FROM sweeper_confirmations").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return False


# -- the API ---------------------------------------------------------------------------------


def test_the_api_confirms_and_returns_a_dataclass(confirmed_url: str) -> None:
    result = load(STUDY, confirmed_url)
    c = result.confirm(top=2, seeds=2, progress=False)
    assert c.trained == 0 and c.complete  # stored by the fixture
    assert isinstance(c.configs[0], ConfirmedConfig)
    assert isinstance(c.configs[0].runs[0], ConfirmRun)
    assert result.best is not None and result.best.number == c.winner.trial_number  # type: ignore[union-attr]
    assert result.best.confirmed == c.winner  # type: ignore[union-attr]
    with pytest.raises(ConfirmError, match="--seeds must be at least 2"):
        result.confirm(top=2, seeds=1)


def test_the_default_top_is_three_or_as_many_as_the_study_has(pristine: Path) -> None:
    trials = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{pristine}").get_trials()
    configs = configurations(trials)
    found = candidates(configs)
    assert len(found) == 4 and len(chosen(STUDY, configs, None)) == 3
    two = [c for c in configs if c.baseline or c in found[:2]]
    assert [c.number for c in chosen(STUDY, two, None)] == [c.number for c in found[:2]]
    with pytest.raises(ConfirmError, match=r"has 2 complete configurations .* give --top 2"):
        chosen(STUDY, two, 3)
