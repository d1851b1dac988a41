"""Streaming: group offloading reproduces the plain images; CUDA-only modes are skipped with the reason."""

from __future__ import annotations

import json

from harness.cli import main
from harness.registry import build_registry
from tests.helpers import suite_head

BODY = (
    suite_head("s", prompts=["a red circle", "a cat"])
    + """[configs.fp32]
[configs.block_disk]
kind = "streaming"
mode = "group_block"
offload = "disk"
[configs.leaf_cpu]
kind = "streaming"
mode = "group_leaf"
[configs.bf16]
dtype = "bfloat16"
[configs.bf16_leaf]
kind = "streaming"
mode = "group_leaf"
offload = "disk"
dtype = "bfloat16"
[configs.sequential]
kind = "streaming"
mode = "sequential_cpu"
[configs.model]
kind = "streaming"
mode = "model_cpu"
[configs.streams]
kind = "streaming"
mode = "group_block"
use_stream = true
"""
)


def test_streaming_on_cpu(write_suite, tmp_path):
    path = write_suite(BODY, name="s")
    assert main(["bless", str(path)]) == 0
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]) == 0
    configs = {c["name"]: c for c in json.loads((out / "results.json").read_text())["configs"]}
    for name, target in (("block_disk", "fp32"), ("leaf_cpu", "fp32"), ("bf16_leaf", "bf16")):
        found = configs[name]["notes"]["equivalence"]
        assert found["target"] == target and found["identical"] and found["samples_compared"] == 2, (name, found)
    assert configs["block_disk"]["notes"]["streaming"]["offload"] == "disk"
    assert not list((tmp_path / "cache" / "offload").iterdir())  # offload files are removed after the run
    for name in ("sequential", "model", "streams"):
        assert configs[name]["status"] == "skipped" and "CUDA" in configs[name]["message"], configs[name]
    assert "identical to fp32" in (out / "summary.md").read_text()


def test_streaming_option_errors(write_suite):
    import pytest

    from harness.errors import InputError
    from harness.plan.suite import load_suite

    base = (
        'pipeline = "builtin:tiny-sd"\nreference = "a"\nprompts = ["x"]\n[configs.a]\n[configs.s]\nkind = "streaming"\n'
    )
    for extra, message in (
        ('mode = "sequential_cpu"\noffload = "disk"\n', "disk offloading needs a group mode"),
        ('mode = "model_cpu"\nuse_stream = true\n', "CUDA streams apply to group offloading only"),
        ('mode = "group_block"\nequivalent_to = "b"\n', "configs.s.equivalent_to: Unknown configuration 'b'"),
        ('mode = "group_sideways"\n', "Unknown value 'group_sideways'"),
    ):
        with pytest.raises(InputError, match=message):
            load_suite(write_suite(base + extra, name="e"), build_registry())
