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

from harness.metrics.base import ImageMetric, Metric, PairMetric, SetMetric, SetScore
from harness.metrics.reference_values import ReferenceValueCache
from harness.metrics.tensors import Pairs, exact_float32
from harness.references.store import ReferenceSet
from harness.results import STATUS_OK, ConfigResult, MetricSummary, SampleResult
from harness.samples import BLANK_STD, READ_THREADS, io_threads, is_blank, load_png, read_chunks
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


def _features(metrics: Sequence[SetMetric], images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Each metric's features of ``images``, extracted once per distinct feature key."""
    by_key: dict[str, np.ndarray] = {}
    out = {}
    for metric in metrics:
        key = metric.feature_key()
        if key not in by_key:
            by_key[key] = metric.features(images)
        out[metric.name] = by_key[key]
    return out


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
    prompt_by_key = {image.key: image.prompt for image in references.manifest.images}
    image_metrics = [m for m in metrics if isinstance(m, ImageMetric)]
    set_metrics = [m for m in metrics if isinstance(m, SetMetric)]
    features: dict[str, np.ndarray] = {}
    for metric in set_metrics:
        cached = metric.cached_reference_features(len(keys))
        if cached is not None:
            features[metric.name] = cached
    extract = [m for m in set_metrics if m.name not in features]
    scores: dict[str, dict[str, float]] = {}
    for image_metric in image_metrics:
        cached_values = image_metric.cached_reference_values(keys)
        if cached_values is not None:
            scores[image_metric.name] = cached_values
    compute = [m for m in image_metrics if m.name not in scores]
    blank_cache = ReferenceValueCache(cache_dir) if cache_dir is not None else None
    digest = references.manifest.digest
    flags = blank_cache.load(digest, "blank", BLANK_ID, keys) if blank_cache is not None else None
    if flags is None or compute or extract:
        flags = {}
        for image_metric in compute:
            scores[image_metric.name] = {}
        parts: dict[str, list[np.ndarray]] = {m.name: [] for m in extract}
        groups = _chunks(keys, chunk_for(references.path(keys[0]), chunk) if keys else chunk)
        loads = [[functools.partial(references.image, key) for key in group] for group in groups]
        for group, images in zip(groups, read_chunks(loads, io_threads(READ_THREADS)), strict=True):
            flags.update((key, float(is_blank(image))) for key, image in zip(group, images, strict=True))
            for image_metric in compute:
                values = image_metric.score_images(images, [prompt_by_key[key] for key in group])
                scores[image_metric.name].update(zip(group, values, strict=True))
            for name, features_of_chunk in _features(extract, images).items():
                parts[name].append(features_of_chunk)
            if on_progress:
                on_progress(len(metrics) * len(group) / len(keys))
        for metric in extract:
            features[metric.name] = np.concatenate(parts[metric.name]) if parts[metric.name] else np.zeros((0, 0))
            metric.keep_reference_features(features[metric.name])
        for image_metric in compute:
            image_metric.keep_reference_values(scores[image_metric.name])
        if blank_cache is not None:
            blank_cache.store(digest, "blank", BLANK_ID, flags)
    elif on_progress:
        on_progress(len(metrics))
    blank = tuple(key for key in keys if flags[key])
    ordered = {m.name: scores[m.name] for m in image_metrics}
    return ReferenceScoring(ordered, features, blank, time.perf_counter() - start)


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
    unknown = [m.name for m in metrics if not isinstance(m, PairMetric | ImageMetric | SetMetric)]
    if unknown:
        raise TypeError(f"metric {unknown[0]} has an unknown scope")
    samples = [s for s in result.samples if s.image]
    known = known or {}
    every_key = [s.key for s in samples]
    reused = {
        m.name
        for m in metrics
        if isinstance(m, PairMetric | ImageMetric) and all(key in known.get(m.name, {}) for key in every_key)
    }
    per_sample_metrics = [m for m in metrics if isinstance(m, PairMetric | ImageMetric) and m.name not in reused]
    set_metrics = [m for m in metrics if isinstance(m, SetMetric)]
    pairs = any(isinstance(m, PairMetric) for m in per_sample_metrics)
    values: dict[str, list[float]] = {m.name: [] for m in per_sample_metrics}
    values.update({name: [known[name][key] for key in every_key] for name in reused})
    parts: dict[str, list[np.ndarray]] = {m.name: [] for m in set_metrics}
    seconds: dict[str, float] = {m.name: 0.0 for m in metrics}
    waited = 0.0

    def load(sample: SampleResult) -> tuple[np.ndarray, np.ndarray | None]:
        return load_png(run_dir / str(sample.image)), references.image(sample.key) if pairs else None

    to_read = samples if per_sample_metrics or set_metrics else []
    groups = _chunks(to_read, chunk_for(run_dir / str(samples[0].image), chunk) if to_read else chunk)
    reader = read_chunks([[functools.partial(load, s) for s in group] for group in groups], io_threads(READ_THREADS))
    for group in groups:
        start = time.perf_counter()
        try:
            loaded = next(reader)
        except BaseException:
            reader.close()
            raise
        waited += time.perf_counter() - start
        images = [image for image, _ in loaded]
        chunk_pairs = Pairs(images, [ref for _, ref in loaded], keep=True)  # one device copy for all pair metrics
        for scorer in per_sample_metrics:
            start = time.perf_counter()
            if isinstance(scorer, PairMetric):
                values[scorer.name].extend(scorer.score_chunk(chunk_pairs))
            else:
                values[scorer.name].extend(scorer.score_images(images, [s.prompt for s in group]))
            seconds[scorer.name] += time.perf_counter() - start
        start = time.perf_counter()
        for name, features in _features(set_metrics, images).items():
            parts[name].append(features)
        for set_metric in set_metrics:  # shared features: the time is split between the metrics
            seconds[set_metric.name] += (time.perf_counter() - start) / len(set_metrics)
        if on_progress:
            on_progress((len(per_sample_metrics) + len(set_metrics)) * len(group) / len(samples))
    if on_progress and reused:
        on_progress(len(reused))
    per_sample: dict[str, dict[str, float]] = {s.key: dict(s.metrics) for s in samples}
    summaries: list[MetricSummary] = []
    for metric in metrics:
        start = time.perf_counter()
        if isinstance(metric, SetMetric):
            fake = np.concatenate(parts[metric.name]) if parts[metric.name] else metric.features([])
            metric.count("generated_feature_extractions", len(fake))
            score = metric.score_features(fake, reference.features[metric.name], result.name)
            summaries.append(set_summary(metric, score))
        else:
            for sample, value in zip(samples, values[metric.name], strict=True):
                per_sample[sample.key][metric.name] = value
            summaries.append(summary_of(metric, values[metric.name], result.name))
        seconds[metric.name] += time.perf_counter() - start
    scored = tuple(replace(s, metrics=per_sample.get(s.key, dict(s.metrics))) for s in result.samples)
    timing = {f"score_{name}_s": round(value, 4) for name, value in seconds.items()}
    timing["score_images_read_s"] = round(waited, 4)
    timing["scoring_s"] = round(sum(seconds.values()) + waited, 4)
    return replace(result, samples=scored, summaries=tuple(summaries), timing={**result.timing, **timing})


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
        **_described(metric),
        n=stats.n,
        mean=stats.mean,
        median=stats.median,
        worst=stats.worst,
        ci_low=stats.ci_low,
        ci_high=stats.ci_high,
        note=note,
    )
