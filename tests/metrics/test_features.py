"""Feature extractors and the reference-feature cache."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import InputError, Where
from harness.metrics.base import ScoringContext
from harness.metrics.features import check_feature_options, extractor_for
from harness.metrics.features.base import FeatureCache
from harness.metrics.features.inception import WEIGHTS_FILE
from harness.metrics.kid import KID


def images(n, seed=0, size=32):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def test_tiny_features_are_deterministic_and_respond_to_content():
    extractor = extractor_for({"features": "tiny"})
    first = extractor.extract(images(4))
    assert first.shape == (4, 64)
    from harness.metrics.features.tiny import TinyFeatures

    np.testing.assert_array_equal(first, TinyFeatures().extract(images(4)))
    assert not np.allclose(first, extractor.extract(images(4, seed=1)))


def test_tiny_features_on_the_cpu_keep_their_rounding():
    """The device-aware path computes, bit for bit, what the network does on an NCHW view of NHWC memory."""
    import torch
    import torch.nn.functional as F

    from harness.metrics.features.tiny import INPUT_PX, build_tiny_network

    batch = images(5, size=48)
    network = build_tiny_network()
    x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    x = F.interpolate(x, size=(INPUT_PX, INPUT_PX), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        maps = network(x)
    expected = torch.cat([maps.mean(dim=(2, 3)), maps.std(dim=(2, 3))], dim=1).double().numpy()
    np.testing.assert_array_equal(extractor_for({"features": "tiny"}, "cpu").extract(batch), expected)


def test_features_from_another_device_class_have_their_own_cache_key(tmp_path):
    from harness.metrics.features.tiny import TinyFeatures

    cpu, gpu = TinyFeatures(), TinyFeatures()
    gpu.device = "cuda:1"  # only the id is read: no GPU needed
    assert cpu.id == cpu.network_id and "@" not in cpu.id
    assert gpu.id == f"{cpu.network_id}@cuda"
    cache = FeatureCache(tmp_path)
    assert cache.path("abc", cpu) != cache.path("abc", gpu)
    same_class = TinyFeatures()
    same_class.device = "cuda:0"
    assert cache.path("abc", same_class) == cache.path("abc", gpu)  # which card does not matter


def test_metrics_take_features_from_the_run_device(tmp_path):
    kid = KID({"features": "tiny"}, ScoringContext("cpu", tmp_path, references_digest="x"))
    assert kid.device == "cpu" and kid.extractor().device == "cpu"
    assert KID({"features": "tiny"}).device == "cpu"  # no run: the CPU


def test_clip_features_use_image_embeddings():
    extractor = extractor_for({"features": "clip", "model": "builtin:tiny", "pretrained": None})
    features = extractor.extract(images(3))
    assert features.shape == (3, extractor.dim) == (3, 64)
    np.testing.assert_allclose(
        np.linalg.norm(features, axis=1), np.sqrt(64), rtol=1e-5
    )  # unit vectors scaled by sqrt(d)


def test_reference_features_are_cached_on_disk(tmp_path):
    refs, gen = images(6, seed=0), images(6, seed=1)
    context = ScoringContext("cpu", tmp_path, references_digest="abc123")
    metric = KID({"features": "tiny", "bootstrap": 5, "subset_size": None}, context)
    first = metric.score_set(gen, refs, "cfg")
    assert context.counters["reference_feature_extractions"] == 6
    again_context = ScoringContext("cpu", tmp_path, references_digest="abc123")
    again = KID({"features": "tiny", "bootstrap": 5, "subset_size": None}, again_context).score_set(gen, refs, "cfg")
    assert "reference_feature_extractions" not in again_context.counters
    assert again_context.counters["reference_feature_cache_hits"] == 6
    assert again == first
    # a corrupt cache file is recomputed, never trusted
    path = FeatureCache(tmp_path).path("abc123", extractor_for({"features": "tiny"}))
    path.write_bytes(b"garbage")
    third_context = ScoringContext("cpu", tmp_path, references_digest="abc123")
    KID({"features": "tiny", "bootstrap": 0, "subset_size": None}, third_context).score_set(gen, refs, "cfg")
    assert third_context.counters["reference_feature_extractions"] == 6


def test_interval_is_centred_on_the_estimate():
    refs, gen = images(12, seed=0), images(12, seed=5)
    metric = KID({"features": "tiny", "bootstrap": 50, "subset_size": None})
    score = metric.score_set(gen, refs, "cfg")
    assert score.ci_low <= score.value <= score.ci_high


def test_missing_inception_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(InputError) as caught:
        check_feature_options({"features": "inception", "weights": None}, Where("s.toml", "metrics.fid"))
    message = str(caught.value)
    assert (
        WEIGHTS_FILE in message
        and str(tmp_path / "hub" / "checkpoints") in message
        and "metrics.fid.features" in message
    )


def test_inception_runs_from_a_local_weights_file(tmp_path, monkeypatch):
    """The wiring to torchmetrics' Inception with a weights file on disk (random weights, saved in its format)."""
    import torch
    from torch_fidelity import feature_extractor_inceptionv3 as fidelity

    monkeypatch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, strict=True: None)
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: {})
    from torchmetrics.image.fid import NoTrainInceptionV3

    random_network = NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path="unused"
    )
    monkeypatch.undo()
    weights = tmp_path / WEIGHTS_FILE
    torch.save(random_network.state_dict(), weights)
    extractor = extractor_for({"features": "inception", "weights": str(weights)})
    features = extractor.extract(images(2, size=48))
    assert features.shape == (2, 2048) and np.isfinite(features).all()
