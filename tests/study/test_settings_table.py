"""The table of settings (sweeper.studyfile.settings) is the one declaration of every study-file
setting outside [space]: README's reference is made from it, the study file and the Python API
take each setting it names, the parser's defaults are its defaults, and so are those of the
dataclasses below the study-file layer."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest

import sweeper
from sweeper.api.settings import SETTINGS as API_SETTINGS
from sweeper.api.settings import StudySettings
from sweeper.errors import ConfigError
from sweeper.studyfile.config import parse_study
from sweeper.studyfile.settings import (
    API_KEYWORDS,
    SECTION_KEYS,
    SETTINGS,
    TABLE,
    reference,
    toml_value,
)
from sweeper.studyfile.study_spec import StudySpec
from sweeper.training.data import DataSpec
from sweeper.training.train_trial import TrainSettings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# keywords of the API that are no single setting of the table
API_ONLY = {"model", "data", "space", "sampler", "pruner", "baselines", "data_dir"}
RENAMED = {"type": "kind", "dataset": "name"}  # setting key -> spec attribute


def spec_value(spec: StudySpec, section: str, key: str) -> Any:
    holder = {
        "study": spec,
        "data": spec.data,
        "train": spec.train,
        "sampler": spec.sampler,
        "pruner": spec.pruner,
    }
    return getattr(holder[section], RENAMED.get(key, key))


def test_readme_reference_is_made_from_the_table() -> None:
    block = README[README.index("## Study file reference") :]
    block = block[block.index("```toml\n") + len("```toml\n") :]
    assert block.startswith(reference()), (
        "README's reference is out of date: paste the output of python -c 'from "
        "sweeper.studyfile.settings import reference; print(reference())' into it"
    )
    for setting in TABLE:
        assert f"\n{setting.key} = " in "\n" + reference()


def test_section_keys_are_the_table_and_the_dimensions() -> None:
    from sweeper.studyfile.dimensions import DIMENSIONS

    assert [k for s, keys in SECTION_KEYS.items() if s != "space" for k in keys] == [
        s.key for s in sorted(TABLE, key=lambda s: list(SECTION_KEYS).index(s.section))
    ]
    assert SECTION_KEYS["space"] == ("schedules", *DIMENSIONS)
    assert len(SETTINGS) == len(TABLE)  # no section.key twice


def test_an_empty_study_file_holds_every_default() -> None:
    spec = parse_study("", "empty.toml", default_name="empty")
    for setting in TABLE:
        want = setting.default
        if setting.path == "study.name":
            want = "empty"
        assert spec_value(spec, setting.section, setting.key) == want, setting.path


def test_the_study_file_takes_every_setting_shown(tmp_path: Path) -> None:
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    text = tomllib.loads(reference())  # the reference itself is a valid study file
    spec = parse_study(reference(), "ref.toml", base_dir=tmp_path)
    for setting in TABLE:
        got = spec_value(spec, setting.section, setting.key)
        shown = text[setting.section][setting.key]
        if setting.path == "data.path":
            shown = str(tmp_path / "data" / "mnist")
        assert got == shown, setting.path


@pytest.mark.parametrize(
    "setting", [s for s in TABLE if s.kind in ("int", "float")], ids=lambda s: s.path
)
def test_a_number_outside_its_limits_is_one_line(setting: Any) -> None:
    bad = (setting.low - 1) if setting.low is not None else -1
    if setting.kind == "int":
        bad = int(bad)
    with pytest.raises(ConfigError) as info:
        parse_study(f"[{setting.section}]\n{setting.key} = {toml_value(bad)}\n", "bad.toml")
    message = str(info.value)
    assert "\n" not in message
    # the data section's numbers are checked by DataSpec, which names the key after the colon
    assert message.startswith(f"bad.toml: [{setting.section}]")
    assert f" {setting.key}" in message


def test_the_lower_layers_dataclasses_default_as_the_table() -> None:
    for cls, section, renamed in (
        (DataSpec, "data", {"name": "dataset"}),
        (TrainSettings, "train", {}),
    ):
        for field in dataclasses.fields(cls):
            key = renamed.get(field.name, field.name)
            if f"{section}.{key}" in SETTINGS:
                assert field.default == SETTINGS[f"{section}.{key}"].default, (cls, key)


def test_the_api_keywords_are_the_tables() -> None:
    typed = set(typing.get_type_hints(StudySettings))
    assert typed == set(API_KEYWORDS) | API_ONLY
    assert {kw: (s.section, s.key) for kw, s in API_KEYWORDS.items()} == API_SETTINGS
    # every table keyword is a Study keyword
    import inspect

    params = inspect.signature(sweeper.Study).parameters
    takes_settings = any(p.kind is p.VAR_KEYWORD for p in params.values())
    assert takes_settings or set(API_KEYWORDS) <= set(params)


@pytest.mark.parametrize("keyword", [kw for kw in API_KEYWORDS if kw != "data_path"], ids=str)
def test_the_api_takes_every_keyword_as_its_setting(
    keyword: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    setting = API_KEYWORDS[keyword]
    value = setting.shown()
    study = sweeper.Study("mnist-cnn", "digits", **{keyword: value})
    assert spec_value(study.spec, setting.section, setting.key) == value
    assert tomllib.loads(study.to_toml())[setting.section][setting.key] == value
    assert list(tmp_path.iterdir()) == []


def test_the_api_takes_data_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    mnist = ROOT / "studies" / "data" / "mnist-t10k"
    study = sweeper.Study("mnist-cnn", "mnist", data_path=mnist)
    assert Path(study.spec.data.path or "") == mnist.resolve()


def test_tune_takes_every_keyword_and_documents_its_default() -> None:
    """``sweeper.tune`` spells the settings out (its signature is its help); each one is a
    keyword, documented, and any default its docstring gives is the table's."""
    import inspect
    import re

    from sweeper.api.facade import tune

    params = inspect.signature(tune).parameters
    doc = inspect.getdoc(tune) or ""
    args = doc[doc.index("Args:") : doc.index("Returns:")]
    entries = dict(re.findall(r"^    (\w+): (.*?)(?=^    \w+: |\Z)", args, re.M | re.S))
    for name, setting in API_KEYWORDS.items():
        keyword = "study_name" if name == "name" else name  # tune() names the study so
        assert keyword in params, keyword
        assert keyword in entries, f"tune()'s docstring has no entry for {keyword}"
        stated = re.search(r"\[default: ([^\]]*)\]", entries[keyword])
        if stated and setting.default is not None:
            assert stated.group(1).strip('"') == str(setting.default), keyword


def test_the_api_reaches_every_setting() -> None:
    """A setting with no keyword of its own is set another way: the model and data arguments,
    the sampler and pruner mappings, or the run option of ``Study.tune`` (artifacts)."""
    import inspect

    study_params = set(inspect.signature(sweeper.Study).parameters)
    run_params = set(inspect.signature(sweeper.Study.tune).parameters)
    tune_params = set(inspect.signature(sweeper.tune).parameters)
    other_ways = {"train.model": "model", "data.dataset": "data", "study.artifacts": "artifacts"}
    for setting in TABLE:
        if setting.keyword is not None:
            assert setting.keyword in study_params or setting.keyword in tune_params
        elif setting.section in ("sampler", "pruner"):
            assert setting.section in study_params and setting.section in tune_params
        else:
            way = other_ways[setting.path]
            assert way in study_params | run_params and way in tune_params, setting.path


def test_every_sampler_and_pruner_kind_has_its_factory() -> None:
    from sweeper.search.samplers_pruners import PRUNER_FACTORIES, SAMPLER_FACTORIES
    from sweeper.studyfile.settings import PRUNER_KINDS, PRUNERS, SAMPLER_KINDS, SAMPLERS

    assert list(SAMPLER_FACTORIES) == list(SAMPLERS) == [k.name for k in SAMPLER_KINDS]
    assert list(PRUNER_FACTORIES) == list(PRUNERS) == [k.name for k in PRUNER_KINDS]
    assert SETTINGS["sampler.type"].choices == SAMPLERS
    assert SETTINGS["pruner.type"].choices == PRUNERS
