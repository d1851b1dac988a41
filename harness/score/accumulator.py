"""One scorer with state, in torchmetrics' manner: ``update`` with each chunk of samples, read what it holds.

:class:`Scores` holds what a set of metrics has seen so far of one configuration (or of
the reference set): the per-sample values of pair and image metrics by sample key, the
set metrics' features chunk by chunk, and the seconds each metric took. Whatever feeds it
(the score phase reading stored PNGs chunk by chunk, sequential sampling's monitor
watching batches as they are generated, a clip being one image of stacked frames), the
arithmetic is this one ``update``; the metrics themselves stay pure functions of images.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from harness.metrics.base import ImageMetric, Metric, PairMetric, SetMetric
from harness.metrics.tensors import Pairs


class Scores:
    """Per-sample values, set features and seconds of ``metrics``, over the chunks given to :meth:`update`."""

    def __init__(self, metrics: Sequence[Metric]):
        unknown = [m.name for m in metrics if not isinstance(m, PairMetric | ImageMetric | SetMetric)]
        if unknown:
            raise TypeError(f"metric {unknown[0]} has an unknown scope")
        self.per_sample = [m for m in metrics if isinstance(m, PairMetric | ImageMetric)]
        self.set_metrics = [m for m in metrics if isinstance(m, SetMetric)]
        self.values: dict[str, dict[str, float]] = {m.name: {} for m in self.per_sample}
        self.parts: dict[str, list[np.ndarray]] = {m.name: [] for m in self.set_metrics}
        self.seconds: dict[str, float] = {m.name: 0.0 for m in metrics}
        self.seen: list[str] = []

    @property
    def needs_references(self) -> bool:
        """Whether :meth:`update` needs the reference image of each sample (a pair metric is scored)."""
        return any(isinstance(m, PairMetric) for m in self.per_sample)

    def update(
        self,
        keys: Sequence[str],
        images: Sequence[np.ndarray],
        prompts: Sequence[str],
        references: Sequence[np.ndarray] | None = None,
    ) -> None:
        """Score one chunk of uint8 HxWx3 images (with their prompts and, for pair metrics, reference images)."""
        pairs = Pairs(list(images), list(references or ()), keep=True)  # one device copy for all pair metrics
        for metric in self.per_sample:
            start = time.perf_counter()
            if isinstance(metric, PairMetric):
                scored = metric.score_chunk(pairs)
            else:
                assert isinstance(metric, ImageMetric)
                scored = metric.score_images(list(images), list(prompts))
            self.values[metric.name].update(zip(keys, scored, strict=True))
            self.seconds[metric.name] += time.perf_counter() - start
        if self.set_metrics:
            start = time.perf_counter()
            for name, features in features_of(self.set_metrics, images).items():
                self.parts[name].append(features)
            for set_metric in self.set_metrics:  # shared features: the time is split between the metrics
                self.seconds[set_metric.name] += (time.perf_counter() - start) / len(self.set_metrics)
        self.seen.extend(keys)

    def features(self, metric: SetMetric) -> np.ndarray:
        """A set metric's features of every sample seen, in the order seen."""
        parts = self.parts[metric.name]
        return np.concatenate(parts) if parts else metric.features([])

    def known(self, values: Mapping[str, Mapping[str, float]], keys: Sequence[str]) -> list[str]:
        """Take over per-sample values computed already (sequential sampling's monitor) for metrics known for every
        key: those metrics are not scored again. Returns their names."""
        taken = []
        for metric in list(self.per_sample):
            given = values.get(metric.name, {})
            if keys and all(key in given for key in keys):
                self.values[metric.name] = {key: given[key] for key in keys}
                self.per_sample.remove(metric)
                taken.append(metric.name)
        return taken

    @property
    def idle(self) -> bool:
        """Nothing left to score: the images need not be read."""
        return not self.per_sample and not self.set_metrics


def features_of(metrics: Sequence[SetMetric], images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Each metric's features of ``images``, extracted once per distinct feature key (FID and KID share them)."""
    by_key: dict[str, np.ndarray] = {}
    out = {}
    for metric in metrics:
        key = metric.feature_key()
        if key not in by_key:
            by_key[key] = metric.features(images)
        out[metric.name] = by_key[key]
    return out
