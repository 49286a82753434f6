"""Study names: which ones a new study may take, and their safe forms in files and on screen.

A study's name becomes part of file names (plots, the report, the checkpoint folder) and is printed
by every command. New studies must have a name of printable characters without path separators,
at most :data:`MAX_LENGTH` long (:func:`check_study_name`). Studies made by other tools may have any
name: :func:`file_stem` and :func:`shown` make those safe where they are used.
"""

from __future__ import annotations

import hashlib
import re

from sweeper.errors import ConfigError

MAX_LENGTH = 128
_UNSAFE_IN_FILES = re.compile(r"[^A-Za-z0-9._-]+")


def check_study_name(name: str, where: str = "study name") -> str:
    """``name`` without surrounding spaces, or ConfigError saying what is wrong with it."""
    stripped = name.strip()
    problem = None
    if not stripped:
        problem = "is empty"
    elif len(stripped) > MAX_LENGTH:
        problem = f"has {len(stripped)} characters (at most {MAX_LENGTH})"
    elif not stripped.isprintable():
        problem = "contains a control character"
    elif "/" in stripped or "\\" in stripped:
        problem = "contains a path separator"
    elif stripped in (".", ".."):
        problem = "is a path component"
    if problem:
        fix = (
            "give a name (or leave it out for the study file's)"
            if not stripped
            else f"use printable characters without / or \\, at most {MAX_LENGTH}"
        )
        raise ConfigError(f"{where} {shown(stripped)!r} {problem}; {fix}")
    return stripped


def file_stem(name: str) -> str:
    """A file-name-safe form of ``name``: letters, digits, ``._-``; a changed name gets a short
    hash of the original, so two names never share files."""
    stem = _UNSAFE_IN_FILES.sub("_", name).lstrip(".")[:80] or "study"
    if stem != name:
        stem += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return stem


def shown(name: str) -> str:
    """``name`` for the console: control characters (newlines, terminal escapes) made visible."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
