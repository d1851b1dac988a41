"""``attention_backend = "..."``: diffusers' attention dispatcher on the denoiser (``set_attention_backend``).

The backends compute the same attention with other kernels (PyTorch's math, flash,
memory-efficient and cuDNN paths, flex attention, flash-attn, SageAttention's int8
QK, xformers), so their numerics differ. Only attention modules whose processor goes
through diffusers' dispatcher take a backend; in a model whose processors call PyTorch
directly (the UNet's ``AttnProcessor2_0``) setting one changes nothing, which the
report's "did it apply?" check then shows.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

# The backends offered (diffusers' AttentionBackendName values), each with what it needs beyond PyTorch: CUDA,
# a package. tests/kinds/speedup/test_attention.py holds this list to diffusers' own.
BACKENDS: Mapping[str, tuple[bool, str | None]] = {
    "native": (False, None),
    "_native_math": (False, None),
    "flex": (False, None),
    "_native_efficient": (True, None),
    "_native_flash": (True, None),
    "_native_cudnn": (True, None),
    "flash": (True, "flash_attn"),
    "_flash_3": (True, "flash_attn_interface"),
    "sage": (True, "sageattention"),
    "xformers": (True, "xformers"),
}


def unavailable(backend: str, device: str) -> str | None:
    """Why ``backend`` cannot run on ``device`` here, or ``None``."""
    needs_cuda, package = BACKENDS[backend]
    if needs_cuda and not device.startswith("cuda"):
        return f"attention backend {backend!r} needs a CUDA GPU (this run is on {device})"
    if package and importlib.util.find_spec(package) is None:
        return f"attention backend {backend!r} needs the {package} package (not installed)"
    return None


def set_backend(denoiser: Any, backend: str) -> tuple[dict[str, Any], Callable[[], None]]:
    """Set the backend on every attention module of ``denoiser``: how many modules took it, and the clean-up.

    diffusers' ``set_attention_backend`` also makes the backend the process-wide active one, which every later
    model whose processors carry no backend of their own would then use: the clean-up (run when the configuration's
    runtime closes) puts the previous one back, so no configuration inherits another's kernels."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry, _check_attention_backend_requirements

    if not hasattr(denoiser, "set_attention_backend"):
        raise RuntimeError(f"{type(denoiser).__name__} is not a diffusers model: no set_attention_backend")
    _check_attention_backend_requirements(_name(backend))
    previous = _AttentionBackendRegistry._active_backend
    denoiser.set_attention_backend(backend)
    processors = [m.processor for m in denoiser.modules() if hasattr(m, "processor")]
    dispatched = sum(1 for p in processors if getattr(p, "_attention_backend", None) is not None)

    def restore() -> None:
        _AttentionBackendRegistry.set_active_backend(previous)

    found: dict[str, Any] = {"backend": backend, "attention_modules": len(processors), "dispatched": dispatched}
    if processors and not dispatched:
        found["warning"] = (
            f"none of the {len(processors)} attention modules of {type(denoiser).__name__} goes through diffusers' "
            "dispatcher (their processors call PyTorch directly): the backend changes nothing here"
        )
    return found, restore


def _name(backend: str) -> Any:
    from diffusers.models.attention_dispatch import AttentionBackendName

    return AttentionBackendName(backend)
