"""Optional preference/IQA backends: absent here, they are skipped with the reason, and the run goes on.

The image-reward package is not installed on these machines, so its scoring path is not
exercised here; what is tested is that its absence (and absent weights for HPSv2 and
CLIP-IQA) is a skipped metric with a reason, in results.json and the checks, never an error.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from harness.cli import main
from harness.metrics.image_reward import ImageRewardMetric
from tests.helpers import suite_head

SUITE = (
    suite_head("optional", prompts=["a red circle", "a cat"])
    + """
[metrics]
psnr = {}
image_reward = {}
hpsv2 = { checkpoint = "nowhere/HPS_v2.1_compressed.pt" }
clip_iqa = { model = "nowhere/clip" }

[thresholds]
psnr = { min = 30 }
image_reward = { max_drop = 0.1 }
hpsv2 = { max_drop = 0.5 }

[configs.fp32]
[configs.bf16]
dtype = "bfloat16"
"""
)


@pytest.fixture(autouse=True)
def forget_stand_ins():
    """Tests here import stand-ins for the package; none may outlive its test."""
    sys.modules.pop("ImageReward", None)
    yield
    sys.modules.pop("ImageReward", None)


@pytest.mark.skipif(importlib.util.find_spec("ImageReward") is not None, reason="image-reward is installed here")
def test_missing_package_is_the_reason():
    assert ImageRewardMetric({}).unavailable() == "ImageReward needs the image-reward package: pip install image-reward"


def test_missing_files_are_named(tmp_path, monkeypatch):
    (tmp_path / "site" / "ImageReward").mkdir(parents=True)  # an importable stand-in for the package
    (tmp_path / "site" / "ImageReward" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reason = ImageRewardMetric({"folder": str(tmp_path)}).unavailable()
    assert reason == (
        "ImageReward needs ImageReward.pt from huggingface.co/THUDM/ImageReward: "
        f"place it at {tmp_path / 'ImageReward.pt'}"
    )


def test_a_package_that_does_not_import_is_a_reason_to_skip(tmp_path, monkeypatch):
    # what image-reward 1.5 does under transformers 5
    package = tmp_path / "ImageReward"
    package.mkdir()
    (package / "__init__.py").write_text(
        "raise ImportError(\"cannot import name 'apply_chunking_to_forward' from 'transformers.modeling_utils'\")\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reason = ImageRewardMetric({"folder": str(tmp_path)}).unavailable()
    assert reason is not None and "does not import here (ImportError: cannot import name" in reason


def test_run_skips_unavailable_optional_metrics_and_passes(write_suite, tmp_path):
    path = write_suite(SUITE, name="optional")
    assert main(["validate", str(path)]) == 0
    assert main(["bless", str(path), "--device", "cpu"]) == 0
    out = tmp_path / "run"
    code = main(["run", str(path), "--out", str(out), "--device", "cpu", "--cache-dir", str(tmp_path / "c")])
    results = json.loads((out / "results.json").read_text())
    assert code == 0
    skipped = {(c["config"], c["check"]): c for c in results["checks"] if c["status"] == "skipped"}
    for config in ("fp32", "bf16"):
        for metric in ("image_reward", "hpsv2", "clip_iqa"):
            assert "not computed: " in skipped[(config, f"{metric} computed")]["reason"]
    assert "pip install image-reward" in skipped[("bf16", "image_reward computed")]["reason"]
    assert "HPS_v2.1_compressed.pt" in skipped[("bf16", "hpsv2 computed")]["reason"]
    assert not [c for c in results["checks"] if c["status"] == "error"]
    assert any(w.startswith("image_reward not computed") for w in results["warnings"])
    # the metrics that could be computed were
    assert [s["metric"] for s in results["configs"][1]["summaries"]] == ["psnr"]
