"""Inputs that were once accepted and should not be (issue 28, F7 and F8): each refused in one
line that says what is wrong and how to fix it, a non-zero exit, no traceback, the store's bytes
unchanged and no file left behind; and no control byte of a study name in the report's HTML or
a figure's title.

Through click's CliRunner against a real SQLite store; nothing trains (every case is refused
before the model is built).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from click.testing import CliRunner, Result

from sweeper.analysis import plots
from sweeper.analysis import queries as analysis
from sweeper.cli.commands import main

pytestmark = pytest.mark.usefixtures("clean_process")

NPZ_STUDY = """\
[study]
name = "f7"

[data]
dataset = "npz"
path = "{file}"

[train]
epochs = 1
"""


def npz(folder: Path, name: str, y: np.ndarray) -> str:
    x = np.random.default_rng(0).integers(0, 256, size=(len(y), 6, 5), dtype=np.uint8)
    np.savez(folder / f"{name}.npz", x=x, y=y)
    return f"{name}.npz"


def study_file(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(text)
    return name


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A folder with a store holding a study, and the files the cases name."""
    study = optuna.create_study(
        study_name="kept", storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize"
    )
    study.tell(study.ask(), 0.5)
    (tmp_path / "text.npz").write_text("x,y\n1,2\n")
    (tmp_path / "a-folder").mkdir()
    for name, y in (
        ("one-class", np.zeros(100, np.int64)),
        ("three", np.arange(3) % 2),
        ("huge-labels", np.r_[np.arange(99) % 4, 2_000_000_000]),
    ):
        study_file(tmp_path, f"{name}.toml", NPZ_STUDY.format(file=npz(tmp_path, name, y)))
    study_file(tmp_path, "text.toml", NPZ_STUDY.format(file="text.npz"))
    study_file(tmp_path, "seed.toml", "[study]\nseed = 9223372036854775807\n")
    study_file(
        tmp_path,
        "rate.toml",
        '[[baselines]]\nname = "b"\nschedule = "constant"\ninitial_lr = 1e300\n',
    )
    return tmp_path


STORE = "sqlite:///s.db"

# id: (command line, environment, parts of the one error line)
CASES: dict[str, tuple[list[str], dict[str, str], list[str]]] = {
    "seed-set": (
        ["tune", "--set", "study.seed=9223372036854775807"],
        {},
        ["[study] seed", "at most 4294967295", "9223372036854775807"],
    ),
    "seed-file": (["tune", "seed.toml"], {}, ["seed.toml", "[study] seed", "at most 4294967295"]),
    "data-seed": (["tune", "--set", "data.seed=4294967296"], {}, ["seed", "[0, 4294967295]"]),
    "rate-set": (
        ["tune", "--set", "space.initial_lr=1e300"],
        {},
        ["[space] initial_lr", "at most 10", "1e+300"],
    ),
    "rate-baseline": (["tune", "rate.toml"], {}, ["[[baselines]] #1 initial_lr", "at most 10"]),
    "npz-text": (["tune", "text.toml"], {}, ["not a .npz archive: ", "text.npz", "numpy.savez"]),
    "labels-one-class": (["tune", "one-class.toml"], {}, ["one class", "at least 2 classes"]),
    "labels-too-few": (["tune", "three.toml"], {}, ["3 training examples", "at least 10"]),
    "labels-huge": (
        ["tune", "huge-labels.toml"],
        {},
        ["labels up to 2,000,000,000", "class indices 0..K-1"],
    ),
    "storage-empty": (["tune", "--storage", ""], {}, ["storage URL is empty", "sqlite:///"]),
    "storage-env-empty": (
        ["tune"],
        {"SWEEPER_STORAGE": ""},
        ["$SWEEPER_STORAGE is set but empty", "unset it"],
    ),
    "storage-memory": (
        ["tune", "--storage", "sqlite:///:memory:"],
        {},
        ["sqlite:///:memory: is an in-memory database", "give a file"],
    ),
    "storage-directory": (
        ["tune", "--storage", "sqlite:///a-folder"],
        {},
        ["a-folder is a directory, not a store file", "a-folder/sweeper.db"],
    ),
    "study-name-empty": (["tune", "--study-name", ""], {}, ["--study-name '' is empty"]),
    "worker-study-name-empty": (
        ["worker", "--study-name", ""],
        {},
        ["--study-name is empty", "a study in the store"],
    ),
    "status-storage-directory": (
        ["status", "--storage", "sqlite:///a-folder"],
        {},
        ["a-folder is a directory, not a store file"],
    ),
    "status-storage-empty": (["status", "--storage", ""], {}, ["storage URL is empty"]),
    "best-storage-env-empty": (
        ["best", "kept"],
        {"SWEEPER_STORAGE": ""},
        ["$SWEEPER_STORAGE is set but empty"],
    ),
}


def one_error_line(result: Result) -> str:
    assert "Traceback" not in result.output, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [ln for ln in result.stderr.splitlines() if not ln.startswith("tuning ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder``, with its content's digest."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else ""
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_input_that_cannot_work_is_one_line_and_the_store_unchanged(
    case: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    args, env, parts = CASES[case]
    if args[0] in ("tune", "worker", "best") and "--storage" not in args and not env:
        args = [*args, "--storage", STORE]
    if args[0] == "tune":
        args = [*args, "--n-trials", "1", "--checkpoint-dir", "ckpt"]
    before = snapshot(workdir)
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code != 0, result.output
    line = one_error_line(result)
    for part in parts:
        assert part in line, (part, line)
    assert snapshot(workdir) == before  # the store's bytes too; no sweeper.db, no checkpoints


# -- F8: a study name from another tool, holding control bytes ----------------------------------

HOSTILE = "evil\x1b[2J\x07name"


@pytest.fixture()
def hostile_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    study = optuna.create_study(study_name=HOSTILE, storage=url, direction="maximize")
    for x in (0.1, 0.5, 0.9):
        trial = study.ask({"initial_lr": optuna.distributions.FloatDistribution(1e-3, 1, log=True)})
        study.tell(trial, x)
    return url


def test_no_control_byte_of_a_study_name_reaches_the_report(
    hostile_store: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main, ["report", HOSTILE, "--out", str(tmp_path / "out"), "--storage", hostile_store]
    )
    assert result.exit_code == 0, result.output
    (page,) = (tmp_path / "out").glob("*.html")
    text = page.read_text()
    assert not any(ord(c) < 32 and c not in "\n\t\r" for c in text)
    assert "<h1>Study evil\\x1b[2J\\x07name</h1>" in text
    assert "<title>sweeper report: evil\\x1b[2J\\x07name</title>" in text


def test_no_control_byte_of_a_study_name_reaches_a_figure(hostile_store: str) -> None:
    from matplotlib.text import Text

    data = analysis.load(hostile_store, HOSTILE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "Glyph 27 missing" would fail here
        for kind in ("history", "families"):
            fig = plots.draw(data, kind)
            texts = [t.get_text() for t in fig.findobj(Text)]
            titles = [t for t in texts if "evil" in t]
            assert titles, (kind, texts)
            assert all("\x1b" not in t and "\x07" not in t for t in texts), (kind, titles)
            fig.canvas.draw()
    assert "\x1b" not in plots.anytime_title([HOSTILE, "b"])
    report = SimpleNamespace(heading="importance at epoch 4", evaluator="ped-anova")
    assert "\x1b" not in plots.importance_title(HOSTILE, report)  # type: ignore[arg-type]
