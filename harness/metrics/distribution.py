"""Shared machinery of the set metrics (FID, KID): features, the reference cache, bootstrap intervals.

The distance itself is computed by torchmetrics on precomputed features (the metric
gets an identity "extractor"), so the maths is torchmetrics' own. The interval is a
seeded bootstrap over the generated set (the reference set is held fixed). Resampling
with replacement duplicates images, which inflates these distances systematically, so
the percentile interval is shifted back by the bootstrap's own bias (mean of the
resampled values minus the estimate): its width is the sampling noise, its centre the
estimate.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.errors import Where
from harness.metrics.base import SetMetric, SetScore
from harness.metrics.clip_model import random_weights_warning
from harness.metrics.features import FEATURE_KEYS, check_feature_options, extractor_for, parse_feature_options
from harness.metrics.features.base import FeatureCache
from harness.stats import CONFIDENCE, stable_seed


def precomputed(dim: int) -> Any:
    """An identity module torchmetrics accepts as a feature extractor for features computed elsewhere."""
    from torch import nn

    class Precomputed(nn.Module):
        num_features = dim

        def forward(self, features: Any) -> Any:
            return features

    return Precomputed()


class DistributionMetric(SetMetric):
    """A distance between the generated and the reference feature distributions."""

    option_keys: ClassVar[Mapping[str, str]] = FEATURE_KEYS

    def __init__(self, options: Mapping[str, Any] | None = None, context: Any = None):
        super().__init__(options, context)
        self._reference_memo: dict[tuple[str, str], np.ndarray] = {}

    @classmethod
    def parse_options(cls, table: Mapping[str, Any], where: Where, suite_dir: Path) -> dict[str, Any]:
        super().parse_options(table, where, suite_dir)
        return parse_feature_options(table, where, suite_dir)

    @classmethod
    def check_options(cls, options: Mapping[str, Any], where: Where) -> None:
        check_feature_options(options, where)

    def unavailable(self) -> str | None:
        from harness.errors import InputError

        try:
            check_feature_options(self.options, Where("", f"metrics.{self.name}"))
        except InputError as error:
            return error.detail
        return None

    def reference_features(self, references: Sequence[np.ndarray]) -> np.ndarray:
        """Reference features from memory, the disk cache, or (counted) extraction."""
        extractor = extractor_for(self.options)
        digest = self.context.references_digest if self.context else ""
        key = (digest, extractor.id)
        if key in self._reference_memo:
            return self._reference_memo[key]
        cache = FeatureCache(self.context.cache_dir) if self.context and digest else None
        features = cache.load(digest, extractor) if cache else None
        if features is None or len(features) != len(references):
            features = extractor.extract(references)
            if self.context:
                self.context.count("reference_feature_extractions", len(references))
            if cache:
                cache.store(digest, extractor, features)
        elif self.context:
            self.context.count("reference_feature_cache_hits", len(references))
        self._reference_memo[key] = features
        return features

    def score_set(self, images: Sequence[np.ndarray], references: Sequence[np.ndarray], label: str = "") -> SetScore:
        extractor = extractor_for(self.options)
        warning = random_weights_warning(self.name, self.options)
        if warning and self.context:
            self.context.warn(warning)
        real = self.reference_features(references)
        fake = extractor.extract(images)
        if self.context:
            self.context.count("generated_feature_extractions", len(images))
        value = self.distance(real, fake)
        low, high = self.bootstrap(real, fake, label)
        reliable, note = self.reliability(len(fake), len(real), extractor.dim)
        return SetScore(value=value, ci_low=low, ci_high=high, n=len(fake), note=note, reliable=reliable)

    def bootstrap(self, real: np.ndarray, fake: np.ndarray, label: str) -> tuple[float | None, float | None]:
        resamples = int(self.options.get("bootstrap", 100))
        if resamples == 0 or len(fake) < 2:
            return None, None
        rng = np.random.default_rng(stable_seed(label, self.name, self.options["features"]))
        estimate = self.distance(real, fake)
        values = np.asarray(
            [self.distance(real, fake[rng.integers(0, len(fake), len(fake))]) for _ in range(resamples)]
        )
        bias = float(values.mean()) - estimate
        alpha = (1.0 - CONFIDENCE) / 2.0
        low, high = np.quantile(values - bias, [alpha, 1.0 - alpha])
        return float(low), float(high)

    @abstractmethod
    def distance(self, real: np.ndarray, fake: np.ndarray) -> float:
        """The distance between two feature sets."""

    @abstractmethod
    def reliability(self, n_fake: int, n_real: int, dim: int) -> tuple[bool, str]:
        """Whether the value can be trusted at this n, and a note saying why not."""
