"""Errors the user can cause, and the helpers that word them.

A :class:`InputError` is raised for anything the user can fix: a malformed suite, a
missing file, a bad range file, a corrupt reference. The CLI prints its one-line
message and exits with code 2, without a traceback. Anything else is a bug and raises.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2


class InputError(Exception):
    """A mistake in the user's input. ``str(error)`` is the whole message."""

    def __init__(self, message: str, *, file: str | Path | None = None, key: str | None = None):
        self.file = str(file) if file is not None else None
        self.key = key
        self.detail = message
        prefix = ""
        if self.file:
            prefix += f"{self.file}: "
        if key:
            prefix += f"{key}: "
        super().__init__(prefix + message)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"Did you mean: x? Available: a, b, c"`` in the lm-evaluation-harness shape."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    hint = f" Did you mean: {close[0]}?" if close else ""
    available = ", ".join(options) if options else "(none)"
    return f"{hint} Available: {available}"


def unknown(what: str, name: str, choices: Iterable[str]) -> str:
    """The message for an unknown name: ``Unknown X 'y'. Did you mean: z? Available: ...``."""
    return f"Unknown {what} {name!r}.{did_you_mean(name, choices)}"


class Where:
    """A position in a user file (file + dotted key prefix) that words errors.

    ``Where("suite.toml", "configs.fp16").error("dtype", "expected ...")`` gives
    ``suite.toml: configs.fp16.dtype: expected ...``.
    """

    def __init__(self, file: str | Path, prefix: str = ""):
        self.file = str(file)
        self.prefix = prefix

    def key(self, key: str) -> str:
        if not key:
            return self.prefix
        return f"{self.prefix}.{key}" if self.prefix else key

    def child(self, key: str) -> Where:
        return Where(self.file, self.key(key))

    def error(self, key: str, message: str) -> InputError:
        return InputError(message, file=self.file, key=self.key(key) or None)
