"""Static W8A8 quantization maths, exact in float (fake quantization).

- Weights: symmetric int8 per output channel, ``scale = max|w| / 127``, values in [-127, 127].
- Activations: asymmetric uint8 from a calibrated range, ``scale = (max - min) / 255`` and
  ``zero_point = round(-min / scale)`` clamped to [0, 255]; ``q = clamp(round(x / scale) + zp, 0, 255)``.

Rounding is round-half-to-even (``torch.round``), the same in the simulation and the
real int8 path, so they differ only by float accumulation order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_SCALE = 1e-12


@dataclass(frozen=True)
class ActivationQuant:
    scale: float
    zero_point: int

    @classmethod
    def from_range(cls, low: float, high: float) -> ActivationQuant:
        scale = max((high - low) / 255.0, MIN_SCALE)
        zero_point = int(np.clip(np.round(-low / scale), 0, 255))
        return cls(scale, zero_point)


def quantize_activation(x: Any, quant: ActivationQuant) -> Any:
    """uint8 codes (as the input's float dtype) of ``x``."""
    import torch

    return torch.clamp(torch.round(x / quant.scale) + quant.zero_point, 0, 255)


def fake_quantize_activation(x: Any, quant: ActivationQuant) -> Any:
    return (quantize_activation(x, quant) - quant.zero_point) * quant.scale


def weight_scales(weight: Any) -> Any:
    """Per-output-channel scales (shape [out, 1, ...]) for symmetric int8."""
    import torch

    flat = weight.detach().reshape(weight.shape[0], -1).abs().amax(dim=1)
    scales = torch.clamp(flat / 127.0, min=MIN_SCALE)
    return scales.reshape(-1, *([1] * (weight.dim() - 1)))


def quantize_weight(weight: Any) -> tuple[Any, Any]:
    """int8 codes (int8 tensor) and per-channel scales."""
    import torch

    scales = weight_scales(weight)
    codes = torch.clamp(torch.round(weight.detach() / scales), -127, 127).to(torch.int8)
    return codes, scales


def fake_quantize_weight(weight: Any) -> Any:
    codes, scales = quantize_weight(weight)
    return codes.to(weight.dtype) * scales.to(weight.dtype)


def sqnr_db(reference: Any, approximation: Any) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when identical)."""
    import torch

    signal = float(torch.sum(reference.double() ** 2))
    noise = float(torch.sum((reference.double() - approximation.double()) ** 2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))
