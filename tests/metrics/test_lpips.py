"""LPIPS is optional: without backbone weights it says which file to place where."""

from __future__ import annotations

import pytest

from harness.errors import InputError, Where
from harness.metrics.lpips import LPIPS, backbone_file


def test_missing_backbone_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url, path = backbone_file("alex")
    assert path.parent == tmp_path / "hub" / "checkpoints" and url.endswith(path.name)
    metric = LPIPS({"net": "alex"})
    reason = metric.unavailable()
    assert reason is not None and str(path) in reason and url in reason
    with pytest.raises(InputError, match="metrics.lpips.net: LPIPS needs the torchvision alex backbone"):
        LPIPS.check_options({"net": "alex"}, Where("s.toml", "metrics.lpips"))


def test_run_refuses_a_metric_that_cannot_be_computed(write_suite, tmp_path, monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = write_suite(
        """
        pipeline = "builtin:tiny-sd"
        reference = "a"
        prompts = ["x"]
        steps = 1
        width = 16
        height = 16
        [metrics]
        lpips = {}
        [configs.a]
        """
    )
    assert main(["validate", str(path)]) == 2
    assert "LPIPS needs the torchvision alex backbone" in capsys.readouterr().err


@pytest.fixture
def random_backbone(tmp_path, monkeypatch):
    """torchvision's AlexNet with random weights, saved where torch's hub cache keeps the real checkpoint."""
    import torch
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _, path = backbone_file("alex")
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), path)
    return path


def test_loads_the_backbone_from_the_hub_cache_and_scores_in_batches(random_backbone):
    import numpy as np
    import torch
    from torchmetrics.functional.image.lpips import learned_perceptual_image_patch_similarity

    rng = np.random.default_rng(0)
    references = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(20)]
    noise = [rng.normal(0, 40, (64, 64, 3)) for _ in range(20)]
    images = [np.clip(r + n * (i % 4) / 3, 0, 255).astype(np.uint8) for i, (r, n) in enumerate(zip(references, noise))]
    metric = LPIPS({"net": "alex"})
    assert metric.unavailable() is None
    values = metric.score_pairs(images, references)
    assert len(values) == 20  # more than one batch of 16
    # one pair at a time through torchmetrics' functional form, on [0, 1] images with normalize=True
    for index in (0, 5, 17):
        pair = [torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (images[index], references[index])]
        expected = learned_perceptual_image_patch_similarity(*pair, net_type="alex", normalize=True)
        assert values[index] == pytest.approx(float(expected), abs=1e-5)
    assert values[0] == pytest.approx(0.0, abs=1e-6)  # identical pair
    by_level = [np.mean([v for i, v in enumerate(values) if i % 4 == level]) for level in range(4)]
    assert by_level == sorted(by_level)  # more noise, larger distance
