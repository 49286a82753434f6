"""A study file's text from its settings: Python values written as TOML (:func:`toml_value`) and
the sections of a study file rendered in their order (:func:`render`), as ``tomllib`` reads
them back."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from sweeper.errors import ConfigError

SECTIONS = ("study", "data", "train", "space", "sampler", "pruner")


def plain(value: Any) -> Any:
    """NumPy scalars and arrays, tuples and paths as plain TOML-able Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def toml_value(value: Any) -> str:
    """``value`` as a TOML value: string, bool, number, array or inline table."""
    value = plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"{value!r} ({type(value).__name__}) cannot be written in a study file")


def toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if bare else json.dumps(key)


def render(raw: Mapping[str, Any]) -> str:
    """A study file's text for ``raw``, its sections as ``tomllib`` reads them."""
    lines: list[str] = []
    for section in SECTIONS:
        table = raw.get(section) or {}
        if table:
            lines.append(f"[{section}]")
            lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())
            lines.append("")
    for baseline in raw.get("baselines") or ():
        lines.append("[[baselines]]")
        lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in baseline.items())
        lines.append("")
    return "\n".join(lines)
