"""Score generated samples: per-sample values, per-configuration summaries with intervals.

Pair metrics compare each image with the blessed reference of the same prompt and
seed. Image metrics score each image on its own; they are also computed for the
blessed reference images, which relative thresholds compare against by default. Set
metrics compare the generated set with the reference set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.metrics.base import ImageMetric, Metric, PairMetric, SetMetric
from harness.references import ReferenceSet
from harness.results import STATUS_OK, ConfigResult, MetricSummary
from harness.samples import load_png
from harness.stats import stable_seed, summarize


def reference_scores(metrics: Sequence[Metric], references: ReferenceSet) -> dict[str, dict[str, float]]:
    """Image-metric values of the blessed reference images, by metric then sample key."""
    keys = references.sample_keys()
    images = [references.image(key) for key in keys]
    prompt_by_key = {image.key: image.prompt for image in references.manifest.images}
    prompts = [prompt_by_key[key] for key in keys]
    scores: dict[str, dict[str, float]] = {}
    for metric in metrics:
        if isinstance(metric, ImageMetric):
            scores[metric.name] = dict(zip(keys, metric.score_images(images, prompts), strict=True))
    return scores


def score_config(
    result: ConfigResult,
    metrics: Sequence[Metric],
    references: ReferenceSet,
    run_dir: Path,
    on_progress: Callable[[int], None] | None = None,
) -> ConfigResult:
    """Add per-sample metric values and summaries to a configuration that generated images."""
    if result.status != STATUS_OK or not result.samples:
        return result
    samples = [s for s in result.samples if s.image]
    images = [load_png(run_dir / str(s.image)) for s in samples]
    per_sample: dict[str, dict[str, float]] = {s.key: dict(s.metrics) for s in samples}
    summaries: list[MetricSummary] = []
    timing: dict[str, float] = {}
    for metric in metrics:
        start = time.perf_counter()
        if isinstance(metric, PairMetric):
            refs = [references.image(s.key) for s in samples]
            values = metric.score_pairs(images, refs)
        elif isinstance(metric, ImageMetric):
            values = metric.score_images(images, [s.prompt for s in samples])
        elif isinstance(metric, SetMetric):
            refs = [references.image(key) for key in references.sample_keys()]
            score = metric.score_set(images, refs, result.name)
            summaries.append(
                MetricSummary(
                    metric=metric.name,
                    unit=metric.unit,
                    higher_is_better=metric.higher_is_better,
                    scope=metric.scope,
                    n=score.n,
                    mean=score.value,
                    ci_low=score.ci_low,
                    ci_high=score.ci_high,
                    note=score.note,
                    reliable=score.reliable,
                )
            )
            timing[f"score_{metric.name}_s"] = round(time.perf_counter() - start, 4)
            if on_progress:
                on_progress(1)
            continue
        else:
            raise TypeError(f"metric {metric.name} has unknown scope {metric.scope}")
        for sample, value in zip(samples, values, strict=True):
            per_sample[sample.key][metric.name] = value
        summaries.append(summary_of(metric, values, result.name))
        timing[f"score_{metric.name}_s"] = round(time.perf_counter() - start, 4)
        if on_progress:
            on_progress(1)
    scored = tuple(replace(s, metrics=per_sample.get(s.key, dict(s.metrics))) for s in result.samples)
    timing["scoring_s"] = round(sum(timing.values()), 4)
    return replace(result, samples=scored, summaries=tuple(summaries), timing={**result.timing, **timing})


def equivalence(result: ConfigResult, target: ConfigResult, run_dir: Path) -> dict[str, Any]:
    """Largest 8-bit pixel difference between two configurations' images of the same samples."""
    theirs = {s.key: s for s in target.samples if s.image}
    largest, compared, differing = 0, 0, 0
    for sample in result.samples:
        other = theirs.get(sample.key)
        if sample.image is None or other is None or other.image is None:
            continue
        mine, partner = load_png(run_dir / sample.image), load_png(run_dir / other.image)
        difference = (
            int(np.abs(mine.astype(np.int16) - partner.astype(np.int16)).max()) if mine.shape == partner.shape else 255
        )
        largest = max(largest, difference)
        compared += 1
        differing += difference > 0
    return {
        "target": target.name,
        "samples_compared": compared,
        "samples_differing": differing,
        "max_pixel_diff": largest,
        "identical": compared > 0 and largest == 0,
    }


def summary_of(metric: Metric, values: Sequence[float], config: str) -> MetricSummary:
    finite = [v for v in values if math.isfinite(v)]
    stats = summarize(finite, metric.higher_is_better, stable_seed(config, metric.name))
    note = "" if len(finite) == len(values) else f"{len(values) - len(finite)} non-finite values left out"
    return MetricSummary(
        metric=metric.name,
        unit=metric.unit,
        higher_is_better=metric.higher_is_better,
        scope=metric.scope,
        n=stats.n,
        mean=stats.mean,
        median=stats.median,
        worst=stats.worst,
        ci_low=stats.ci_low,
        ci_high=stats.ci_high,
        note=note,
    )


def paired_values(
    this: ConfigResult, other: Mapping[str, float], metric: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-sample values of ``metric`` in ``this`` and ``other`` for the keys both have, finite in both."""
    keys, mine, theirs = [], [], []
    for sample in this.samples:
        value = sample.metrics.get(metric)
        partner = other.get(sample.key)
        if value is None or partner is None or not (math.isfinite(value) and math.isfinite(partner)):
            continue
        keys.append(sample.key)
        mine.append(value)
        theirs.append(partner)
    return np.asarray(mine), np.asarray(theirs), keys


def sample_values(result: ConfigResult, metric: str) -> dict[str, float]:
    return {s.key: s.metrics[metric] for s in result.samples if metric in s.metrics}
