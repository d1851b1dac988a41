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
from harness.metrics.base import NO_EVALUATORS, Evaluators, SetMetric, SetScore
from harness.metrics.clip_model import random_weights_warning
from harness.metrics.features import (
    FEATURE_KEYS,
    check_feature_options,
    extractor_for,
    parse_feature_options,
    resolve_defaults,
)
from harness.metrics.features.base import FeatureCache, FeatureExtractor
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

    @classmethod
    def parse_options(cls, table: Mapping[str, Any], where: Where, suite_dir: Path) -> dict[str, Any]:
        super().parse_options(table, where, suite_dir)
        return parse_feature_options(table, where, suite_dir)

    @classmethod
    def check_options(cls, options: Mapping[str, Any], where: Where, evaluators: Evaluators = NO_EVALUATORS) -> None:
        check_feature_options(options, where, evaluators)

    @classmethod
    def resolve_defaults(cls, options: Mapping[str, Any], evaluator: str) -> dict[str, Any]:
        return resolve_defaults(dict(options), evaluator)

    def unavailable(self) -> str | None:
        from harness.errors import InputError

        try:
            check_feature_options(self.options, Where("", f"metrics.{self.name}"), self.evaluators)
        except InputError as error:
            return error.detail
        return None

    def extractor(self) -> FeatureExtractor:
        """The feature network, on the run's device."""
        return extractor_for(self.options, self.device, self.evaluators)

    def feature_key(self) -> str:
        return self.extractor().id

    def features(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.extractor().extract(images)

    def _feature_cache(self) -> FeatureCache | None:
        if self.context is None or not self.context.references_digest:
            return None
        return FeatureCache(self.context.cache_dir)

    def cached_reference_features(self, count: int) -> np.ndarray | None:
        """From the disk cache, keyed by the reference manifest's digest and the extractor (counted)."""
        cache = self._feature_cache()
        if cache is None or self.context is None:
            return None
        features = cache.load(self.context.references_digest, self.extractor())
        if features is None or len(features) != count:
            return None
        self.count("reference_feature_cache_hits", count)
        return features

    def keep_reference_features(self, features: np.ndarray) -> None:
        self.count("reference_feature_extractions", len(features))
        cache = self._feature_cache()
        if cache is not None and self.context is not None:
            cache.store(self.context.references_digest, self.extractor(), features)

    def score_features(self, fake: np.ndarray, real: np.ndarray, label: str = "") -> SetScore:
        warning = random_weights_warning(self.name, self.options)
        if warning and self.context:
            self.context.warn(warning)
        value = self.distance(real, fake)
        low, high = self.bootstrap(real, fake, label)
        reliable, note = self.reliability(len(fake), len(real), self.extractor().dim)
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
