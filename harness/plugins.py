"""Plug-ins: what a package adds to the harness besides the core's families, kinds and metrics.

A plug-in is a module offering any of:

- ``builtins() -> list[Builtin]``: built-in pipelines, named ``builtin:NAME`` in a suite;
- ``metrics() -> list[type[Metric]]``: metrics, named in a suite's ``[metrics]``;
- ``clip_folders() -> dict[str, Callable[[], Path]]``: built-in CLIP evaluators (``builtin:NAME``), each an
  open_clip folder found on demand (a missing one raises an :class:`InputError` naming what to place where).

The shapes world (:mod:`harness.world.plugin`) is the bundled one. An installed package adds its own with an entry
point in the group ``harness.plugins`` whose value is the module.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.metrics.base import Metric
    from harness.pipelines.builtin import Builtin

BUNDLED = ("harness.world.plugin",)
ENTRY_POINT_GROUP = "harness.plugins"


def plugins() -> Iterator[ModuleType]:
    """The bundled plug-ins, then those installed packages register (Python caches the imports)."""
    for name in BUNDLED:
        yield importlib.import_module(name)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        yield entry.load()


def _offered(hook: str) -> Iterator[Any]:
    for module in plugins():
        offer = getattr(module, hook, None)
        if offer is not None:
            yield offer()


def plugin_builtins() -> list[Builtin]:
    return [builtin for offered in _offered("builtins") for builtin in offered]


def plugin_metrics() -> list[type[Metric]]:
    return [metric for offered in _offered("metrics") for metric in offered]


def plugin_clip_folders() -> dict[str, Callable[[], Path]]:
    return {name: folder for offered in _offered("clip_folders") for name, folder in offered.items()}
