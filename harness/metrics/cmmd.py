"""CMMD (Jayasumana et al., CVPR 2024): MMD with a Gaussian RBF kernel on CLIP embeddings.

Rethinking FID: FID assumes normal features and is biased at small n; CMMD makes no
assumption about the distribution and, computed unbiased, needs far fewer samples. As in
the paper: embeddings L2-normalised, kernel ``exp(-||x - y||^2 / (2 sigma^2))`` with
sigma = 10, the squared MMD scaled by 1000. The estimator here is the unbiased one
(kernel diagonals left out), so two sets from one distribution score ~0 at any n; the
paper's reference code averages over the diagonals too, which adds a positive term of
order 1/n. Features are any space the harness has (``clip`` by default: the shapes
world's own evaluator offline, open_clip models where their weights are present).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from harness.metrics.distribution import DistributionMetric

SIGMA = 10.0
SCALE = 1000.0


def _normalised(features: np.ndarray) -> np.ndarray:
    values = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return values / np.where(norms == 0, 1.0, norms)


def _rbf(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-np.maximum(squared, 0.0) / (2.0 * SIGMA**2))


def cmmd(real: np.ndarray, fake: np.ndarray) -> float:
    """The unbiased squared MMD of the two embedding sets, x1000 (the paper's scale)."""
    x, y = _normalised(real), _normalised(fake)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        return float("nan")
    kxx, kyy, kxy = _rbf(x, x), _rbf(y, y), _rbf(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(SCALE * (within_x + within_y - 2.0 * kxy.mean()))


class CMMD(DistributionMetric):
    name: ClassVar[str] = "cmmd"
    default_tolerance: ClassVar[Mapping[str, float] | None] = {"max_rise": 0.1}
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    summary: ClassVar[str] = "CMMD: unbiased RBF-kernel MMD of normalised embeddings to the reference set, x1000"

    def distance(self, real: np.ndarray, fake: np.ndarray) -> float:
        return cmmd(real, fake)

    def reliability(self, n_fake: int, n_real: int, dim: int) -> tuple[bool, str]:
        n = min(n_fake, n_real)
        if n < 2:
            return False, f"CMMD needs at least 2 images per set (n={n})"
        return True, "unbiased at any n; the interval shows its sampling noise"
