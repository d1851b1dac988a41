"""CMMD against a direct, loop-by-loop computation of the paper's kernel and the unbiased MMD."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics.cmmd import CMMD, cmmd


def direct_cmmd(x: np.ndarray, y: np.ndarray, sigma: float = 10.0, scale: float = 1000.0) -> float:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)

    def k(a, b):
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma * sigma))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return scale * (xx + yy - 2 * xy)


def test_matches_the_direct_computation():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(30, 12)), rng.normal(loc=0.3, size=(25, 12))
    assert cmmd(real, fake) == pytest.approx(direct_cmmd(real, fake), rel=1e-9)


def test_unbiased_near_zero_for_one_distribution_positive_for_a_shift():
    rng = np.random.default_rng(1)
    same = [cmmd(rng.normal(size=(20, 8)), rng.normal(size=(20, 8))) for _ in range(40)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))
    shifted = cmmd(rng.normal(size=(20, 8)), rng.normal(loc=1.0, size=(20, 8)))
    assert shifted > 10 * np.std(same)


def test_scale_does_not_matter_and_tiny_sets_say_so():
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
    assert cmmd(real, fake) == pytest.approx(cmmd(3 * real, 0.5 * fake))  # embeddings are normalised
    assert math.isnan(cmmd(real[:1], fake))
    assert CMMD().reliability(1, 10, 4)[0] is False and CMMD().reliability(5, 10, 4)[0] is True
