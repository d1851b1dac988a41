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
from harness.kinds.int8.ranges import Range
from harness.kinds.layers import LayerHooks


def _order_statistics(flat: Any, ranks: tuple[int, ...]) -> list[float]:
    """The values at 0-based sorted positions ``ranks``, exactly.

    Near either end (percentiles like 0.1/99.9) a partial ``topk`` is far faster than
    ``kthvalue`` on a GPU; elsewhere ``kthvalue`` is used. Both are exact.
    """
    import torch

    n = flat.numel()
    lowest, highest = min(ranks), max(ranks)
    if highest < n // 10:
        smallest = torch.topk(flat, highest + 1, largest=False, sorted=True).values
        return [float(smallest[r]) for r in ranks]
    if lowest >= n - n // 10:
        largest = torch.topk(flat, n - lowest, largest=True, sorted=True).values
        return [float(largest[n - 1 - r]) for r in ranks]
    return [float(torch.kthvalue(flat, r + 1).values) for r in ranks]


def percentile(values: Any, q: float) -> float:
    """The ``q``-th percentile (0-100) of all elements, numpy 'linear' method."""
    flat = values.detach().reshape(-1).float()
    n = flat.numel()
    if n == 1:
        return float(flat[0])
    position = q / 100.0 * (n - 1)
    lower = math.floor(position)
    upper = min(lower + 1, n - 1)
    if upper == lower or position == lower:
        return _order_statistics(flat, (lower,))[0]
    low_value, high_value = _order_statistics(flat, (lower, upper))
    return low_value + (position - lower) * (high_value - low_value)


class RangeCollector(LayerHooks):
    """Forward pre-hooks that record each layer's input range while the pipeline runs."""

    pre = True

    def __init__(self, layers: Mapping[str, Any], low_percentile: float):
        super().__init__(layers)
        self.low_percentile = low_percentile
        self.ranges: dict[str, Range] = {}

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
