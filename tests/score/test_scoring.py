"""Scoring in chunks: the same values as scoring whole sets, memory that does not grow with n, one read per image."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from harness.errors import InputError
from harness.metrics.base import ImageMetric, ScoringContext
from harness.metrics.fid import FID
from harness.metrics.kid import KID
from harness.metrics.psnr import PSNR
from harness.references.store import Manifest, ReferenceImage, ReferenceSet
from harness.results import STATUS_OK, ConfigResult, SampleResult
from harness.samples import read_chunks, sample_key, save_png
from harness.score.scoring import score_config, score_references


class MeanLevel(ImageMetric):
    """A stand-in image metric: the mean 8-bit level (numpy only, so its maths is plain to check)."""

    name: ClassVar[str] = "mean_level"
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    summary: ClassVar[str] = "mean level"

    def score_images(self, images, prompts):
        return [float(np.asarray(image, dtype=np.float64).mean()) for image in images]

    def values_id(self):
        return "mean_level-v1"


def _world(tmp_path: Path, n: int, size: int = 32, blank: int | None = None):
    """``n`` reference PNGs and ``n`` generated ones (the references plus noise), as scoring sees them."""
    rng = np.random.default_rng(n)
    ref_dir, run_dir = tmp_path / "refs", tmp_path / "run"
    entries, samples, refs, gens = [], [], [], []
    for index in range(n):
        key = sample_key(index, 0)
        ref = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        if index == blank:
            ref = np.full_like(ref, 77)
        gen = np.clip(ref.astype(np.int16) + rng.integers(-9, 10, ref.shape), 0, 255).astype(np.uint8)
        sha = save_png(ref, ref_dir / f"{key}.png")
        save_png(gen, run_dir / "images" / "cfg" / f"{key}.png")
        entries.append(ReferenceImage(key, index, f"prompt {index}", 0, f"{key}.png", sha))
        samples.append(
            SampleResult(
                key=key,
                prompt_index=index,
                prompt=f"prompt {index}",
                seed=0,
                image=f"images/cfg/{key}.png",
                seconds=0.1,
                nonfinite_fraction=0.0,
                blank=False,
            )
        )
        refs.append(ref)
        gens.append(gen)
    manifest = Manifest("s", "fp32", "hash", {}, "weights", {}, "now", tuple(entries))
    result = ConfigResult(name="cfg", kind="precision", status=STATUS_OK, samples=tuple(samples))
    return ReferenceSet(ref_dir, manifest), result, run_dir, gens, refs


def _metrics(tmp_path: Path):
    context = ScoringContext(device="cpu", cache_dir=tmp_path / "cache", references_digest="d" * 64)
    options = {"features": "tiny", "bootstrap": 20, "subset_size": None}
    return [PSNR({}, context), MeanLevel({}, context), KID(options, context), FID(options, context)], context


def test_chunked_scoring_gives_the_values_of_whole_sets(tmp_path):
    references, result, run_dir, gens, refs = _world(tmp_path, 11, blank=4)
    metrics, context = _metrics(tmp_path)
    reference = score_references(metrics, references, chunk=3)
    scored = score_config(result, metrics, references, reference, run_dir, chunk=3)

    psnr, _, kid, fid = metrics
    by_name = {s.metric: s for s in scored.summaries}
    expected_psnr = psnr.score_pairs(gens, refs)
    np.testing.assert_allclose([s.metrics["psnr"] for s in scored.samples], expected_psnr, rtol=1e-6)
    assert [s.metrics["mean_level"] for s in scored.samples] == [float(g.mean()) for g in gens]
    assert reference.scores["mean_level"]["p002-s0"] == float(refs[2].mean())
    assert reference.blank == ("p004-s0",)
    for metric in (kid, fid):  # set metrics from features gathered chunk by chunk == from the whole sets
        whole = metric.score_set(gens, refs, "cfg")
        assert math.isclose(by_name[metric.name].mean, whole.value, rel_tol=1e-9, abs_tol=1e-12)
        assert by_name[metric.name].n == 11
    # FID and KID share the tiny extractor: the references' features were extracted once for both
    assert context.counters["reference_feature_extractions"] == 2 * 11
    assert {f"score_{name}_s" for name in ("psnr", "mean_level", "kid", "fid", "images_read")} <= set(scored.timing)


def test_reference_features_from_the_cache_are_not_extracted_again(tmp_path):
    references, *_ = _world(tmp_path, 5)
    metrics, first = _metrics(tmp_path)
    one = score_references(metrics, references)
    again, second = _metrics(tmp_path)
    two = score_references(again, references)
    assert first.counters["reference_feature_extractions"] == 10
    assert "reference_feature_extractions" not in second.counters
    assert second.counters["reference_feature_cache_hits"] == 10
    np.testing.assert_array_equal(one.features["kid"], two.features["kid"])


def test_a_rerun_with_everything_cached_reads_no_reference_image(tmp_path, monkeypatch):
    references, _, _, _, refs = _world(tmp_path, 7, blank=3)
    cache_dir = tmp_path / "cache"
    metrics, first = _metrics(tmp_path)
    one = score_references(metrics, references, chunk=3, cache_dir=cache_dir)
    assert "reference_value_cache_hits" not in first.counters

    def unread(key):
        raise AssertionError(f"reference {key} read although everything was cached")

    monkeypatch.setattr(references, "image", unread)
    again, second = _metrics(tmp_path)
    two = score_references(again, references, chunk=3, cache_dir=cache_dir)
    assert second.counters["reference_value_cache_hits"] == 7
    assert two.scores == one.scores
    assert two.scores["mean_level"]["p002-s0"] == float(refs[2].mean())
    assert two.blank == one.blank == ("p003-s0",)
    np.testing.assert_array_equal(two.features["fid"], one.features["fid"])


def test_values_are_computed_again_when_their_cache_cannot_be_trusted(tmp_path):
    references, _, _, _, refs = _world(tmp_path, 4)
    cache_dir = tmp_path / "cache"
    metrics, _ = _metrics(tmp_path)
    score_references(metrics, references, cache_dir=cache_dir)
    (stored,) = (cache_dir / "reference_values").glob("*-mean_level-*.json")
    stored.write_text(stored.read_text()[:20])  # truncated by a crash
    again, context = _metrics(tmp_path)
    two = score_references(again, references, cache_dir=cache_dir)
    assert "reference_value_cache_hits" not in context.counters
    assert two.scores["mean_level"] == {f"p00{i}-s0": float(refs[i].mean()) for i in range(4)}


def test_a_metric_without_a_values_id_is_scored_on_every_run(tmp_path):
    class Uncached(MeanLevel):
        name: ClassVar[str] = "uncached"

        def values_id(self):
            return None

    references, *_ = _world(tmp_path, 3)
    context = ScoringContext(device="cpu", cache_dir=tmp_path / "cache", references_digest="d" * 64)
    for _ in range(2):
        score_references([Uncached({}, context)], references, cache_dir=tmp_path / "cache")
    assert "reference_value_cache_hits" not in context.counters
    assert not list((tmp_path / "cache" / "reference_values").glob("*-uncached-*"))


def _peak_bytes(tmp_path: Path, n: int, chunk: int) -> int:
    references, result, run_dir, _, _ = _world(tmp_path / f"n{n}-c{chunk}", n, size=SIZE)
    metrics, _ = _metrics(tmp_path)
    metrics = metrics[:2]  # numpy-held images (tracemalloc sees numpy's allocations, not torch's)
    reference = score_references(metrics, references, chunk=chunk)
    tracemalloc.start()
    try:
        score_config(result, metrics, references, reference, run_dir, chunk=chunk)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


SIZE = 256


def test_memory_grows_with_the_number_of_samples_by_values_not_images(tmp_path):
    image_bytes = SIZE * SIZE * 3
    _peak_bytes(tmp_path / "warm", 4, chunk=4)  # first-use allocations (torch's CPU kernels) out of the way
    per_sample = (_peak_bytes(tmp_path, 48, chunk=4) - _peak_bytes(tmp_path, 16, chunk=4)) / 32
    # what still grows with n is per-sample values and their bootstrap (about 40 kB a sample), not images
    assert per_sample < 0.4 * image_bytes, per_sample
    # the control: whole sets in memory (one chunk of everything, as scoring was before) hold every image
    whole = (_peak_bytes(tmp_path, 48, chunk=48) - _peak_bytes(tmp_path, 16, chunk=16)) / 32
    assert whole > 2 * image_bytes, whole


def test_a_corrupt_reference_is_an_input_error_naming_the_file(tmp_path):
    references, result, run_dir, _, _ = _world(tmp_path, 7)
    metrics, _ = _metrics(tmp_path)
    reference = score_references(metrics, references, chunk=2)
    references.path("p005-s0").write_bytes(b"not a png")
    with pytest.raises(InputError, match="p005-s0.png"):
        score_config(result, metrics, references, reference, run_dir, chunk=2)


def test_read_chunks_keeps_order_and_reads_each_item_once():
    calls: list[int] = []

    def load(value: int) -> int:
        calls.append(value)
        return value * 10

    loads = [[lambda v=v: load(v) for v in range(start, min(start + 3, 10))] for start in range(0, 10, 3)]
    for workers in (0, 3):
        calls.clear()
        assert [values for values in read_chunks(loads, workers)] == [[0, 10, 20], [30, 40, 50], [60, 70, 80], [90]]
        assert sorted(calls) == list(range(10))


class Tf32Probe(MeanLevel):
    """Records whether cuDNN may use TF32 while the metric computes."""

    name: ClassVar[str] = "tf32_probe"
    seen: ClassVar[list[bool]] = []

    def score_images(self, images, prompts):
        import torch

        self.seen.append(torch.backends.cudnn.allow_tf32)
        return super().score_images(images, prompts)


def test_metrics_compute_with_tf32_off_and_the_setting_comes_back(tmp_path):
    import torch

    references, result, run_dir, _, _ = _world(tmp_path, 3)
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's default
    try:
        probe = Tf32Probe({}, None)
        reference = score_references([probe], references)
        score_config(result, [probe], references, reference, run_dir)
        assert Tf32Probe.seen == [False, False]  # the references, then the configuration
        assert torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def test_chunks_shrink_for_large_samples_so_memory_stays_bounded(tmp_path):
    """A long clip (frames stacked top to bottom) is many images' worth of pixels: fewer samples per chunk."""
    from PIL import Image

    from harness.score.scoring import CHUNK, chunk_for

    sizes = {"image": (64, 64), "clip": (32, 32 * 9), "large": (1024, 1024), "long_clip": (832, 480 * 81)}
    chunks = {}
    for name, size in sizes.items():
        path = tmp_path / f"{name}.png"
        Image.new("RGB", size).save(path)
        chunks[name] = chunk_for(path)
    assert chunks == {"image": CHUNK, "clip": CHUNK, "large": 8, "long_clip": 1}
    assert chunk_for(tmp_path / "missing.png") == CHUNK


class CountingLevel(MeanLevel):
    """MeanLevel that counts the images it scores."""

    name: ClassVar[str] = "counting_level"
    scored: ClassVar[list[int]] = []

    def score_images(self, images, prompts):
        self.scored.append(len(images))
        return super().score_images(images, prompts)


def test_values_known_for_every_sample_are_taken_not_computed(tmp_path):
    """Sequential sampling's monitor hands its per-sample values to scoring: a metric known for every sample is not
    computed again (and with nothing left to compute no image is read); one known for only some samples is."""
    references, result, run_dir, _, _ = _world(tmp_path, 5)
    metrics, _ = _metrics(tmp_path)
    psnr = metrics[0]
    counting = CountingLevel({}, None)
    reference = score_references([psnr, counting], references)
    keys = [s.key for s in result.samples]
    known = {"counting_level": {key: 1000.0 + i for i, key in enumerate(keys)}}
    CountingLevel.scored.clear()
    scored = score_config(result, [psnr, counting], references, reference, run_dir, known=known)
    assert CountingLevel.scored == []
    assert [s.metrics["counting_level"] for s in scored.samples] == [1000.0 + i for i in range(5)]
    assert {s.metric: s.mean for s in scored.summaries}["counting_level"] == 1002.0
    assert scored.samples[0].metrics["psnr"] < 100  # computed: psnr was not known

    for path in (run_dir / "images" / "cfg").iterdir():  # nothing left to compute: the images are not read
        path.unlink()
    alone = score_config(result, [counting], references, reference, run_dir, known=known)
    assert [s.metrics["counting_level"] for s in alone.samples] == [1000.0 + i for i in range(5)]
    assert alone.timing["score_images_read_s"] == 0

    partial = {"counting_level": dict(list(known["counting_level"].items())[:4])}
    with pytest.raises(FileNotFoundError):  # one sample unknown: the metric is computed, so the images are read
        score_config(result, [counting], references, reference, run_dir, known=partial)
