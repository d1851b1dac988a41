"""Speed-ups any in-process configuration combines with its kind: a step cache, torch.compile, an attention backend.

They change pixels as well as time, so they are options of the configuration (part of its
identity, its cache key and its results), not a kind of their own: ``kind = "gguf"`` with
``cache = { hook = "first_block" }`` and ``compile = true`` is one configuration. Each is
applied to the denoiser last, after the kind's own change, the placement on the device and
the user's transform, in the order a user would: attention backend, cache hooks, compile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.kinds.speedup import attention
from harness.kinds.speedup.cache import CacheOptions, enable, help_text, read_cache
from harness.kinds.speedup.compile import CompileOptions, compile_denoiser, read_compile
from harness.options import option


@dataclass(frozen=True)
class Speedups:
    """The speed-ups of one configuration; all ``None``: none."""

    cache: CacheOptions | None = option(help_text(), default=None, read=read_cache)
    compile: CompileOptions | None = option(
        "torch.compile the denoiser: true, or { mode = 'default', fullgraph = false, dynamic = ..., "
        "backend = 'inductor', scope = 'model' | 'blocks' }",
        default=None,
        read=read_compile,
    )
    attention_backend: str | None = option(
        "diffusers attention backend for the denoiser", default=None, choices=tuple(attention.BACKENDS)
    )

    @property
    def any(self) -> bool:
        return self.cache is not None or self.compile is not None or self.attention_backend is not None

    def describe(self) -> str:
        parts = []
        if self.attention_backend:
            parts.append(f"attention {self.attention_backend}")
        if self.cache:
            parts.append(f"cache {self.cache.describe()}")
        if self.compile:
            parts.append(self.compile.describe())
        return ", ".join(parts)

    def unavailable(self, device: str) -> str | None:
        if self.attention_backend:
            return attention.unavailable(self.attention_backend, device)
        return None


def apply_speedups(
    pipe: Any, speedups: Speedups, denoiser: Any, steps: int, calibrate: Callable[[], object]
) -> tuple[dict[str, Any], list[Callable[[], None]]]:
    """Apply ``speedups`` to ``denoiser`` (of ``pipe``): the notes for the report, and clean-ups for closing."""
    notes: dict[str, Any] = {}
    cleanups: list[Callable[[], None]] = []
    if speedups.attention_backend:
        notes["attention_backend"], restore = attention.set_backend(denoiser, speedups.attention_backend)
        cleanups.append(restore)
    if speedups.cache:
        notes["cache"] = {**enable(denoiser, speedups.cache, pipe, steps, calibrate), "on": type(denoiser).__name__}
    if speedups.compile:
        notes["compile"] = compile_denoiser(denoiser, speedups.compile)
    return notes, cleanups


__all__ = ["CacheOptions", "CompileOptions", "Speedups", "apply_speedups"]
