"""The Fréchet distance against a direct numpy/scipy computation, on known Gaussians."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from harness.metrics.fid import FID, frechet_distance


def direct_frechet(real: np.ndarray, fake: np.ndarray) -> float:
    mu1, mu2 = real.mean(0), fake.mean(0)
    sigma1, sigma2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = linalg.sqrtm(sigma1 @ sigma2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * covmean))


def analytic_frechet(mu1, cov1, mu2, cov2) -> float:
    covmean = linalg.sqrtm(cov1 @ cov2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1 + cov2 - 2 * covmean))


@pytest.mark.parametrize("dim", [4, 16])
def test_matches_scipy_on_samples(dim):
    rng = np.random.default_rng(dim)
    real = rng.normal(size=(400, dim))
    fake = rng.normal(loc=0.3, scale=1.5, size=(300, dim))
    assert frechet_distance(real, fake) == pytest.approx(direct_frechet(real, fake), rel=1e-6, abs=1e-8)


def test_converges_to_the_analytic_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    dim = 3
    mu1, mu2 = np.zeros(dim), np.array([1.0, -0.5, 0.25])
    a = rng.normal(size=(dim, dim))
    cov1, cov2 = np.eye(dim), a @ a.T + 0.5 * np.eye(dim)
    real = rng.multivariate_normal(mu1, cov1, size=60000)
    fake = rng.multivariate_normal(mu2, cov2, size=60000)
    expected = analytic_frechet(mu1, cov1, mu2, cov2)
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=0.03)


def test_identical_sets_give_zero_and_shift_grows_it():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 8))
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(real, real + 0.5) == pytest.approx(8 * 0.25, rel=1e-6)


def test_small_n_is_flagged_unreliable():
    metric = FID({"features": "tiny", "bootstrap": 10})
    reliable, note = metric.reliability(8, 8, 64)
    assert not reliable and "below the feature dimension 64" in note
    assert metric.reliability(500, 500, 64)[0]
