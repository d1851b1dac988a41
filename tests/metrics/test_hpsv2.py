"""HPSv2 from a checkpoint in the real format ({"state_dict": ...} for an open_clip architecture), random weights.

A small architecture registered with open_clip stands in for ViT-H-14; the harness's
score is checked against open_clip by hand: 100 x cosine of the normalised embeddings.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.errors import Where
from harness.metrics.hpsv2 import HPSv2

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("hps")
    (folder / "hps-tiny-test.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(folder / "hps-tiny-test.json")
    torch.manual_seed(0)
    model = open_clip.create_model("hps-tiny-test")
    path = folder / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def by_hand(path, images, prompts):
    import open_clip
    import torch
    from PIL import Image

    model, _, preprocess = open_clip.create_model_and_transforms("hps-tiny-test")
    model.load_state_dict(torch.load(path)["state_dict"])
    model.eval()
    tokenizer = open_clip.get_tokenizer("hps-tiny-test")
    with torch.no_grad():
        image = model.encode_image(torch.stack([preprocess(Image.fromarray(i)) for i in images]))
        text = model.encode_text(tokenizer(prompts))
    image, text = image / image.norm(dim=-1, keepdim=True), text / text.norm(dim=-1, keepdim=True)
    return (100 * (image * text).sum(-1)).numpy()


def test_scores_match_open_clip_by_hand(tiny_checkpoint):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(4)]
    prompts = ["a red circle", "a cat", "a lighthouse at dusk", "two blue squares"]
    options = HPSv2.parse_options(
        {"checkpoint": str(tiny_checkpoint), "arch": "hps-tiny-test"}, Where("s.toml", "metrics.hpsv2"), tiny_checkpoint
    )
    metric = HPSv2(options)
    assert metric.unavailable() is None
    np.testing.assert_allclose(
        metric.score_images(images, prompts), by_hand(tiny_checkpoint, images, prompts), atol=1e-4
    )


def test_absent_checkpoint_is_a_reason_to_skip(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    reason = HPSv2({"arch": "ViT-H-14"}).unavailable()
    assert reason is not None and "hf download xswu/HPSv2 HPS_v2.1_compressed.pt" in reason
    assert "place HPS_v2.1_compressed.pt at" in (HPSv2({"checkpoint": str(tmp_path / "x.pt")}).unavailable() or "")
    assert HPSv2.optional
