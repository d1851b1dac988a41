"""The sample cache: reruns generate nothing, changes regenerate only what changed, killed runs resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from harness.cli import main
from harness.samples import load_png
from tests.helpers import configs_by_name, read_results, suite_head

BODY = (
    suite_head("k", prompts=["a red circle", "a cat", "a lighthouse", "two squares"], seeds=[0, 1])
    + """[configs.fp32]
[configs.bf16]
dtype = "bfloat16"
[configs.int8]
kind = "int8"
components = ["vae.decoder"]
ranges = "ranges/vae.txt"
calibration_prompts = ["a green triangle"]
"""
)


def run(path, tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["run", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), *extra]) == 0
    return read_results(out)


def test_rerun_generates_nothing_and_changes_regenerate_only_what_changed(write_suite, tmp_path):
    path = write_suite(BODY, name="k")
    assert main(["bless", str(path), "--cache-dir", str(tmp_path / "cache")]) == 0
    first = run(path, tmp_path, "first")
    assert first["counters"]["sample_cache_hits"] == 8  # fp32 came from blessing
    assert first["counters"]["sample_cache_misses"] == 16
    second = run(path, tmp_path, "second")
    assert second["counters"]["sample_cache_hits"] == 24 and second["counters"]["sample_cache_misses"] == 0
    int8 = configs_by_name(second)["int8"]
    assert "from_cache" in int8["notes"] and int8["notes"]["layers_quantized"] == 20  # notes survive
    assert [s["metrics"] for s in int8["samples"]] == [s["metrics"] for s in configs_by_name(first)["int8"]["samples"]]
    path.write_text(path.read_text().replace('dtype = "bfloat16"', 'dtype = "float16"'))
    third = run(path, tmp_path, "third")
    configs = configs_by_name(third)
    assert configs["bf16"]["timing"]["cache_misses"] == 8 and configs["int8"]["timing"]["cache_hits"] == 8
    fourth = run(path, tmp_path, "fourth", "--no-cache")
    assert fourth["counters"]["sample_cache_hits"] == 0 and fourth["counters"]["sample_cache_misses"] == 24


def test_a_killed_run_resumes_where_it_stopped(write_suite, tmp_path):
    path = write_suite(BODY.replace("steps = 2", "steps = 6"), name="k")
    cache = tmp_path / "cache"
    assert main(["bless", str(path), "--cache-dir", str(cache)]) == 0

    def entries():  # finished entries only: a write in flight is a dot-file renamed into place when complete
        return [p for p in (cache / "samples").rglob("*.png") if not p.name.startswith(".")]

    blessed = len(entries())
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "harness",
        "run",
        str(path),
        "--out",
        str(tmp_path / "killed"),
        "--cache-dir",
        str(cache),
        "--config",
        "bf16",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(entries()) < blessed + 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    survived = len(entries()) - blessed
    assert 3 <= survived < 8, survived
    # SIGKILL can land mid-write: that leaves a dot-file, never a half-written entry under its key
    for entry in entries():
        assert load_png(entry).shape == (32, 32, 3), entry
    resumed = run(path, tmp_path, "resumed", "--config", "bf16")
    timing = configs_by_name(resumed)["bf16"]["timing"]
    assert timing["cache_hits"] == survived and timing["cache_misses"] == 8 - survived
