"""SSIM against scikit-image (Gaussian window, sigma 1.5, population covariance: the Wang et al. setting)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from harness.metrics.ssim import SSIM, ssim_batch


def test_ssim_matches_skimage():
    rng = np.random.default_rng(3)
    references = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(2)]
    references.append(np.tile(np.linspace(0, 255, 48, dtype=np.uint8)[None, :, None], (48, 1, 3)))
    images = [np.clip(r.astype(int) + rng.integers(-20, 21, r.shape), 0, 255).astype(np.uint8) for r in references]
    expected = [
        structural_similarity(
            r, i, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        for r, i in zip(references, images)
    ]
    got = ssim_batch(images, references)
    # torchmetrics pads the borders where skimage crops them; the difference stays small
    np.testing.assert_allclose(got, expected, atol=0.02)


def test_more_noise_lowers_ssim():
    rng = np.random.default_rng(4)
    reference = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    noisy = [
        np.clip(reference.astype(int) + rng.integers(-k, k + 1, reference.shape), 0, 255).astype(np.uint8)
        for k in (2, 20, 80)
    ]
    values = ssim_batch(noisy, [reference] * 3)
    assert values[0] > values[1] > values[2]


def test_ssim_of_identical_images_is_one():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert abs(ssim_batch([image], [image])[0] - 1.0) < 1e-9
    assert SSIM.higher_is_better
