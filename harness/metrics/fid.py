"""Fréchet distance between generated and reference features (torchmetrics' FrechetInceptionDistance)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from harness.metrics.distribution import DistributionMetric, precomputed


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two feature sets, through torchmetrics (float64 sums, eigenvalue square root)."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=precomputed(real.shape[1]))
    metric.update(torch.from_numpy(np.ascontiguousarray(real, dtype=np.float64)), real=True)
    metric.update(torch.from_numpy(np.ascontiguousarray(fake, dtype=np.float64)), real=False)
    # Identical sets give a tiny negative value from the eigenvalue square root; a distance is >= 0.
    return max(0.0, float(metric.compute()))


class FID(DistributionMetric):
    name: ClassVar[str] = "fid"
    default_tolerance: ClassVar[Mapping[str, float] | None] = {"max_rise_pct": 10.0}
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "Fréchet distance of the generated set to the reference set (features: tiny, clip or inception)"
    )

    def distance(self, real: np.ndarray, fake: np.ndarray) -> float:
        return frechet_distance(real, fake)

    def reliability(self, n_fake: int, n_real: int, dim: int) -> tuple[bool, str]:
        n = min(n_fake, n_real)
        if n < 2:
            return False, f"FID needs at least 2 images per set (n={n})"
        if n < dim:
            return False, (
                f"n={n} is below the feature dimension {dim}: the covariances are rank-deficient, so FID is biased "
                "upward and unstable here; compare only at equal n and gate on KID instead"
            )
        return True, "biased upward at small n; compare values only at equal n"
