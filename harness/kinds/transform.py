"""User transforms: ``transform = "package.module:function"`` on a configuration.

The function receives the loaded, cast pipeline and returns it (or a replacement).
This is how users evaluate their own runtime changes without writing a kind.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import InputError, Where

_TRANSFORM_FORM = "expected 'package.module:function'"


def parse_transform(value: str, where: Where) -> str:
    module, _, attribute = value.partition(":")
    if not module or not attribute or not all(part.isidentifier() for part in module.split(".") + attribute.split(".")):
        raise where.error("transform", f"{_TRANSFORM_FORM}, got {value!r}")
    return value


def resolve_transform(spec: str, search_dir: Path, where: Where | None = None) -> Callable[[Any], Any]:
    """Import the function named by ``spec``, looking in ``search_dir`` (the suite's folder) first."""
    module_name, _, attribute = spec.partition(":")

    def fail(message: str) -> InputError:
        return where.error("transform", message) if where else InputError(f"transform {spec!r}: {message}")

    added = str(search_dir) not in sys.path
    if added:
        sys.path.insert(0, str(search_dir))
    _forget_if_shadowed(module_name, search_dir)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise fail(f"cannot import module {module_name!r}: {error}") from None
    except Exception as error:  # a module that raises while importing is the user's error too
        raise fail(f"importing {module_name!r} raised {type(error).__name__}: {error}") from None
    finally:
        if added:
            sys.path.remove(str(search_dir))
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise fail(f"module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise fail(f"{attribute!r} in {module_name!r} is not callable")
    return target


def _forget_if_shadowed(module_name: str, search_dir: Path) -> None:
    """Drop an already-imported module of the same name that is not this suite's file.

    Two suites may each have a ``transforms.py``; without this, the second would get the first's.
    """
    loaded = sys.modules.get(module_name)
    loaded_file = getattr(loaded, "__file__", None)
    if loaded_file is None:
        return
    relative = Path(*module_name.split("."))
    candidates = [search_dir / relative.with_suffix(".py"), search_dir / relative / "__init__.py"]
    local = next((c for c in candidates if c.is_file()), None)
    if local is not None and Path(loaded_file).resolve() != local.resolve():
        for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
            del sys.modules[name]


class TransformError(RuntimeError):
    """A transform returned something that is not a pipeline."""


def apply_transform(function: Callable[[Any], Any], spec: str, pipe: Any) -> Any:
    """Call the transform; its result must be a pipeline (callable, with ``components``)."""
    result = function(pipe)
    if result is None or not callable(result) or not hasattr(result, "components"):
        raise TransformError(
            f"transform {spec!r} returned {type(result).__name__}; it must return the pipeline it was given "
            "(modified or not) or a replacement pipeline"
        )
    return result
