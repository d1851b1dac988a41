"""CLIP score against open_clip by hand; long prompts are truncated with a warning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from harness.metrics.base import ScoringContext
from harness.metrics.clip_model import load_clip
from harness.metrics.clip_score import ClipScore


def test_matches_a_direct_open_clip_computation(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(3)]
    prompts = ["a red circle", "a blue square on the left", "two cats"]
    metric = ClipScore({"model": "builtin:tiny", "pretrained": None})
    got = metric.score_images(images, prompts)
    clip = load_clip({"model": "builtin:tiny", "pretrained": None})
    expected = []
    with torch.no_grad():
        for image, prompt in zip(images, prompts):
            pixels = clip.preprocess(Image.fromarray(image)).unsqueeze(0)
            image_embedding = clip.model.encode_image(pixels)
            text_embedding = clip.model.encode_text(clip.tokenizer([prompt]))
            cosine = torch.nn.functional.cosine_similarity(image_embedding, text_embedding).item()
            expected.append(100.0 * cosine)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_long_prompts_are_truncated_with_a_warning(tmp_path):
    context = ScoringContext(device="cpu", cache_dir=tmp_path, references_digest="x")
    metric = ClipScore({"model": "builtin:tiny", "pretrained": None}, context)
    long_prompt = " ".join(["a very detailed photograph of a lighthouse"] * 20)
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    scores = metric.score_images([image, image], [long_prompt, "short"])
    assert all(np.isfinite(scores))
    truncated = [w for w in context.warnings if "truncated" in w]
    assert len(truncated) == 1 and "truncated to the model's 77" in truncated[0]


def test_unknown_models_give_clear_errors(tmp_path):
    from harness.errors import InputError, Where

    with pytest.raises(InputError, match="Unknown open_clip model 'ViT-B-33'"):
        ClipScore.check_options({"model": "ViT-B-33", "pretrained": "openai"}, Where("s.toml", "metrics.clip_score"))
    with pytest.raises(InputError, match="no open_clip model at"):
        ClipScore.check_options(
            {"model": f"local-dir:{tmp_path}", "pretrained": None}, Where("s.toml", "metrics.clip_score")
        )
    with pytest.raises(InputError, match="CLIP checkpoint not found"):
        ClipScore.check_options(
            {"model": "ViT-B-32", "pretrained": str(tmp_path / "w.bin")}, Where("s.toml", "metrics.clip_score")
        )


def test_random_weight_models_are_named_in_a_warning(tmp_path):
    from harness.metrics.clip_model import random_weights_warning

    assert "mean nothing" in random_weights_warning("clip_score", {"model": "builtin:tiny"})
    assert "mean nothing" in random_weights_warning("kid", {"features": "tiny"})
    assert random_weights_warning("clip_score", {"model": "builtin:shapes"}) is None
    context = ScoringContext(device="cpu", cache_dir=tmp_path, references_digest="")
    metric = ClipScore({"model": "builtin:tiny"}, context)
    metric.score_images([np.zeros((32, 32, 3), dtype=np.uint8)], ["a red circle"])
    assert any("clip_score is computed with random built-in weights" in w for w in context.warnings)


def test_images_are_prepared_on_threads_exactly_as_open_clip_prepares_them():
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (70 + 3 * i, 90, 3), dtype=np.uint8) for i in range(9)]
    clip = load_clip({"model": "builtin:tiny", "pretrained": None})
    assert clip.device == "cpu"
    with torch.no_grad():
        pixels = torch.stack([clip.preprocess(Image.fromarray(image)) for image in images])  # in order, one thread
        embedding = clip.model.encode_image(pixels).float()
    expected = embedding / embedding.norm(dim=-1, keepdim=True)
    assert torch.equal(clip.encode_images(images), expected)


def test_the_values_id_follows_device_type_weights_file_and_model_without_loading(tmp_path, monkeypatch):
    import harness.metrics.clip_model as clip_model

    def refuse(*args, **kwargs):
        raise AssertionError("values_id loaded the model")

    monkeypatch.setattr(clip_model, "_load", refuse)
    checkpoint = tmp_path / "clip.safetensors"
    checkpoint.write_bytes(b"one")
    options = {"model": "ViT-B-32", "pretrained": str(checkpoint)}

    def values_id(device, opts=options):
        return ClipScore(opts, ScoringContext(device=device, cache_dir=tmp_path, references_digest="d")).values_id()

    before = values_id("cpu")
    assert values_id("cpu") == before
    assert values_id("cuda:0") == values_id("cuda:1") != before  # the device type, not the card
    checkpoint.write_bytes(b"other weights")  # replaced in place: another size
    assert values_id("cpu") != before
    assert values_id("cpu", {"model": "ViT-B-16", "pretrained": str(checkpoint)}) != values_id("cpu")
    assert values_id("cpu", {"model": "builtin:tiny", "pretrained": None}) != values_id("cpu")


def test_each_distinct_prompt_is_encoded_once_with_the_values_of_encoding_every_image(monkeypatch):
    from harness.metrics.clip_model import BUILTIN_TINY, _tiny

    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(12)]
    prompts = [f"prompt {i % 3}" for i in range(12)]  # 3 prompts, 4 seeds each
    clip = _tiny()
    encoded: list[str] = []
    encode_texts = clip.encode_texts

    def counting(texts):
        encoded.extend(texts)
        return encode_texts(texts)

    monkeypatch.setattr(clip, "encode_texts", counting)
    from harness.metrics.clip_score import clip_scores

    got = clip_scores(clip, images[:5], prompts[:5]) + clip_scores(clip, images[5:], prompts[5:])
    assert sorted(encoded) == ["prompt 0", "prompt 1", "prompt 2"]
    with torch.no_grad():  # every image against its own freshly encoded prompt
        per_image = [
            100.0 * float((clip.encode_images([image]) * encode_texts([prompt])).sum())
            for image, prompt in zip(images, prompts, strict=True)
        ]
    np.testing.assert_allclose(got, per_image, rtol=1e-5, atol=1e-5)
    assert clip.id.startswith(BUILTIN_TINY)
