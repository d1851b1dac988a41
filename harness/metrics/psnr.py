"""Peak signal-to-noise ratio between a generated image and its reference (torchmetrics)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from harness.metrics.base import PairMetric
from harness.metrics.tensors import Pairs, pair_batches

# Identical 8-bit images have infinite PSNR; a finite cap keeps means and intervals defined.
PSNR_CAP_DB = 100.0


def psnr_batch(images: Sequence[np.ndarray], references: Sequence[np.ndarray], device: str = "cpu") -> list[float]:
    """Per-image PSNR in dB (data range 255), capped at ``PSNR_CAP_DB``; float32 on ``device``, batch by batch."""
    return psnr_of(pair_batches(images, references, device))


def psnr_of(batches: Iterable[tuple[Any, Any]]) -> list[float]:
    """Per-image PSNR of float32 NCHW batches (0-255).

    torchmetrics pools over the batch unless ``dim`` and ``reduction='none'`` are given.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    result: list[float] = []
    for batch, refs in batches:
        values = peak_signal_noise_ratio(batch, refs, data_range=255.0, dim=(1, 2, 3), reduction="none")
        result.extend(float(min(PSNR_CAP_DB, v)) for v in values.tolist())
    return result


class PSNR(PairMetric):
    name: ClassVar[str] = "psnr"
    default_tolerance: ClassVar[Mapping[str, float] | None] = {
        "max_drop": 0.5,
        "saturate_at": 48.0,
    }  # above 48 dB the RMS error is under one 8-bit level
    unit: ClassVar[str] = "dB"
    higher_is_better: ClassVar[bool] = True
    summary: ClassVar[str] = "PSNR vs the reference image of the same prompt and seed (8-bit; identical = 100 dB)"

    def score_chunk(self, pairs: Pairs) -> list[float]:
        return psnr_of(pairs.batches(self.device))
