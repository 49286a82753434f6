"""Walking one parsed study file (:class:`Reader`): its tables, their known keys, integers and
choices, each error one line naming the file and the key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sweeper.errors import ConfigError, did_you_mean


class Reader:
    """Walks one parsed study file and raises ConfigError naming the file and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {message}")

    def table(self, raw: Mapping[str, Any], name: str) -> dict[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(f"[{name}]", f"must be a table, got {value!r}")
        return dict(value)

    def known(self, table: Mapping[str, Any], where: str, keys: Iterable[str]) -> None:
        keys = sorted(keys)
        for key in table:
            if key not in keys:
                hint = did_you_mean(key, keys)
                raise self.fail(
                    where,
                    f"unknown key {key!r}; {hint + ' ' if hint else ''}known keys: "
                    f"{', '.join(keys)} (check spelling)",
                )

    def integer(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        default: int,
        low: int,
        high: int | None = None,
    ) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(f"{where} {key}", f"must be an integer >= {low}, got {value!r}")
        if high is not None and value > high:
            raise self.fail(f"{where} {key}", f"must be at most {high}, got {value!r}")
        return value

    def choice(
        self, table: Mapping[str, Any], key: str, where: str, default: str, options: Iterable[str]
    ) -> str:
        options = tuple(options)
        value = table.get(key, default)
        if value not in options:
            raise self.fail(f"{where} {key}", f"{value!r} is not one of {', '.join(options)}")
        return str(value)
