"""Kernel (Inception) distance: an unbiased MMD that stays meaningful for small sets (torchmetrics)."""

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
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    summary: ClassVar[str] = "kernel distance (unbiased MMD, cubic kernel) of the generated set to the reference set"
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
        return kernel_distance(real, fake, self.options.get("subset_size"))

    def reliability(self, n_fake: int, n_real: int, dim: int) -> tuple[bool, str]:
        n = min(n_fake, n_real)
        if n < 2:
            return False, f"KID needs at least 2 images per set (n={n})"
        return True, "unbiased at any n; the interval shows its sampling noise"
