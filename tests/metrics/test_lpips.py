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
