"""KID against a direct computation of the unbiased MMD with the cubic polynomial kernel."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.kid import KID, kernel_distance


def direct_kid(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]

    def k(a, b):
        return (a @ b.T / d + 1.0) ** 3

    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


def test_matches_direct_unbiased_mmd():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 16))
    fake = rng.normal(loc=0.2, size=(40, 16))
    assert kernel_distance(real, fake) == pytest.approx(direct_kid(real, fake), rel=1e-9)


def test_unbiased_near_zero_for_the_same_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(2)
    same = [kernel_distance(rng.normal(size=(30, 8)), rng.normal(size=(30, 8))) for _ in range(40)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) + 1e-3
    assert kernel_distance(rng.normal(size=(30, 8)), rng.normal(loc=1.0, size=(30, 8))) > 0.1


def test_subsets_are_reproducible():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(60, 4)), rng.normal(size=(50, 4))
    assert kernel_distance(real, fake, subset_size=20) == kernel_distance(real, fake, subset_size=20)


def test_reported_as_kid_times_1000():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(30, 8)), rng.normal(loc=0.5, size=(30, 8))
    metric = KID({"features": "tiny"})
    assert metric.unit == "x1e-3"
    assert metric.distance(real, fake) == pytest.approx(1000.0 * direct_kid(real, fake), rel=1e-9)
