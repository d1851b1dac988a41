"""Precision: casting pipeline components, and the casts mixed precision needs at their boundaries.

Casting a whole pipeline is ``module.to(dtype)`` per component, keeping a model's
``_keep_in_fp32_modules`` in float32 as ``from_pretrained(torch_dtype=...)`` would.

Mixed precision (components in different dtypes) fails in pipelines that do not cast
between components themselves (SD: "expected m1 and m2 to have the same dtype"). The
harness then inserts a forward pre-hook on each component and on each of its direct
children (``vae.decoder``, ``vae.post_quant_conv``, ...: the modules a pipeline calls)
that casts floating activations (tensors of rank >= 2) to the module's dtype. Scalars
and 1-d tensors (timesteps, guidance) pass untouched, so a pipeline that casts for
itself (Sana) computes exactly what it would without the hooks. Every cast that
actually happens is logged for the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.options import option

DTYPE_NAMES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Precision:
    """``dtype`` for the whole pipeline, with per-component exceptions."""

    dtype: str = option("dtype of the whole pipeline", default="float32", choices=DTYPE_NAMES)
    component_dtypes: tuple[tuple[str, str], ...] = option(
        "per-component dtypes for mixed precision, e.g. { vae = 'bfloat16' }", default=(), choices=DTYPE_NAMES
    )

    def dtype_of(self, component: str) -> str:
        return dict(self.component_dtypes).get(component, self.dtype)

    @property
    def mixed(self) -> bool:
        return any(dtype != self.dtype for _, dtype in self.component_dtypes)

    def describe(self) -> str:
        if not self.component_dtypes:
            return self.dtype
        rest = ", ".join(f"{name} {dtype}" for name, dtype in self.component_dtypes)
        return f"{self.dtype} ({rest})"


def torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


class CastLog:
    """The boundary casts that happened, as ``component: from -> to`` lines."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], int] = {}

    def record(self, where: str, source: str, target: str) -> None:
        key = (where, source, target)
        self._seen[key] = self._seen.get(key, 0) + 1

    def lines(self) -> list[str]:
        return [
            f"{where}: {source} -> {target} (x{count})" for (where, source, target), count in sorted(self._seen.items())
        ]


def module_components(pipe: Any) -> dict[str, Any]:
    """The pipeline's ``nn.Module`` components by name."""
    import torch

    return {name: value for name, value in pipe.components.items() if isinstance(value, torch.nn.Module)}


def cast_component(module: Any, dtype_name_: str) -> list[str]:
    """Cast ``module`` to a dtype, keeping ``_keep_in_fp32_modules`` in float32; returns the kept names."""
    import torch

    module.to(torch_dtype(dtype_name_))
    keep = getattr(module, "_keep_in_fp32_modules", None) or []
    kept: list[str] = []
    if dtype_name_ != "float32" and keep:
        for name, sub in module.named_modules():
            if name and any(part in keep for part in name.split(".")):
                sub.to(torch.float32)
                kept.append(name)
    return kept


def apply_precision(pipe: Any, precision: Precision, log: CastLog) -> dict[str, Any]:
    """Cast every component; install boundary casts when mixed. Returns report notes."""
    components = module_components(pipe)
    unknown_names = [name for name, _ in precision.component_dtypes if name not in components]
    if unknown_names:
        from harness.errors import InputError, unknown

        raise InputError(unknown("component", unknown_names[0], components) + " (in component_dtypes)")
    notes: dict[str, Any] = {"component_dtypes": {}}
    kept_fp32: dict[str, list[str]] = {}
    for name, module in components.items():
        dtype = precision.dtype_of(name)
        kept = cast_component(module, dtype)
        notes["component_dtypes"][name] = dtype
        if kept:
            kept_fp32[name] = kept
    if kept_fp32:
        notes["kept_in_float32"] = kept_fp32
    if precision.mixed:
        install_boundary_casts(components, log)
        notes["boundary_casts"] = "installed"
    return notes


def module_dtype(module: Any) -> Any:
    """The dtype of a module's first floating parameter (``None`` without one)."""
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return None


def uniform_dtype(module: Any) -> Any:
    """The one dtype of all a module's floating parameters; ``None`` without any, or where they differ."""
    dtypes = {parameter.dtype for parameter in module.parameters() if parameter.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 else None


def install_boundary_casts(components: Mapping[str, Any], log: CastLog) -> list[Any]:
    """Pre-hooks on each component and its direct children that cast activations to the module's dtype; their
    handles (to remove them).

    A child whose parameters are in more than one dtype gets none: it holds modules kept in float32
    (``_keep_in_fp32_modules``) beside half-precision ones and casts between them itself. Cast to its first
    parameter's dtype, its half-precision layers would receive float32 (Wan's ``condition_embedder``: the
    timestep embedder kept in float32, the text embedder in fp16).
    """
    handles = []
    for name, module in components.items():
        targets = [(name, module, module_dtype(module))] + [
            (f"{name}.{child}", sub, uniform_dtype(sub)) for child, sub in module.named_children()
        ]
        for label, target, dtype in targets:
            if dtype is None:
                continue
            handles.append(target.register_forward_pre_hook(_make_cast_hook(label, dtype, log), with_kwargs=True))
    return handles


def _make_cast_hook(label: str, dtype: Any, log: CastLog) -> Any:
    import torch

    def cast(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() >= 2 and value.dtype != dtype:
            log.record(label, dtype_name(value.dtype), dtype_name(dtype))
            return value.to(dtype)
        if isinstance(value, list):
            # in place: a list argument may be a cache the module fills for its caller (the Wan video VAE's
            # causal feat_cache); a copy would lose what it writes (3 frames decoded instead of 9)
            value[:] = [cast(v) for v in value]
            return value
        if isinstance(value, tuple):
            return tuple(cast(v) for v in value)
        return value

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}

    return hook
