"""Half-precision convolutions and linear layers on CPUs without native half-precision kernels.

On CPUs with AVX512-BF16/FP16 or AMX, PyTorch runs float16/bfloat16 convolutions and
matrix products through oneDNN: half-precision inputs and weights, float32 accumulation,
the output rounded to half precision. Without those instructions (e.g. AMD EPYC before
Zen 4) a half-precision convolution falls back to PyTorch's ``_slow_conv2d_forward``,
about 10x slower than float32: the default suite's fp16, bf16 and mixed configurations
took 110-130 s each instead of 4-7 s.

There, each ``nn.Conv2d`` and ``nn.Linear`` whose weights are half precision computes
what the native kernel computes: the same half-precision inputs and weights, widened to
float32, multiplied and accumulated in float32, and the output rounded back to the
layer's dtype. Everything else (attention, normalisation, activations, the values between
layers) stays in half precision. The images then differ from a native run only by the
order of float32 accumulation. ``HARNESS_CPU_HALF = native`` turns this off,
``= float32-accumulate`` forces it (tests); the default, ``auto``, measures once per
process whether a half-precision convolution is more than 3x slower than float32.
"""

from __future__ import annotations

import os
import time
import types
from typing import Any

MODES = ("auto", "native", "float32-accumulate")
_SLOW: dict[str, bool] = {}


def mode() -> str:
    value = os.environ.get("HARNESS_CPU_HALF", "auto")
    if value not in MODES:
        from harness.errors import InputError

        raise InputError(f"HARNESS_CPU_HALF={value!r}: expected one of {', '.join(MODES)}")
    return value


def slow_half(dtype: Any) -> bool:
    """Whether this CPU runs a ``dtype`` convolution more than 3x slower than float32 (measured once)."""
    import torch

    key = str(dtype)
    if key not in _SLOW:
        state = torch.random.get_rng_state()
        torch.manual_seed(0)
        conv, sample = torch.nn.Conv2d(32, 32, 3, padding=1), torch.randn(1, 32, 32, 32)
        torch.random.set_rng_state(state)

        def best(kind: Any) -> float:
            layer, data = conv.to(kind), sample.to(kind)
            times = []
            with torch.no_grad():
                for _ in range(4):
                    start = time.perf_counter()
                    layer(data)
                    times.append(time.perf_counter() - start)
            return min(times[1:])

        _SLOW[key] = best(dtype) > 3.0 * best(torch.float32)
    return _SLOW[key]


def _conv_forward(self: Any, data: Any) -> Any:
    bias = None if self.bias is None else self.bias.float()
    return self._conv_forward(data.float(), self.weight.float(), bias).to(self.weight.dtype)


def _linear_forward(self: Any, data: Any) -> Any:
    import torch.nn.functional as F

    bias = None if self.bias is None else self.bias.float()
    return F.linear(data.float(), self.weight.float(), bias).to(self.weight.dtype)


def accumulate_in_float32(pipe: Any, device: str) -> dict[str, str]:
    """On a CPU without fast half-precision kernels, route half-precision conv/linear layers as above; notes."""
    import torch
    from torch import nn

    chosen = mode()
    if device != "cpu" or chosen == "native":
        return {}
    from harness.kinds.casting import module_components

    counts: dict[str, int] = {}
    for module in module_components(pipe).values():
        for layer in module.modules():
            kind = type(layer)
            if kind not in (nn.Conv2d, nn.Linear) or layer.weight.dtype not in (torch.float16, torch.bfloat16):
                continue
            if chosen == "auto" and not slow_half(layer.weight.dtype):
                continue
            forward = _conv_forward if kind is nn.Conv2d else _linear_forward
            layer.forward = types.MethodType(forward, layer)
            name = str(layer.weight.dtype).removeprefix("torch.")
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return {}
    layers = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    return {
        "cpu_half": f"{layers} conv/linear layers accumulate in float32 from half-precision inputs and weights, "
        "output rounded back (this CPU has no native half-precision kernels; see harness/kinds/cpu_half.py)"
    }
