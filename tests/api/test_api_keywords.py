"""The Python API refuses a keyword it does not take, or an unknown key of ``space``,
``sampler`` or ``pruner``, with one line naming what was probably meant, before anything is
trained or stored (issue 30, "help and mistakes")."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

import sweeper
from sweeper.errors import ConfigError, KeywordError

pytestmark = pytest.mark.usefixtures("clean_process")

N_TRIALS = "use n_trials=N: the study runs until it holds N finished trials"


def refused(call: Any, *args: Any, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


def test_kerastuner_max_trials_names_n_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    exc = refused(sweeper.tune, "mnist-cnn", "digits", max_trials=5)
    assert isinstance(exc, KeywordError) and isinstance(exc, TypeError)  # as Python's own
    assert str(exc) == f"tune() takes no keyword 'max_trials' (KerasTuner's name); {N_TRIALS}"
    exc = refused(sweeper.Study, "mnist-cnn", "digits", max_trials=5)
    assert str(exc) == f"Study() takes no keyword 'max_trials' (KerasTuner's name); {N_TRIALS}"
    exc = refused(sweeper.Study.from_file, None, max_trials=5)
    assert str(exc) == (
        f"Study.from_file() takes no keyword 'max_trials' (KerasTuner's name); {N_TRIALS}"
    )
    study = sweeper.Study("mnist-cnn", "digits")
    exc = refused(study.tune, max_trials=5)
    assert str(exc) == (
        f"Study.tune() takes no keyword 'max_trials' (KerasTuner's name); {N_TRIALS}"
    )
    assert list(tmp_path.iterdir()) == []  # nothing stored


def test_a_misspelt_keyword_names_the_closest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    exc = refused(sweeper.tune, "mnist-cnn", "digits", epoch=3)
    assert str(exc) == "tune() takes no keyword 'epoch'; did you mean 'epochs'?"
    exc = refused(sweeper.Study, "mnist-cnn", "digits", batchsize=32)
    assert str(exc) == "Study() takes no keyword 'batchsize'; did you mean 'batch_size'?"
    exc = refused(sweeper.Study.from_file, None, n_trial=3)
    assert str(exc) == "Study.from_file() takes no keyword 'n_trial'; did you mean 'n_trials'?"
    exc = refused(sweeper.tune, "mnist-cnn", "digits", zzz=1)
    assert str(exc).startswith("tune() takes no keyword 'zzz'; its keywords: model, data, ")
    assert list(tmp_path.iterdir()) == []


def test_signatures_are_kept() -> None:
    assert "n_trials" in inspect.signature(sweeper.tune).parameters
    assert "n_trials" in inspect.signature(sweeper.Study).parameters
    assert sweeper.tune.__doc__ and "Args:" in sweeper.tune.__doc__


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"space": {"schedule": "cosine"}},
            "space: unknown key 'schedule'; did you mean 'schedules'? known keys: alpha,",
        ),
        (
            {"sampler": {"typ": "random"}},
            "sampler: unknown key 'typ'; did you mean 'type'? known keys: n_startup_trials, "
            "reference, type",
        ),
        (
            {"pruner": {"reduction": 2}},
            "pruner: unknown key 'reduction'; did you mean 'reduction_factor'? known keys:",
        ),
    ],
)
def test_an_unknown_key_of_a_section_mapping(kwargs: dict[str, Any], message: str) -> None:
    for exc in (
        refused(sweeper.Study, "mnist-cnn", "digits", **kwargs),
        refused(sweeper.Study.from_file, None, **kwargs),  # not blamed on a --set item
    ):
        assert str(exc).startswith(message), str(exc)
