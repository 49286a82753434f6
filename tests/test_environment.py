"""Every ``SWEEPER_*`` environment variable is declared once, in sweeper/environment.py: no other
module of the package spells a name out in a string (read from the source with ``ast``;
docstrings and help texts that mention ``$SWEEPER_STORAGE`` are documentation), every name the
package mentions is declared, and README.md's "Environment variables" table lists each. And the
accessors parse the values as the readers expect."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sweeper import environment as env

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sweeper"
DECLARING = PACKAGE / "environment.py"
NAME = re.compile(r"\bSWEEPER_[A-Z0-9_]+")


def _spelt_out(source: str) -> list[str]:
    """The string constants of ``source`` that start with a variable's name (f-strings' parts
    too): ``os.environ.get("SWEEPER_X")``, ``env["SWEEPER_X"] = ...``, ``f"SWEEPER_{x}"``."""
    return [
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("SWEEPER_")
    ]


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Environment variables\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_no_other_module_spells_out_a_variable() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20 and DECLARING in files
    found = [
        f"{file.relative_to(ROOT)}: {value!r}"
        for file in files
        if file != DECLARING
        for value in _spelt_out(file.read_text())
    ]
    assert found == []


def test_every_variable_the_package_mentions_is_declared() -> None:
    files = [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.pyi")]
    mentioned = {m for file in files for m in NAME.findall(file.read_text())}
    assert "SWEEPER_STORAGE" in mentioned
    assert mentioned - set(env.VARIABLES) == set()


def test_each_variable_is_declared_once_with_a_one_line_doc() -> None:
    constants = {
        value for key, value in vars(env).items() if key.endswith("_ENV") and isinstance(value, str)
    }
    assert constants == set(env.VARIABLES)
    assert len(env.VARIABLES) >= 8
    for name, doc in env.VARIABLES.items():
        assert NAME.fullmatch(name), name
        assert doc.strip() and "\n" not in doc, name
    declarations = [
        node.args[0]
        for node in ast.walk(ast.parse(DECLARING.read_text()))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "_declared"
    ]
    assert len(declarations) == len(env.VARIABLES)  # none declared twice


def test_every_variable_is_in_the_readme_table() -> None:
    section = _readme_section()
    rows = re.findall(r"^\| `(SWEEPER_[A-Z0-9_]+)` \| \S", section, re.MULTILINE)
    assert sorted(rows) == sorted(env.VARIABLES)
    readme = (ROOT / "README.md").read_text()
    assert set(NAME.findall(readme)) <= set(env.VARIABLES)  # no stale name elsewhere


def test_the_literal_check_can_fail() -> None:
    source = (
        '"""Reads $SWEEPER_STORAGE."""\n'
        'import os\nos.environ.get("SWEEPER_STORAGE")\n'
        "x = 1\nf'SWEEPER_{x}'\n"
        'help = "default: $SWEEPER_STORAGE"\n'
    )
    assert _spelt_out(source) == ["SWEEPER_STORAGE", "SWEEPER_"]


def test_the_accessors_parse_the_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in env.VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert env.storage_from_env() is None
    assert env.checkpoint_root_from_env() is None and env.data_dir_from_env() is None
    assert env.heartbeat_grace_from_env() is None and env.worker_index_from_env() is None
    assert not env.verbose_from_env()
    assert env.trusted_hash_from_env() is None and env.kill_at_from_env() is None

    monkeypatch.setenv(env.STORAGE_ENV, "")
    assert env.storage_from_env() == ""  # set but empty: the store refuses it in one line
    monkeypatch.setenv(env.CHECKPOINT_ENV, "")
    assert env.checkpoint_root_from_env() is None
    monkeypatch.setenv(env.CHECKPOINT_ENV, str(tmp_path))
    assert env.checkpoint_root_from_env() == tmp_path
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(env.DATA_DIR_ENV, "~/arrays")
    assert env.data_dir_from_env() == tmp_path / "arrays"
    for raw, seconds in ((" 7 ", 7), ("0", 0), ("x", None), ("-3", None), ("1.5", None)):
        monkeypatch.setenv(env.HEARTBEAT_GRACE_ENV, raw)
        assert env.heartbeat_grace_from_env() == seconds, raw
    for raw, index in (("0", 0), ("3", 3), ("", None), ("two", None)):
        monkeypatch.setenv(env.WORKER_INDEX_ENV, raw)
        assert env.worker_index_from_env() == index, raw
    for raw, verbose in (("0", False), ("", False), ("1", True), ("2", True)):
        monkeypatch.setenv(env.VERBOSE_ENV, raw)
        assert env.verbose_from_env() is verbose, raw
    monkeypatch.setenv(env.KILL_AT_ENV, "after-tell")
    assert env.kill_at_from_env() == "after-tell"
