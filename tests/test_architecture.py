"""docs/architecture.md is the map of the package: every module is on it, every file it names
exists, and every sub-package (a layer of tests/test_imports.py) has its line in the folder list.
The schedule families are plug-ins, described as their folder; the worked example's module
(``cubic.py``) is one that tests/training/test_families.py writes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text()
PACKAGE = ROOT / "sweeper"
EXAMPLES = {"cubic.py"}  # "Adding a schedule family"


def _modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" and "families" not in p.relative_to(PACKAGE).parts
    )


def test_every_module_is_named_on_the_map() -> None:
    missing = [str(p.relative_to(ROOT)) for p in _modules() if p.name not in DOC]
    assert missing == []


def test_every_file_the_map_names_exists() -> None:
    named = set(re.findall(r"\b([a-z_][a-z0-9_]*\.py)\b", DOC)) - EXAMPLES
    present = {p.name for p in ROOT.glob("**/*.py") if ".git" not in p.parts}
    assert sorted(named - present) == []


def test_every_sub_package_has_its_line_in_the_folder_list() -> None:
    folders = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert len(folders) >= 8
    block = DOC[DOC.index("```\nsweeper/") : DOC.index("```", DOC.index("```\nsweeper/") + 3)]
    assert [f for f in folders if not re.search(rf"^  {f}/", block, re.MULTILINE)] == []
