"""Putting one pipeline's modules into another for the length of a ``with`` block, with the casts between them.

A module taken from a pipeline of another precision computes in its own dtype: its floating
inputs are cast to that dtype on the way in and its outputs back to the dtype it was called
with, so the rest of the pipeline computes exactly as before. A whole component swapped in
gets the boundary casts of mixed precision (:func:`harness.kinds.casting.install_boundary_casts`)
on every component for as long as it is in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from harness.kinds.casting import CastLog, install_boundary_casts, module_components, module_dtype
from harness.kinds.layers import resolve_submodule


def _cast(value: Any, dtype: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, tuple):
        return tuple(_cast(v, dtype) for v in value)
    if isinstance(value, list):
        return [_cast(v, dtype) for v in value]
    return value


def _first_float(values: Sequence[Any]) -> Any:
    import torch

    for value in values:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.dtype
    return None


def _edge_casts(module: Any) -> list[Any]:
    """Hooks casting ``module``'s inputs to its dtype and its outputs back to the caller's."""
    own = module_dtype(module)
    if own is None:
        return []
    seen: list[Any] = []

    def before(_: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        seen.append(_first_float([*args, *kwargs.values()]))
        return _cast(args, own), {k: _cast(v, own) for k, v in kwargs.items()}

    def after(_: Any, __: Any, output: Any) -> Any:
        caller = seen.pop() if seen else None
        return _cast(output, caller) if caller is not None and caller != own else output

    return [
        module.register_forward_pre_hook(before, with_kwargs=True),
        module.register_forward_hook(after),
    ]


@contextmanager
def swapped(target: Any, source: Any, paths: Sequence[str]) -> Iterator[None]:
    """``target`` with the modules at ``paths`` taken from ``source`` until the block ends (then put back)."""
    originals: list[tuple[str, Any]] = []
    handles: list[Any] = []
    try:
        for path in paths:
            originals.append((path, resolve_submodule(target, path)))
            replacement = resolve_submodule(source, path)
            _put(target, path, replacement)
            if "." in path:
                handles += _edge_casts(replacement)
        if any("." not in path for path in paths):
            handles += install_boundary_casts(module_components(target), CastLog())
        yield
    finally:
        for handle in handles:
            handle.remove()
        for path, module in reversed(originals):
            _put(target, path, module)


def _put(pipe: Any, path: str, module: Any) -> None:
    parent_path, _, name = path.rpartition(".")
    if not parent_path:
        pipe.register_modules(**{name: module})
        return
    setattr(resolve_submodule(pipe, parent_path), name, module)
