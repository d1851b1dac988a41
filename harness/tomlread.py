"""Typed reads from parsed TOML tables; every failure names the file and key."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import InputError, Where, unknown

T = TypeVar("T")

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is an :class:`InputError`."""
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"malformed TOML: {error}", file=path) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=path) from None


def check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: Where, what: str = "key") -> None:
    """Reject keys outside ``allowed`` with a did-you-mean message."""
    for key in table:
        if key not in allowed:
            raise where.error(key, unknown(what, key, allowed))


def _is_type(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def get(table: Mapping[str, Any], key: str, kind: type[T], where: Where, default: T | None = None) -> T | None:
    """Read ``table[key]`` as ``kind``; absent gives ``default``."""
    if key not in table:
        return default
    value = table[key]
    if not _is_type(value, kind):
        raise where.error(key, f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {_describe(value)}")
    if kind is float:
        return float(value)  # type: ignore[return-value]
    return value


def require(table: Mapping[str, Any], key: str, kind: type[T], where: Where) -> T:
    """Read a required key."""
    if key not in table:
        raise where.error(key, f"missing; expected {_TYPE_NAMES.get(kind, kind.__name__)}")
    value = get(table, key, kind, where)
    assert value is not None
    return value


def get_choice(table: Mapping[str, Any], key: str, choices: Sequence[str], where: Where, default: str) -> str:
    """Read a string that must be one of ``choices``."""
    value = get(table, key, str, where, default)
    assert value is not None
    if value not in choices:
        raise where.error(key, unknown("value", value, choices))
    return value


def get_list(table: Mapping[str, Any], key: str, kind: type[T], where: Where) -> list[T] | None:
    """Read a list whose items are all ``kind``."""
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, list):
        raise where.error(key, f"expected a list of {_TYPE_NAMES.get(kind, kind.__name__)}s, got {_describe(value)}")
    for index, item in enumerate(value):
        if not _is_type(item, kind):
            raise where.error(
                f"{key}[{index}]", f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {_describe(item)}"
            )
    return [float(v) if kind is float else v for v in value]  # type: ignore[misc]


def get_table(table: Mapping[str, Any], key: str, where: Where) -> dict[str, Any] | None:
    """Read a sub-table."""
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, dict):
        raise where.error(key, f"expected a table, got {_describe(value)}")
    return value


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"{type(value).__name__} {value!r}"
