"""CLIP-IQA through torchmetrics, loaded from a transformers CLIP saved in the real format (random weights).

The harness's value is checked against a direct computation with the same CLIP: the
softmax of 100 x cosine over the "Good photo." / "Bad photo." anchors.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import Where
from harness.metrics.clip_iqa import ClipIQA


@pytest.fixture(scope="module")
def tiny_clip_folder(tmp_path_factory):
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from harness.pipelines.tokenizers import byte_clip_tokenizer

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "vocab_size": 516,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "eos_token_id": 515,
            "bos_token_id": 514,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    model = CLIPModel(config).eval()
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=byte_clip_tokenizer(77),
    )
    folder = tmp_path_factory.mktemp("clip")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def direct_clip_iqa(folder, images):
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    text = processor(text=["Good photo.", "Bad photo."], return_tensors="pt", padding=True)
    pixels = processor(images=[Image.fromarray(i) for i in images], return_tensors="pt")
    with torch.no_grad():
        anchors = model.get_text_features(**text)
        features = model.get_image_features(pixel_values=pixels["pixel_values"])
    anchors = getattr(anchors, "pooler_output", anchors)
    features = getattr(features, "pooler_output", features)
    anchors = anchors / anchors.norm(dim=-1, keepdim=True)
    features = features / features.norm(dim=-1, keepdim=True)
    return torch.softmax(100 * features @ anchors.T, dim=-1)[:, 0].numpy()


def test_matches_a_direct_computation(tiny_clip_folder):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(5)]
    options = ClipIQA.parse_options(
        {"model": str(tiny_clip_folder)}, Where("s.toml", "metrics.clip_iqa"), tiny_clip_folder
    )
    metric = ClipIQA(options)
    assert metric.unavailable() is None
    values = metric.score_images(images, ["a prompt"] * 5)
    assert len(values) == 5 and all(0.0 <= v <= 1.0 for v in values)
    np.testing.assert_allclose(values, direct_clip_iqa(tiny_clip_folder, images), rtol=1e-4, atol=1e-6)


def test_absent_weights_are_a_reason_to_skip(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    reason = ClipIQA({"model": "openai/clip-vit-large-patch14"}).unavailable()
    assert reason is not None and "hf download openai/clip-vit-large-patch14" in reason
    folder_reason = ClipIQA({"model": str(tmp_path / "nowhere")}).unavailable()
    assert folder_reason is not None and "config.json" in folder_reason
    assert ClipIQA.optional
