"""Score generated samples: per-sample values, per-configuration summaries with intervals.

Pair metrics compare each image with the blessed reference of the same prompt and
seed. Image metrics score each image on its own; they are also computed for the
blessed reference images, which relative thresholds compare against by default. Set
metrics compare the generated set with the reference set through per-image features.

Images are read and scored in chunks (the next chunk read on background threads while
the current one is scored), every metric on each chunk: each image is read once per
configuration, and memory does not grow with the number of samples.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.metrics.base import ImageMetric, Metric, SetMetric, SetScore
from harness.metrics.reference_values import ReferenceValueCache
from harness.metrics.tensors import exact_float32
from harness.references.store import ReferenceSet
from harness.results import STATUS_OK, ConfigResult, MetricSummary, SampleResult
from harness.samples import BLANK_STD, READ_THREADS, io_threads, is_blank, load_png, read_chunks
from harness.score.accumulator import Scores
from harness.stats import stable_seed, summarize

# Samples scored at once: a multiple of the metrics' own batches (16 pairs, 32 images), and small enough
# that reading the next chunk overlaps scoring this one in a 64-sample configuration
CHUNK = 32
BLANK_ID = f"is_blank: 8-bit std below {BLANK_STD * 255.0}"  # the reference value cache's key for blankness


@dataclass(frozen=True)
class ReferenceScoring:
    """What the reference set contributes to every configuration's scoring, computed once per run."""

    scores: dict[str, dict[str, float]]  # image metrics' values of the reference images, by metric then key
    features: dict[str, np.ndarray]  # set metrics' reference features, by metric name
    blank: tuple[str, ...]  # keys of reference images that are blank (one flat colour)
    seconds: float


CHUNK_PIXELS = CHUNK * 512 * 512  # a chunk holds what 32 images of 512 px hold: clips make smaller chunks


def chunk_for(path: Path, chunk: int = CHUNK) -> int:
    """Samples per chunk for images like the one at ``path`` (read from its header): ``chunk``, fewer for samples
    larger than 512 x 512 (a clip of 81 frames at 480 x 832 is scored one at a time), so memory stays bounded."""
    from PIL import Image

    try:
        with Image.open(path) as handle:
            width, height = handle.size
    except OSError:
        return chunk
    return max(1, min(chunk, CHUNK_PIXELS // max(1, width * height)))


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[first : first + size] for first in range(0, len(items), size)]


@exact_float32()  # metric networks in true float32 on CUDA
def score_references(
    metrics: Sequence[Metric],
    references: ReferenceSet,
    on_progress: Callable[[float], None] | None = None,
    chunk: int = CHUNK,
    cache_dir: Path | None = None,
) -> ReferenceScoring:
    """Image-metric values, set-metric features and blankness of the references, reading each image once.

    What an earlier run computed for the same references is taken from the caches
    (features, image-metric values, and blankness under ``cache_dir``); when everything
    is cached, the reference images are not read at all.
    """
    start = time.perf_counter()
    keys = references.sample_keys()
    image_metrics = [m for m in metrics if isinstance(m, ImageMetric)]
    set_metrics = [m for m in metrics if isinstance(m, SetMetric)]
    features = {m.name: f for m in set_metrics if (f := m.cached_reference_features(len(keys))) is not None}
    scores = {m.name: v for m in image_metrics if (v := m.cached_reference_values(keys)) is not None}
    to_score = [m for m in (*image_metrics, *set_metrics) if m.name not in scores and m.name not in features]
    blank_cache = ReferenceValueCache(cache_dir) if cache_dir is not None else None
    digest = references.manifest.digest
    flags = blank_cache.load(digest, "blank", BLANK_ID, keys) if blank_cache is not None else None
    if flags is None or to_score:
        flags, computed = _read_references(references, to_score, len(metrics), on_progress, chunk)
        for metric in to_score:
            if isinstance(metric, SetMetric):
                features[metric.name] = computed.features(metric) if computed.parts[metric.name] else np.zeros((0, 0))
                metric.keep_reference_features(features[metric.name])
            elif isinstance(metric, ImageMetric):
                scores[metric.name] = computed.values[metric.name]
                metric.keep_reference_values(scores[metric.name])
        if blank_cache is not None:
            blank_cache.store(digest, "blank", BLANK_ID, flags)
    elif on_progress:
        on_progress(len(metrics))
    blank = tuple(key for key in keys if flags[key])
    ordered = {m.name: scores[m.name] for m in image_metrics}
    return ReferenceScoring(ordered, features, blank, time.perf_counter() - start)


def _read_references(
    references: ReferenceSet,
    metrics: Sequence[Metric],
    counted: int,
    on_progress: Callable[[float], None] | None,
    chunk: int,
) -> tuple[dict[str, float], Scores]:
    """Every reference image read once, chunk by chunk: its blankness, and ``metrics`` scored on it."""
    keys = references.sample_keys()
    prompt_by_key = {image.key: image.prompt for image in references.manifest.images}
    scores = Scores(metrics)
    flags: dict[str, float] = {}
    groups = _chunks(keys, chunk_for(references.path(keys[0]), chunk) if keys else chunk)
    loads = [[functools.partial(references.image, key) for key in group] for group in groups]
    for group, images in zip(groups, read_chunks(loads, io_threads(READ_THREADS)), strict=True):
        flags.update((key, float(is_blank(image))) for key, image in zip(group, images, strict=True))
        scores.update(group, images, [prompt_by_key[key] for key in group])
        if on_progress:
            on_progress(counted * len(group) / len(keys))
    return flags, scores


@exact_float32()
def score_config(
    result: ConfigResult,
    metrics: Sequence[Metric],
    references: ReferenceSet,
    reference: ReferenceScoring,
    run_dir: Path,
    on_progress: Callable[[float], None] | None = None,
    chunk: int = CHUNK,
    known: Mapping[str, Mapping[str, float]] | None = None,
) -> ConfigResult:
    """Add per-sample metric values and summaries to a configuration that generated images.

    Images are read and scored ``chunk`` samples at a time, every metric on each chunk, so
    memory stays bounded at any sample count; set metrics keep only features per image.
    ``known`` (metric, then sample key) holds values computed already (sequential sampling's
    monitor): a per-sample metric known for every sample is taken from it, not computed again,
    and where nothing is left to compute the images are not read.
    """
    if result.status != STATUS_OK or not result.samples:
        return result
    scores = Scores(metrics)
    samples = [s for s in result.samples if s.image]
    reused = scores.known(known or {}, [s.key for s in samples])
    waited = 0.0 if scores.idle else _read_config(scores, samples, references, run_dir, on_progress, chunk)
    if on_progress and reused:
        on_progress(len(reused))
    per_sample: dict[str, dict[str, float]] = {s.key: dict(s.metrics) for s in samples}
    summaries: list[MetricSummary] = []
    for metric in metrics:
        start = time.perf_counter()
        if isinstance(metric, SetMetric):
            fake = scores.features(metric)
            metric.count("generated_feature_extractions", len(fake))
            summaries.append(
                set_summary(metric, metric.score_features(fake, reference.features[metric.name], result.name))
            )
        else:
            values = [scores.values[metric.name][sample.key] for sample in samples]
            for sample, value in zip(samples, values, strict=True):
                per_sample[sample.key][metric.name] = value
            summaries.append(summary_of(metric, values, result.name))
        scores.seconds[metric.name] += time.perf_counter() - start
    scored = tuple(replace(s, metrics=per_sample.get(s.key, dict(s.metrics))) for s in result.samples)
    timing = {f"score_{name}_s": round(value, 4) for name, value in scores.seconds.items()}
    timing["score_images_read_s"] = round(waited, 4)
    timing["scoring_s"] = round(sum(scores.seconds.values()) + waited, 4)
    return replace(result, samples=scored, summaries=tuple(summaries), timing={**result.timing, **timing})


def _read_config(
    scores: Scores,
    samples: Sequence[SampleResult],
    references: ReferenceSet,
    run_dir: Path,
    on_progress: Callable[[float], None] | None,
    chunk: int,
) -> float:
    """Read a configuration's images chunk by chunk (the next chunk on background threads) into ``scores``;
    the seconds spent waiting for reads."""
    pairs = scores.needs_references
    counted = len(scores.per_sample) + len(scores.set_metrics)

    def load(sample: SampleResult) -> tuple[np.ndarray, np.ndarray | None]:
        return load_png(run_dir / str(sample.image)), references.image(sample.key) if pairs else None

    groups = _chunks(samples, chunk_for(run_dir / str(samples[0].image), chunk))
    reader = read_chunks([[functools.partial(load, s) for s in group] for group in groups], io_threads(READ_THREADS))
    waited = 0.0
    for group in groups:
        start = time.perf_counter()
        try:
            loaded = next(reader)
        except BaseException:
            reader.close()
            raise
        waited += time.perf_counter() - start
        images = [image for image, _ in loaded]
        refs = [ref for _, ref in loaded] if pairs else None
        scores.update([s.key for s in group], images, [s.prompt for s in group], refs)
        if on_progress:
            on_progress(counted * len(group) / len(samples))
    return waited


def _described(metric: Metric) -> dict[str, Any]:
    """What every summary of ``metric`` says about it."""
    return {
        "metric": metric.name,
        "unit": metric.unit,
        "higher_is_better": metric.higher_is_better,
        "scope": metric.scope,
    }


def set_summary(metric: SetMetric, score: SetScore) -> MetricSummary:
    return MetricSummary(
        **_described(metric),
        n=score.n,
        mean=score.value,
        ci_low=score.ci_low,
        ci_high=score.ci_high,
        note=score.note,
        reliable=score.reliable,
    )


def summary_of(metric: Metric, values: Sequence[float], config: str) -> MetricSummary:
    finite = [v for v in values if math.isfinite(v)]
    stats = summarize(finite, metric.higher_is_better, stable_seed(config, metric.name))
    note = "" if len(finite) == len(values) else f"{len(values) - len(finite)} non-finite values left out"
    return MetricSummary(
        **_described(metric),
        n=stats.n,
        mean=stats.mean,
        median=stats.median,
        worst=stats.worst,
        ci_low=stats.ci_low,
        ci_high=stats.ci_high,
        note=note,
    )
