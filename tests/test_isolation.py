"""--isolate: each configuration in its own process gives the same images and its own memory."""

from __future__ import annotations

import json

from harness.cli import main

BODY = """
name = "iso"
pipeline = "builtin:tiny-sd"
reference = "fp32"
prompts = ["a red circle"]
seeds = [0]
steps = 2
width = 32
height = 32
[configs.fp32]
[configs.bf16]
dtype = "bfloat16"
[configs.dies]
transform = "killer:die"
"""


def test_isolated_run_matches_in_process_and_survives_a_dying_worker(write_suite, tmp_path):
    path = write_suite(BODY, name="iso", files={"killer.py": "import os\n\n\ndef die(pipe):\n    os._exit(9)\n"})
    assert main(["bless", str(path)]) == 0
    assert main(["run", str(path), "--out", str(tmp_path / "isolated"), "--isolate"]) == 1
    assert main(["run", str(path), "--out", str(tmp_path / "shared"), "--config", "fp32", "--config", "bf16"]) == 0
    isolated = {c["name"]: c for c in json.loads((tmp_path / "isolated" / "results.json").read_text())["configs"]}
    shared = {c["name"]: c for c in json.loads((tmp_path / "shared" / "results.json").read_text())["configs"]}
    for name in ("fp32", "bf16"):
        assert isolated[name]["status"] == "ok"
        assert (tmp_path / "isolated" / isolated[name]["samples"][0]["image"]).read_bytes() == (
            tmp_path / "shared" / shared[name]["samples"][0]["image"]
        ).read_bytes()
        assert isolated[name]["memory"]["isolated_process_peak_rss_mb"] > 100
    assert isolated["dies"]["status"] == "error" and "exit code 9" in isolated["dies"]["message"]
