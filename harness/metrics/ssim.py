"""Structural similarity between a generated image and its reference (torchmetrics)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from harness.metrics.base import PairMetric
from harness.metrics.tensors import Pairs, pair_batches


def ssim_batch(images: Sequence[np.ndarray], references: Sequence[np.ndarray], device: str = "cpu") -> list[float]:
    """Per-image SSIM, in float32 on ``device``, a bounded batch at a time."""
    return ssim_of(pair_batches(images, references, device))


def ssim_of(batches: Iterable[tuple[Any, Any]]) -> list[float]:
    """Per-image SSIM (Gaussian window 11, sigma 1.5, data range 255) of float32 NCHW batches, averaged over channels."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    result: list[float] = []
    for batch, refs in batches:
        values = structural_similarity_index_measure(batch, refs, data_range=255.0, reduction="none")
        assert not isinstance(values, tuple)  # only with return_full_image / return_contrast_sensitivity
        result.extend(float(v) for v in values.reshape(-1).tolist())
    return result


class SSIM(PairMetric):
    name: ClassVar[str] = "ssim"
    default_tolerance: ClassVar[Mapping[str, float] | None] = {"max_drop": 0.005}
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    summary: ClassVar[str] = "SSIM vs the reference image of the same prompt and seed"

    def score_chunk(self, pairs: Pairs) -> list[float]:
        return ssim_of(pairs.batches(self.device))
