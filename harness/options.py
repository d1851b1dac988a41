"""Options declared once: a frozen dataclass whose fields carry their help, default and constraints.

A kind's options, the suite's generation settings and its ``[sequential]`` table are each
one such class. Reading a TOML table into it, the key list that ``ls keys`` and the kinds'
help print, the did-you-mean for an unknown key and every error message (file, key, what is
allowed) derive from the declaration, so no option name is written twice::

    @dataclass(frozen=True)
    class LayerwiseOptions:
        storage_dtype: str = option("float8 storage", default="float8_e4m3fn", choices=STORAGE)
        components: tuple[str, ...] = option("diffusers models to store in float8", nonempty=True,
                                             example="['unet']")

The annotation gives the TOML type: ``str``, ``int``, ``float``, ``bool``, ``X | None``,
``tuple[X, ...]`` (a list) and ``tuple[tuple[str, str], ...]`` (a table of strings, kept as
sorted pairs). ``read`` replaces the typed read for one key (a command line that may be a
string or a list). A class may add ``validate(self, where)`` for rules between keys: it
raises ``where.error(key, message)``, and may return a completed copy (defaults that
depend on other keys).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness import tomlread
from harness.errors import InputError, Where, unknown

T = TypeVar("T")
REQUIRED: Any = dataclasses.MISSING
# (the TOML value, the table its key is in, the suite's folder) -> the option's value
Reader = Callable[[Any, Where, Path | None], Any]


@dataclass(frozen=True)
class Option:
    """What one field declares besides its type and default."""

    help: str
    choices: tuple[str, ...] = ()
    what: str = "value"  # names the value in an unknown-choice message: "Unknown GGUF type 'Q9'"
    minimum: float | None = None  # inclusive
    below: float | None = None  # exclusive upper bound
    multiple_of: int | None = None
    path: bool = False  # a path relative to the suite's folder, stored resolved (``~`` expanded)
    lines_key: str | None = None  # the same list may instead come from a text file named by this key
    nonempty: bool = False  # a list that needs at least one item
    example: str = ""  # shown when a required or non-empty option is missing
    key: str | None = None  # the TOML key, where it is not the field's name
    read: Reader | None = None


def option(help: str, *, default: Any = REQUIRED, **declared: Any) -> Any:
    """A dataclass field declaring one option (see the module's docstring and :class:`Option`); a ``nonempty`` list
    without a default is required all the same (its dataclass default, ``()``, only keeps the field order free)."""
    if declared.get("nonempty") and default is REQUIRED:
        default = ()
    return dataclasses.field(default=default, metadata={"option": Option(help, **declared)})


def declared(cls: type) -> dict[str, tuple[dataclasses.Field[Any], Option, Any]]:
    """Every declared option of ``cls``, by TOML key: (field, declaration, resolved annotation)."""
    hints = typing.get_type_hints(cls)
    found = {}
    for field in dataclasses.fields(cls):
        if "option" in field.metadata:
            spec: Option = field.metadata["option"]
            found[spec.key or field.name] = (field, spec, hints[field.name])
    return found


def keys(cls: type) -> dict[str, str]:
    """Each TOML key ``cls`` reads, with its help (choices and default appended): for ``ls keys`` and ``ls kinds``."""
    out: dict[str, str] = {}
    for key, (field, spec, _) in declared(cls).items():
        parts = [spec.help]
        if spec.choices:
            parts.append(f"one of {' | '.join(spec.choices)}")
        if field.default is not REQUIRED and field.default not in ((), None, ""):
            parts.append(f"default {_toml(field.default)}")
        out[key] = "; ".join(parts)
        if spec.lines_key:
            out[spec.lines_key] = f"a text file of {key}, one per line ('#' starts a comment), instead of {key}"
    return out


def parse(
    cls: type[T], table: Mapping[str, Any], where: Where, suite_dir: Path | None = None, also: tuple[str, ...] = ()
) -> T:
    """Read ``table`` into ``cls``; ``also`` are keys the caller reads itself (left alone here)."""
    options = declared(cls)
    tomlread.check_keys(table, [*keys(cls), *also], where)
    values = {}
    for key, (field, spec, hint) in options.items():
        value = _read(table, key, spec, hint, field, where, suite_dir)
        if value is not dataclasses.MISSING:
            values[field.name] = value
    instance = cls(**values)
    validate = getattr(instance, "validate", None)
    completed = validate(where) if validate is not None else None
    return completed if completed is not None else instance


def _read(
    table: Mapping[str, Any],
    key: str,
    spec: Option,
    hint: Any,
    field: dataclasses.Field[Any],
    where: Where,
    suite_dir: Path | None,
) -> Any:
    inner, optional = _unwrap_optional(hint)
    if spec.lines_key and spec.lines_key in table:
        if key in table:
            raise where.error(spec.lines_key, f"give {key} or {spec.lines_key}, not both")
        file = tomlread.get(table, spec.lines_key, str, where)
        assert file is not None
        return tuple(read_lines(_resolve(file, suite_dir), where.child(spec.lines_key)))
    if key not in table:
        if field.default is REQUIRED:
            raise where.error(key, f"missing; expected {_expected(inner, spec)}")
        if spec.nonempty and not field.default:
            raise where.error(key, f"missing; {spec.example or 'at least one item'}")
        return dataclasses.MISSING
    if spec.read is not None:
        return spec.read(table[key], where, suite_dir)
    value = _typed(table, key, inner, where)
    if optional and value is None:
        return None
    if spec.nonempty and not value:
        raise where.error(key, f"must not be empty; {spec.example or 'at least one item'}")
    _check(value, key, spec, where)
    if spec.path and isinstance(value, str):
        return str(_resolve(value, suite_dir))
    return value


def _typed(table: Mapping[str, Any], key: str, hint: Any, where: Where) -> Any:
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if typing.get_origin(item) is tuple:  # a table of strings, kept as sorted (key, value) pairs
            found = tomlread.get_table(table, key, where) or {}
            for name, value in found.items():
                if not isinstance(value, str):
                    raise where.child(key).error(name, f"expected a string, got {value!r}")
            return tuple(sorted(found.items()))
        return tuple(tomlread.get_list(table, key, item, where) or ())
    return tomlread.get(table, key, hint, where)


def _check(value: Any, key: str, spec: Option, where: Where) -> None:
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):  # a table: its values are checked
        for name, item in value:
            if spec.choices and item not in spec.choices:
                raise where.child(key).error(name, f"expected one of {', '.join(spec.choices)}, got {item!r}")
        return
    for item in value if isinstance(value, tuple) else (value,):
        if spec.choices and item not in spec.choices:
            raise where.error(key, unknown(spec.what, str(item), spec.choices))
        if isinstance(item, int | float) and not isinstance(item, bool):
            _check_number(item, key, spec, where)


def _check_number(item: float, key: str, spec: Option, where: Where) -> None:
    if spec.multiple_of and (int(item) % spec.multiple_of or (spec.minimum is not None and item < spec.minimum)):
        raise where.error(key, f"must be a positive multiple of {spec.multiple_of}, got {_toml(item)}")
    if spec.minimum is not None and item < spec.minimum:
        raise where.error(key, f"must be >= {_toml(spec.minimum)}, got {_toml(item)}")
    if spec.below is not None and item >= spec.below:
        raise where.error(key, f"must be below {_toml(spec.below)}, got {_toml(item)}")


def read_lines(path: Path, where: Where) -> list[str]:
    """A text file's non-empty lines, ``#`` lines left out; a missing, unreadable or empty file is an input error."""
    if not path.is_file():
        raise where.error("", f"file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=path) from None
    found = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not found:
        raise InputError("no entries in file (one per line; '#' lines are comments)", file=path)
    return found


def resolve_path(text: str, suite_dir: Path | None) -> str:
    """A path a suite names, relative to its folder (``~`` expanded), made absolute."""
    return str(_resolve(text, suite_dir))


def _resolve(text: str, suite_dir: Path | None) -> Path:
    return ((suite_dir or Path.cwd()) / Path(text).expanduser()).resolve()


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        return rest[0], True
    return hint, False


def _expected(hint: Any, spec: Option) -> str:
    if spec.choices:
        return f"one of {', '.join(spec.choices)}"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if typing.get_origin(hint) is tuple:
        return f"a list, e.g. {spec.example}" if spec.example else "a list"
    text = names.get(hint, getattr(hint, "__name__", str(hint)))
    return f"{text}, e.g. {spec.example}" if spec.example else text


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return str(value)
