"""Putting static W8A8 into a pipeline: simulated exactly in float, or with real int8 matmuls on CUDA.

Simulation: each layer's weight is replaced by its int8 fake-quantized value and a
pre-hook fake-quantizes its input with the layer's calibrated range.

Real int8: Linear and Conv2d (via im2col) run ``torch._int_mm`` on int8 codes (CUDA,
and CPU where torch provides it).
The uint8 activation codes are shifted by 128 into int8 and the shift is added back
through the weight's column sums, so the integer result is exact; only the final float
scaling differs from the simulation. On its first call each layer also computes the
simulated output and records how far the two differ.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.kinds.int8.fakequant import (
    ActivationQuant,
    fake_quantize_activation,
    fake_quantize_weight,
    quantize_activation,
    quantize_weight,
    sqnr_db,
)
from harness.kinds.int8.ranges import Range
from harness.kinds.layers import LayerHooks


def _float_forward(module: Any, x: Any, weight: Any) -> Any:
    import torch.nn.functional as F
    from torch import nn

    if isinstance(module, nn.Linear):
        return F.linear(x, weight, module.bias)
    return module._conv_forward(x, weight, module.bias)


def apply_simulated(layers: Mapping[str, Any], ranges: Mapping[str, Range]) -> None:
    """Fake-quantize weights in place and inputs through pre-hooks."""
    import torch

    for name, module in layers.items():
        quant = ActivationQuant.from_range(ranges[name].low, ranges[name].high)
        with torch.no_grad():
            module.weight.copy_(fake_quantize_weight(module.weight))

        def hook(mod: Any, args: tuple[Any, ...], quant: ActivationQuant = quant) -> tuple[Any, ...]:
            return (fake_quantize_activation(args[0], quant), *args[1:])

        module.register_forward_pre_hook(hook)


class RealInt8Stats:
    """How the real int8 path compares with the simulation, per layer on its first call."""

    def __init__(self, device: str = "cuda") -> None:
        self.device = device
        self.layers_real = 0
        self.fallbacks: list[str] = []
        self.max_abs_diff = 0.0
        self.max_rel_diff = 0.0

    def notes(self) -> dict[str, Any]:
        return {
            "int8_matmul": f"real: torch._int_mm on {self.device}",
            "layers_real_int8": self.layers_real,
            "layers_simulated_fallback": len(self.fallbacks),
            "fallback_examples": self.fallbacks[:5],
            "max_abs_diff_vs_simulation": self.max_abs_diff,
            "max_rel_diff_vs_simulation": self.max_rel_diff,
        }


def _int8_matmul(rows: Any, weight_codes: Any) -> Any:
    """(M, K) int8 x (N, K) int8 -> (M, N) int32, padding M to the 17 rows ``_int_mm`` needs."""
    import torch

    m = rows.shape[0]
    if m <= 16:
        rows = torch.cat([rows, rows.new_zeros((17 - m, rows.shape[1]))])
    return torch._int_mm(rows, weight_codes.t().contiguous())[:m]


def apply_real_int8(layers: Mapping[str, Any], ranges: Mapping[str, Range], stats: RealInt8Stats) -> None:
    """Replace each layer's forward with an int8 matmul (falls back to simulation where shapes do not fit)."""
    import torch
    from torch import nn

    for name, module in layers.items():
        quant = ActivationQuant.from_range(ranges[name].low, ranges[name].high)
        codes, scales = quantize_weight(module.weight)
        flat_codes = codes.reshape(codes.shape[0], -1)
        fits = flat_codes.shape[1] % 8 == 0 and flat_codes.shape[0] % 8 == 0
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            fits = False
        fake_weight = (codes.float() * scales.float()).to(module.weight.dtype)
        if not fits:
            stats.fallbacks.append(name)
            with torch.no_grad():
                module.weight.copy_(fake_weight)
            module.register_forward_pre_hook(
                lambda mod, args, q=quant: (fake_quantize_activation(args[0], q), *args[1:])
            )
            continue
        stats.layers_real += 1
        layer = _RealInt8Layer(
            quant, flat_codes, flat_codes.to(torch.int32).sum(dim=1), scales.reshape(-1).float() * quant.scale,
            fake_weight, stats,
        )  # fmt: skip
        module.forward = types.MethodType(layer.forward, module)


@dataclass
class _RealInt8Layer:
    """One layer's integer forward: uint8 activation codes times int8 weight codes, rescaled per channel. Its first
    call is checked against the exact simulation (the largest difference goes to the stats)."""

    quant: ActivationQuant
    flat_codes: Any
    column_sums: Any
    channel_scales: Any
    fake_weight: Any
    stats: RealInt8Stats
    checked: bool = False

    def forward(self, mod: Any, x: Any) -> Any:
        from torch import nn

        dtype = x.dtype
        codes = quantize_activation(x.float(), self.quant)
        correction = (128 - self.quant.zero_point) * self.column_sums
        out = (
            self._linear(codes, x, correction) if isinstance(mod, nn.Linear) else self._conv(mod, codes, x, correction)
        )
        if mod.bias is not None:
            out = out + (mod.bias.float().reshape(1, -1, 1, 1) if out.dim() == 4 else mod.bias.float())
        out = out.to(dtype)
        if not self.checked:
            self.checked = True
            simulated = _float_forward(mod, fake_quantize_activation(x, self.quant), self.fake_weight)
            diff = (out.float() - simulated.float()).abs()
            self.stats.max_abs_diff = max(self.stats.max_abs_diff, float(diff.max()))
            scale = float(simulated.float().abs().max()) or 1.0
            self.stats.max_rel_diff = max(self.stats.max_rel_diff, float(diff.max()) / scale)
        return out

    def _linear(self, codes: Any, x: Any, correction: Any) -> Any:
        import torch

        rows = (codes - 128).reshape(-1, codes.shape[-1]).to(torch.int8)
        acc = _int8_matmul(rows, self.flat_codes) + correction
        return (acc.float() * self.channel_scales).reshape(*x.shape[:-1], -1)

    def _conv(self, mod: Any, codes: Any, x: Any, correction: Any) -> Any:
        import torch
        import torch.nn.functional as F

        batch, _, height, width = x.shape
        # Zero padding in real values is the zero point in code space.
        padded = F.pad(codes, _pad4(mod.padding), value=float(self.quant.zero_point))
        cols = F.unfold(padded, mod.kernel_size, mod.dilation, 0, mod.stride)
        rows = (cols.transpose(1, 2).reshape(-1, cols.shape[1]) - 128).to(torch.int8)
        acc = _int8_matmul(rows, self.flat_codes) + correction
        out_h = (height + 2 * mod.padding[0] - mod.dilation[0] * (mod.kernel_size[0] - 1) - 1) // mod.stride[0] + 1
        out_w = (width + 2 * mod.padding[1] - mod.dilation[1] * (mod.kernel_size[1] - 1) - 1) // mod.stride[1] + 1
        return (
            (acc.float() * self.channel_scales).reshape(batch, out_h * out_w, -1).transpose(1, 2)
            .reshape(batch, -1, out_h, out_w)
        )  # fmt: skip


def _pad4(padding: Any) -> tuple[int, int, int, int]:
    if isinstance(padding, str):
        raise ValueError("string padding is not supported by the int8 conv path")
    return (padding[1], padding[1], padding[0], padding[0])


class SensitivityProbe(LayerHooks):
    """Forward hooks measuring each layer's output SQNR with only that layer quantized."""

    def __init__(self, layers: Mapping[str, Any], ranges: Mapping[str, Range]):
        super().__init__(layers)
        self.ranges = ranges
        self.signal: dict[str, float] = {}
        self.noise: dict[str, float] = {}
        self._weights = {name: fake_quantize_weight(module.weight) for name, module in self.layers.items()}

    def _hook(self, name: str) -> Any:
        import torch

        quant = ActivationQuant.from_range(self.ranges[name].low, self.ranges[name].high)

        def hook(module: Any, args: tuple[Any, ...], output: Any) -> None:
            with torch.no_grad():
                quantized = _float_forward(module, fake_quantize_activation(args[0], quant), self._weights[name])
                self.signal[name] = self.signal.get(name, 0.0) + float(torch.sum(output.double() ** 2))
                self.noise[name] = self.noise.get(name, 0.0) + float(
                    torch.sum((output.double() - quantized.double()) ** 2)
                )

        return hook

    def table(self) -> list[dict[str, Any]]:
        """Layers sorted worst (lowest SQNR) first."""
        import math

        rows = []
        for name in self.layers:
            signal, noise = self.signal.get(name, 0.0), self.noise.get(name, 0.0)
            value = math.inf if noise == 0 else (-math.inf if signal == 0 else 10 * math.log10(signal / noise))
            rows.append({"layer": name, "sqnr_db": round(value, 2) if math.isfinite(value) else None})
        return sorted(rows, key=lambda row: math.inf if row["sqnr_db"] is None else row["sqnr_db"])


__all__ = ["RealInt8Stats", "SensitivityProbe", "apply_real_int8", "apply_simulated", "sqnr_db"]
