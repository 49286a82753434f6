"""What changed between two definitions of a study (a study file's text and its ``--set``
items): the settings that differ, each ``[section] key old -> new``, for the one-line refusal of
a changed study (:meth:`sweeper.store.store.Store.check_study_file`)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from sweeper.errors import ConfigError
from sweeper.studyfile.config import apply_overrides

MAX_SHOWN = 6  # changes named in the line; the rest are counted
_UNSET = object()  # a key one definition does not set


def _settings(text: str, overrides: Iterable[str]) -> dict[str, Any] | None:
    """The tables a definition sets (None when they cannot be read again)."""
    try:
        raw = tomllib.loads(text)
        apply_overrides(raw, overrides, "<stored>")
    except (tomllib.TOMLDecodeError, ConfigError):
        return None
    return raw


def _shown(value: Any) -> str:
    """A value as the study file writes it (TOML), or ``unset``."""
    if value is _UNSET:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_shown(v)}" for k, v in value.items())
        return f"{{ {items} }}" if items else "{}"
    return repr(value)


def _key(key: str) -> str:
    """A key as TOML writes it: bare, or quoted (and escaped) when it needs to be."""
    return key if key.replace("-", "_").isidentifier() else json.dumps(key)


def _keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [*old, *(k for k in new if k not in old)]


def _differences(label: str, old: Any, new: Any) -> list[str]:
    """``label old -> new`` for each setting that differs; inline tables compared key by key."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            line
            for key in _keys(old, new)
            for line in _differences(
                f"{label}.{_key(key)}", old.get(key, _UNSET), new.get(key, _UNSET)
            )
        ]
    if old == new and type(old) is type(new):
        return []
    return [f"{label} {_shown(old)} -> {_shown(new)}"]


def _table(label: str, old: Any, new: Any) -> list[str]:
    """A table's differences key by key (``[train] epochs ...``), else as one value."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return _differences(label, old, new)
    return [
        line
        for key in _keys(old, new)
        for line in _differences(f"{label} {_key(key)}", old.get(key, _UNSET), new.get(key, _UNSET))
    ]


def changes(
    old_text: str, old_overrides: Iterable[str], new_text: str, new_overrides: Iterable[str]
) -> list[str] | None:
    """The settings that differ between two definitions, in the study file's order:
    ``[train] epochs 9 -> 12``, ``[space] initial_lr.high 0.2 -> 0.3``, ``[[baselines]] #2
    initial_lr 0.01 -> 0.02``; ``[]`` when they differ in comments or layout only, None when
    either cannot be read."""
    old, new = _settings(old_text, old_overrides), _settings(new_text, new_overrides)
    if old is None or new is None:
        return None
    out: list[str] = []
    for section in _keys(old, new):
        unset: Any = [] if section == "baselines" else {}  # a section left out: nothing set
        before, after = old.get(section, unset), new.get(section, unset)
        if section == "baselines" and isinstance(before, list) and isinstance(after, list):
            for i in range(max(len(before), len(after))):
                out += _table(
                    f"[[baselines]] #{i + 1}",
                    before[i] if i < len(before) else _UNSET,
                    after[i] if i < len(after) else _UNSET,
                )
        else:
            out += _table(f"[{_key(section)}]", before, after)
    return out


def changes_text(
    old_text: str, old_overrides: Iterable[str], new_text: str, new_overrides: Iterable[str]
) -> str | None:
    """:func:`changes` in words, for one line: ``[train] epochs 9 -> 12, [space] ...`` (at most
    :data:`MAX_SHOWN` named, the rest counted)."""
    found = changes(old_text, old_overrides, new_text, new_overrides)
    if found is None:
        return None
    if not found:
        return "no setting differs, only comments or layout"
    more = len(found) - MAX_SHOWN
    return ", ".join(found[:MAX_SHOWN]) + (f" and {more} more" if more > 0 else "")
