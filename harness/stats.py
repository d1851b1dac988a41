"""Summaries with seeded bootstrap confidence intervals.

Every interval is a percentile bootstrap of the mean (or median) with a generator
seeded from the name of what is summarised, so a report is reproducible byte for
byte and independent of the order in which things were computed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95


def stable_seed(*names: str) -> int:
    """A seed from names (crc32), the same on every machine and Python run."""
    return zlib.crc32("/".join(names).encode())


@dataclass(frozen=True)
class Summary:
    """n, centre, worst case and a 95% interval of per-sample values."""

    n: int
    mean: float
    median: float
    worst: float
    ci_low: float | None
    ci_high: float | None
    median_ci: tuple[float | None, float | None] = (None, None)

    def stat(self, name: str) -> float:
        return {"mean": self.mean, "median": self.median, "worst": self.worst}[name]

    def interval(self, name: str) -> tuple[float | None, float | None]:
        """The interval of a statistic; only mean and median have one."""
        if name == "mean":
            return self.ci_low, self.ci_high
        if name == "median":
            return self.median_ci
        return None, None


def resampled_medians(values: np.ndarray, rng: np.random.Generator, resamples: int = RESAMPLES) -> np.ndarray:
    """The medians of ``resamples`` bootstrap resamples of ``values`` (each of its size, with replacement)."""
    return np.median(values[rng.integers(0, values.size, (resamples, values.size))], axis=1)


def bootstrap_interval(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    seed: int,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of ``statistic`` (applied along axis 1 of the resample matrix)."""
    if values.size < 2:
        return None, None
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, values.size, size=(resamples, values.size))
    estimates = statistic(values[indices])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(estimates, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarize(values: Sequence[float], higher_is_better: bool, seed: int) -> Summary:
    """Summarise per-sample values; ``worst`` is the minimum when higher is better."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, None, None)
    worst = float(array.min() if higher_is_better else array.max())
    low, high = bootstrap_interval(array, lambda m: m.mean(axis=1), seed)
    median_ci = bootstrap_interval(array, lambda m: np.median(m, axis=1), seed + 1)
    return Summary(
        n=int(array.size),
        mean=float(array.mean()),
        median=float(np.median(array)),
        worst=worst,
        ci_low=low,
        ci_high=high,
        median_ci=median_ci,
    )


def tail_value(values: Sequence[float], higher_is_better: bool, quantile: float) -> float | None:
    """The low tail's edge: the value the worst ``quantile`` of the samples are at or beyond, that is the
    ``ceil(quantile x n)``-th worst finite value (p25 of 12 samples: the 3rd worst). ``None`` without values."""
    finite = sorted((v for v in values if math.isfinite(v)), reverse=not higher_is_better)
    if not finite:
        return None
    return float(finite[max(1, math.ceil(quantile * len(finite))) - 1])
