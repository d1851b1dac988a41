"""Calibration: the input range of every quantized layer, from percentiles over calibration runs.

For each call of a layer, the low and high percentiles of its input are taken (numpy's
linear interpolation, computed with ``kthvalue`` so tensors of any size work), and a
running min/max of those is kept across calls and calibration samples, as OnnxStream's
``--decoder-calibrate`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.errors import InputError
from harness.quant.ranges import Range


def percentile(values: Any, q: float) -> float:
    """The ``q``-th percentile (0-100) of all elements, numpy 'linear' method."""
    import torch

    flat = values.detach().reshape(-1).float()
    n = flat.numel()
    if n == 1:
        return float(flat[0])
    position = q / 100.0 * (n - 1)
    lower = math.floor(position)
    upper = min(lower + 1, n - 1)
    low_value = float(torch.kthvalue(flat, lower + 1).values)
    if upper == lower or position == lower:
        return low_value
    high_value = float(torch.kthvalue(flat, upper + 1).values)
    return low_value + (position - lower) * (high_value - low_value)


class RangeCollector:
    """Forward pre-hooks that record each layer's input range while the pipeline runs."""

    def __init__(self, layers: Mapping[str, Any], low_percentile: float):
        self.layers = dict(layers)
        self.low_percentile = low_percentile
        self.ranges: dict[str, Range] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> RangeCollector:
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_pre_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str) -> Any:
        def hook(module: Any, args: tuple[Any, ...]) -> None:
            x = args[0]
            if self.low_percentile <= 0.0:
                observed = Range(float(x.min()), float(x.max()))
            else:
                observed = Range(percentile(x, self.low_percentile), percentile(x, 100.0 - self.low_percentile))
            previous = self.ranges.get(name)
            self.ranges[name] = observed if previous is None else previous.merged(observed)

        return hook

    def result(self) -> dict[str, Range]:
        """The ranges, in layer order; layers that never ran are an :class:`InputError`."""
        never = [name for name in self.layers if name not in self.ranges]
        if never:
            raise InputError(
                f"{len(never)} layers never ran during calibration (first: {', '.join(never[:5])}); "
                "list only submodules the pipeline runs (e.g. vae.decoder rather than vae) or exclude them"
            )
        return {name: self.ranges[name] for name in self.layers}
