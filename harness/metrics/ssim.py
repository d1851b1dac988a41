"""Structural similarity between a generated image and its reference (torchmetrics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from harness.metrics.base import PairMetric
from harness.metrics.tensors import stack_images


def ssim_batch(images: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> list[float]:
    """Per-image SSIM (Gaussian window 11, sigma 1.5, data range 255), averaged over channels."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    if not images:
        return []
    values = structural_similarity_index_measure(
        stack_images(images), stack_images(references), data_range=255.0, reduction="none"
    )
    assert not isinstance(values, tuple)  # only with return_full_image / return_contrast_sensitivity
    return [float(v) for v in values.reshape(-1).tolist()]


class SSIM(PairMetric):
    name: ClassVar[str] = "ssim"
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    summary: ClassVar[str] = "SSIM vs the reference image of the same prompt and seed"

    def score_pairs(self, images: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> list[float]:
        return ssim_batch(images, references)
