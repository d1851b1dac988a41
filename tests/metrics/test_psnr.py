"""PSNR against scikit-image's independent implementation."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from harness.metrics.psnr import PSNR, PSNR_CAP_DB, psnr_batch


@pytest.mark.parametrize("noise", [1, 5, 40])
def test_psnr_matches_skimage_per_image(noise):
    rng = np.random.default_rng(noise)
    references = [rng.integers(0, 256, (24, 20, 3), dtype=np.uint8) for _ in range(3)]
    images = [
        np.clip(r.astype(int) + rng.integers(-noise, noise + 1, r.shape), 0, 255).astype(np.uint8) for r in references
    ]
    expected = [peak_signal_noise_ratio(r, i, data_range=255) for r, i in zip(references, images)]
    got = psnr_batch(images, references)
    np.testing.assert_allclose(got, expected, rtol=1e-6)  # torchmetrics reduces in float32
    # per image, not pooled over the batch
    assert len(set(np.round(got, 6))) == 3


def test_identical_images_are_capped_not_infinite():
    image = np.full((8, 8, 3), 7, dtype=np.uint8)
    assert psnr_batch([image], [image]) == [PSNR_CAP_DB]


def test_metric_class_declares_direction_and_unit():
    assert PSNR.higher_is_better and PSNR.unit == "dB" and PSNR.scope == "pair"
