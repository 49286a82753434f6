"""A misspelt name says what was probably meant, in one line: study-file keys, ``--set`` paths
(blamed on ``--set``), schedule families and plot kinds, through the real parser and the real
command line; nothing is written (issue 30, "help and mistakes")."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sweeper.cli.commands import main
from sweeper.errors import ConfigError, did_you_mean
from sweeper.studyfile.config import DEFAULT_STUDY, parse_study

pytestmark = pytest.mark.usefixtures("clean_process")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def error_line(result: Result, exit_code: int = 2) -> str:
    """The one ``error:`` line of a failed command (no traceback); returns it."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


# -- the helper ------------------------------------------------------------------------------


def test_did_you_mean_names_the_closest_or_nothing() -> None:
    assert did_you_mean("epoch", ("batch_size", "epochs", "pack")) == "did you mean 'epochs'?"
    assert did_you_mean("xyz", ("batch_size", "epochs")) == ""
    assert did_you_mean(3, ("epochs",)) == ""  # a value that is no name
    keys = {"epochs": "train.epochs"}
    assert did_you_mean("epoch", keys, keys.__getitem__) == "did you mean train.epochs?"


# -- the study file --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[train]\nepoch = 3\n",
            "s.toml: [train]: unknown key 'epoch'; did you mean 'epochs'? known keys: "
            "batch_size, epochs, jit_compile, model, pack (check spelling)",
        ),
        (
            "[traning]\nepochs = 3\n",
            "s.toml: top level: unknown key 'traning'; did you mean 'train'? known keys: "
            "baselines, data, pruner, sampler, space, study, train (check spelling)",
        ),
        (
            "[sampler]\ntyp = 'tpe'\n",
            "s.toml: [sampler]: unknown key 'typ'; did you mean 'type'? known keys: "
            "n_startup_trials, reference, type (check spelling)",
        ),
        (
            "[train]\nzzz = 3\n",  # nothing close: the known keys alone, as before
            "s.toml: [train]: unknown key 'zzz'; known keys: batch_size, epochs, jit_compile, "
            "model, pack (check spelling)",
        ),
    ],
)
def test_an_unknown_key_of_a_section_names_the_closest(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_study(text, "s.toml")
    assert str(info.value) == message


def test_an_unknown_schedule_family_names_the_closest() -> None:
    with pytest.raises(ConfigError) as info:
        parse_study('[space]\nschedules = ["constant", "cosinus"]\n', "s.toml")
    assert str(info.value).startswith(
        "s.toml: [space] schedules[1]: unknown schedule family 'cosinus'; did you mean "
        "'cosine'? choose from constant, time, step,"
    )


@pytest.mark.parametrize(
    ("item", "start"),
    [
        ("epochs=3", "--set epochs=3: unknown key 'epochs' at the top level of s.toml; "),
        ("train.epoch=3", "--set train.epoch=3: unknown key 'epoch' in [train] of s.toml; "),
        (
            "trian.epochs=3",
            "--set trian.epochs=3: unknown key 'trian' at the top level of s.toml; ",
        ),
        ("study.epochs=3", "--set study.epochs=3: unknown key 'epochs' in [study] of s.toml; "),
    ],
)
def test_an_unknown_set_path_is_blamed_on_set_and_names_the_path(item: str, start: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_study("[train]\nepochs = 2\n", "s.toml", overrides=[item])
    message = str(info.value)
    assert message.startswith(start), message
    assert "did you mean train.epochs?" in message
    assert "\n" not in message


def test_a_key_of_two_sections_names_both() -> None:
    with pytest.raises(ConfigError) as info:
        parse_study("", "s.toml", overrides=["seed=1"])
    assert str(info.value) == (
        "--set seed=1: unknown key 'seed' at the top level of s.toml; did you mean study.seed "
        "or data.seed?"
    )


# -- the command line ------------------------------------------------------------------------


def test_tune_set_without_its_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = error_line(run("tune", "--set", "epochs=3"))
    assert line == (
        f"error: --set epochs=3: unknown key 'epochs' at the top level of {DEFAULT_STUDY}; "
        "did you mean train.epochs?"
    )
    assert list(tmp_path.iterdir()) == []  # no store, no checkpoint folder


def test_tune_set_with_a_misspelt_key_blames_set_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.toml").write_text("[train]\nepochs = 2\n")
    line = error_line(run("tune", "small.toml", "--set", "train.epoch=3"))
    assert line == (
        "error: --set train.epoch=3: unknown key 'epoch' in [train] of small.toml; did you mean "
        "train.epochs? known keys: batch_size, epochs, jit_compile, model, pack"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "small.toml"]


def test_tune_study_file_with_a_misspelt_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.toml").write_text("[train]\nepoch = 2\n")
    line = error_line(run("tune", "small.toml"))
    assert line.startswith(
        "error: small.toml: [train]: unknown key 'epoch'; did you mean 'epochs'? known keys:"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "small.toml"]


def test_tune_study_file_with_a_misspelt_family(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.toml").write_text('[space]\nschedules = "cosin"\n')
    line = error_line(run("tune", "small.toml"))
    assert line.startswith(
        "error: small.toml: [space] schedules[0]: unknown schedule family 'cosin'; did you "
        "mean 'cosine'? choose from constant,"
    )


def test_plot_with_a_misspelt_kind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    line = error_line(run("plot", "digits", "histroy", "--storage", url))
    assert line == (
        "error: unknown plot kind 'histroy'; did you mean 'history'? choose from: history, "
        "anytime, importance, lr-curves, learning-curves, families, parallel, slice, contour "
        "(or all)"
    )
    assert list(tmp_path.iterdir()) == []


def test_schedules_with_a_misspelt_family() -> None:
    line = error_line(run("schedules", "--family", "cosinus"), exit_code=1)
    assert line.startswith(
        "error: unknown schedule family 'cosinus'; did you mean 'cosine'? choose from: constant,"
    )
