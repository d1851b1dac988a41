"""--isolate: each configuration in its own process gives the same images and its own memory."""

from __future__ import annotations

import json

from harness.cli import main
from harness.kinds.precision import PrecisionKind
from tests.helpers import suite_head

BODY = (
    suite_head("iso")
    + """[configs.fp32]
[configs.bf16]
dtype = "bfloat16"
[configs.dies]
transform = "killer:die"
"""
)


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


class RenamedPrecision(PrecisionKind):
    """A kind no default registry has: only the caller's registry can give it to the worker."""

    name = "renamed_precision"


def test_the_worker_uses_the_callers_registry(write_suite, tmp_path):
    from harness.plan.suite import load_suite
    from harness.registry import build_registry
    from harness.runner import Runner, RunRequest

    body = BODY.split("[configs.fp32]")[0] + '[configs.fp32]\n[configs.mine]\nkind = "renamed_precision"\n'
    registry = build_registry()
    registry.kinds.add(RenamedPrecision.name, RenamedPrecision(), "this test")
    suite = load_suite(write_suite(body, name="plug"), registry)
    runner = Runner(registry)
    runner.bless(RunRequest(suite))
    output = runner.run(RunRequest(suite, out_dir=tmp_path / "r", isolate=True))
    mine = output.result.config("mine")
    assert mine.status == "ok", mine.message
    assert mine.memory["isolated_process_peak_rss_mb"] > 100
