"""Every error a user can fix is declared once, in sweeper/errors.py, and is a name of the
package: every class of the package that derives from ``SweeperError`` (found with ``ast``, so
no module is imported and Keras stays out) is defined there, and ``sweeper.<Name>`` is that
class, in ``sweeper.__all__`` and the stub."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sweeper
from sweeper import errors
from sweeper.errors import SweeperError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sweeper"
ERRORS_FILE = "sweeper/errors.py"

ClassDecl = tuple[str, str, frozenset[str]]  # file, class name, the names of its bases


def _name(node: ast.expr) -> str:
    """A base's name: ``ConfigError``, ``errors.ConfigError`` -> ``ConfigError``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return node.id if isinstance(node, ast.Name) else ast.unparse(node)


def _classes(source: str, file: str) -> list[ClassDecl]:
    tree = ast.parse(source)
    alias = {  # from sweeper.errors import ConfigError as Bad: Bad is ConfigError
        a.asname: a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for a in node.names
        if a.asname
    }
    return [
        (file, node.name, frozenset(alias.get(_name(b), _name(b)) for b in node.bases))
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    ]


def _package_classes() -> list[ClassDecl]:
    out: list[ClassDecl] = []
    for file in sorted(PACKAGE.rglob("*.py")):
        out += _classes(file.read_text(), file.relative_to(ROOT).as_posix())
    return out


def _derived(classes: list[ClassDecl]) -> list[tuple[str, str]]:
    """(file, name) of every class deriving from SweeperError, through any chain of bases."""
    names = {"SweeperError"}
    grown = True
    while grown:
        grown = False
        for _, name, bases in classes:
            if name not in names and names & bases:
                names.add(name)
                grown = True
    return sorted((file, name) for file, name, _ in classes if name in names)


def _runtime_errors() -> dict[str, type[SweeperError]]:
    return {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, SweeperError) and cls.__module__ == errors.__name__
    }


def test_every_sweeper_error_is_declared_in_errors_py() -> None:
    found = _derived(_package_classes())
    assert len(found) > 15  # the walk found them
    assert [f"{file}: {name}" for file, name in found if file != ERRORS_FILE] == []
    assert {name for _, name in found} == set(_runtime_errors())


def test_every_sweeper_error_is_a_name_of_the_package() -> None:
    declared = _runtime_errors()
    assert set(declared) == set(sweeper.ERROR_NAMES)
    assert set(declared) <= set(sweeper.__all__)
    assert set(declared) <= set(dir(sweeper))
    for name, cls in declared.items():
        assert getattr(sweeper, name) is cls, name


def test_the_stub_types_every_error() -> None:
    stub = ast.parse((PACKAGE / "__init__.pyi").read_text())
    imported = {
        a.name
        for node in stub.body
        if isinstance(node, ast.ImportFrom) and node.module == "sweeper.errors"
        for a in node.names
        if a.asname == a.name
    }
    listed = next(
        ast.literal_eval(node.value)
        for node in stub.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__"
    )
    assert imported == set(_runtime_errors())
    assert listed == sweeper.__all__


def test_an_error_of_the_package_is_caught_by_its_kind() -> None:
    with pytest.raises(sweeper.StorageError):
        raise errors.StoreNotFoundError("no store")
    with pytest.raises(sweeper.ConfigError) as caught:
        raise errors.RescaleError("a warm-up that no longer fits")
    assert caught.value.exit_code == 2
    assert issubclass(sweeper.ConfirmError, sweeper.EvaluationError)


def test_an_error_is_had_without_importing_the_api() -> None:
    code = "import sys, sweeper\nsweeper.StorageError\n"
    code += "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sweeper'))"
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['sweeper', 'sweeper.errors']"


def test_the_walk_can_fail() -> None:
    source = (
        "from sweeper.errors import ConfigError as Bad\n"
        "class Plain(Exception): ...\n"
        "class Wrong(Bad): ...\n"
        "class Deeper(Wrong): ...\n"
    )
    classes = _classes((PACKAGE / "errors.py").read_text(), ERRORS_FILE)
    found = _derived([*classes, *_classes(source, "sweeper/x.py")])
    assert [d for d in found if d[0] != ERRORS_FILE] == [
        ("sweeper/x.py", "Deeper"),
        ("sweeper/x.py", "Wrong"),
    ]
