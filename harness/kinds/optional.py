"""Shared by the optional-backend kinds (torchao, quanto): components, probing, weight footprint.

A backend that is not installed, or whose mode does not run on this device, makes the
configuration ``skipped`` with the reason; it is probed on a small Linear layer first.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from harness.errors import InputError


def missing_package(module: str, install: str) -> str | None:
    if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install {install})"
    return None


def probe(apply: Callable[[Any], Any], device: str, label: str) -> str | None:
    """Run ``apply`` on a small Linear on ``device``; the reason it fails, or ``None``."""
    import torch

    layer = torch.nn.Sequential(torch.nn.Linear(128, 128)).to(device)
    try:
        apply(layer)
        with torch.no_grad():
            layer(torch.randn(32, 128, device=device))
    except Exception as error:  # each backend fails in its own way on unsupported devices
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"{label} does not run on {device}: {type(error).__name__}: {first_line[:200]}"
    return None


def component_modules(pipe: Any, components: tuple[str, ...]) -> dict[str, Any]:
    from harness.kinds.layers import resolve_submodule

    modules = {}
    for name in components:
        try:
            modules[name] = resolve_submodule(pipe, name)
        except InputError as error:
            raise InputError(f"components: {error}") from None
    return modules


def tensor_bytes(tensor: Any) -> int:
    """Bytes a tensor holds, looking inside tensor subclasses (packed quantized weights)."""
    if hasattr(tensor, "__tensor_flatten__"):
        names, _ = tensor.__tensor_flatten__()
        return sum(tensor_bytes(getattr(tensor, name)) for name in names)
    return int(tensor.numel() * tensor.element_size())


def weights_mb(module: Any) -> float:
    total = sum(tensor_bytes(p) for p in module.parameters()) + sum(tensor_bytes(b) for b in module.buffers())
    return round(total / 1e6, 3)
