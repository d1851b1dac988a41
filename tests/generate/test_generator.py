"""Batched generation matches one-at-a-time within one 8-bit level; configurations never leak into each other."""

from __future__ import annotations

import json

import numpy as np

from harness.cli import main
from harness.generate.distributed import Ranks
from harness.generate.generator import batches
from harness.samples import load_png
from tests.helpers import suite_head

BODY = (
    suite_head("b", prompts=["a red circle", "a cat", "a lighthouse", "two squares"], seeds=[0, 1], steps=3, size=48)
    + """[configs.fp32]
"""
)


def test_batched_generation_matches_single_within_one_level(write_suite, tmp_path):
    path = write_suite(BODY, name="b")
    assert main(["bless", str(path), "--batch-size", "1"]) == 0
    images = {}
    for size in (1, 4, 8):
        out = tmp_path / f"b{size}"
        assert main(["run", str(path), "--out", str(out), "--batch-size", str(size), "--no-cache"]) == 0
        results = json.loads((out / "results.json").read_text())
        assert results["configs"][0]["timing"]["batch_size"] == size
        images[size] = np.stack([load_png(out / s["image"]).astype(int) for s in results["configs"][0]["samples"]])
    for size in (4, 8):
        difference = np.abs(images[size] - images[1])
        assert difference.max() <= 1, difference.max()  # the stated tolerance: one 8-bit level
        assert difference.mean() < 0.01


def test_configurations_do_not_leak_into_each_other(write_suite, tmp_path):
    body = (
        BODY
        + """
[configs.mixed]
dtype = "float16"
component_dtypes = { vae = "bfloat16", text_encoder = "bfloat16" }
[configs.int8]
kind = "int8"
components = ["unet"]
ranges = "ranges/unet.txt"
calibration_prompts = ["a green triangle"]
[configs.damaged]
transform = "damage:zero_unet"
[configs.fp32_again]
dtype = "float32"
"""
    )
    damage = {
        "damage.py": "import torch\n\n\ndef zero_unet(pipe):\n    with torch.no_grad():\n        for p in pipe.unet.parameters():\n            p.mul_(0.5)\n    return pipe\n"
    }
    path = write_suite(body, name="b", files=damage)
    assert main(["bless", str(path)]) == 0
    out = tmp_path / "run"
    main(["run", str(path), "--out", str(out), "--no-cache"])
    configs = {c["name"]: c for c in json.loads((out / "results.json").read_text())["configs"]}
    for first, again in zip(configs["fp32"]["samples"], configs["fp32_again"]["samples"]):
        assert (out / first["image"]).read_bytes() == (out / again["image"]).read_bytes()
    psnr = {name: next(s["mean"] for s in c["summaries"]) for name, c in configs.items()}
    assert psnr["fp32_again"] == 100.0 and psnr["damaged"] < 40


def test_batches_and_round_robin_shares():
    jobs = list(range(7))
    assert batches(jobs, 3) == [[0, 1, 2], [3, 4, 5], [6]]
    rank0, rank1 = Ranks(None, 0, 2, "cpu"), Ranks(None, 1, 2, "cpu")
    assert rank0.share(batches(jobs, 2)) == [0, 1, 4, 5] and rank1.share(batches(jobs, 2)) == [2, 3, 6]
    # re-batching a share by the same size gives back the same batches
    assert batches(rank1.share(batches(jobs, 2)), 2) == [[2, 3], [6]]
