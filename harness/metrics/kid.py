"""Kernel (Inception) distance: an unbiased MMD that stays meaningful for small sets (torchmetrics).

Reported x 10^3, as papers print it (KID x 10^3): torchmetrics' raw values of sound
models are of order 1e-3 on Inception features. The unbiased estimator leaves the kernel
diagonals out, so two sets from one distribution score about 0 and may go below 0; a
set scored against itself is below 0. The scale depends on the feature space (its
dimension and feature norms), so values are comparable only with the same ``features``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness import tomlread
from harness.errors import Where
from harness.metrics.distribution import DistributionMetric, precomputed
from harness.metrics.features import FEATURE_KEYS

KID_SEED = 0
SCALE = 1000.0  # reported as KID x 10^3


def kernel_distance(real: np.ndarray, fake: np.ndarray, subset_size: int | None = None, subsets: int = 50) -> float:
    """Mean KID over subsets (all samples when the sets are small), seeded for reproducibility."""
    import torch
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(len(real), len(fake), subset_size or 1000)
    whole = size == len(real) == len(fake)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*save all extracted features.*")
        metric = KernelInceptionDistance(
            feature=precomputed(real.shape[1]), subsets=1 if whole else subsets, subset_size=size
        )
    metric.update(torch.from_numpy(np.ascontiguousarray(real, dtype=np.float64)), real=True)
    metric.update(torch.from_numpy(np.ascontiguousarray(fake, dtype=np.float64)), real=False)
    state = torch.random.get_rng_state()
    torch.manual_seed(KID_SEED)
    try:
        mean, _ = metric.compute()
    finally:
        torch.random.set_rng_state(state)
    return float(mean)


class KID(DistributionMetric):
    name: ClassVar[str] = "kid"
    default_tolerance: ClassVar[Mapping[str, float] | None] = {
        "max_rise": 100.0
    }  # x1e-3, i.e. 0.1 in torchmetrics' raw units
    unit: ClassVar[str] = "x1e-3"  # "kid = 12.3 x1e-3": the raw distance is 0.0123
    higher_is_better: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "kernel distance x 10^3 (unbiased MMD, cubic kernel; about 0 for one distribution, may be < 0) "
        "of the generated set to the reference set"
    )
    option_keys: ClassVar[Mapping[str, str]] = {
        **FEATURE_KEYS,
        "subset_size": "samples per subset (default: all, at most 1000)",
    }

    @classmethod
    def parse_options(cls, table: Mapping[str, Any], where: Where, suite_dir: Path) -> dict[str, Any]:
        subset_size = tomlread.get(table, "subset_size", int, where)
        if subset_size is not None and subset_size < 2:
            raise where.error("subset_size", "must be >= 2")
        options = super().parse_options({k: v for k, v in table.items() if k != "subset_size"}, where, suite_dir)
        options["subset_size"] = subset_size
        return options

    def distance(self, real: np.ndarray, fake: np.ndarray) -> float:
        return SCALE * kernel_distance(real, fake, self.options.get("subset_size"))

    def reliability(self, n_fake: int, n_real: int, dim: int) -> tuple[bool, str]:
        n = min(n_fake, n_real)
        if n < 2:
            return False, f"KID needs at least 2 images per set (n={n})"
        return True, "unbiased at any n; the interval shows its sampling noise"
