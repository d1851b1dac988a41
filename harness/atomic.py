"""Files written so that concurrent runs and killed runs never expose half a file.

Two runs may share one cache directory at the same time (a CI matrix on one runner), and
a run may be killed at any instant (SIGKILL, an out-of-memory kill, a cancelled job).
Every file the harness writes for later reading goes first to a name of its own beside
the target (process and thread in the name, so two writers never share it), then is
renamed over the target: ``os.replace`` is atomic within one file system, so a reader
sees the old file, the new one or none, never a mix. Two runs writing the same entry
write the same bytes, and the last rename wins harmlessly. A kill leaves at most a
hidden ``.tmp`` file, which nothing reads.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def temporary_path(path: Path) -> Path:
    """A name beside ``path`` that no other process or thread uses."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on failure it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as temporary:
        temporary.write_bytes(data)


def save_config(module: Any, directory: Path) -> None:
    """``module.save_config(directory)`` (a diffusers model's ``config.json``), written atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".config-") as scratch:
        module.save_config(scratch)
        os.replace(Path(scratch) / "config.json", directory / "config.json")
