"""Runs sharing one cache directory at once, and a run killed with SIGKILL, lose and corrupt nothing.

Each run is a separate ``python -m harness`` process, as in a CI matrix on one runner.
What must agree is every value a verdict rests on: per-sample metric values, health
flags and check outcomes (timings and cache counters may differ).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from tests.helpers import REPO, suite_head

ROOT = REPO

# GGUF files, sample images, reference features (KID) and reference values (CLIP score) are
# all written into the shared cache; the last configuration is slowed (sleeps, same images)
# so a kill lands inside it.
SUITE = (
    suite_head("shared", prompts=["a red circle", "a blue square on the left"], seeds=[0, 1], steps=3)
    + """batch_size = 1
[metrics]
psnr = {}
clip_score = { model = "builtin:tiny" }
kid = { features = "tiny" }
[thresholds]
psnr = { min = 25 }
[configs.fp32]
[configs.q8_0]
kind = "gguf"
type = "Q8_0"
components = ["unet"]
[configs.slow]
dtype = "float32"
transform = "harness.controls:denoiser_slowdown_3x"
"""
)


def harness(suite: Path, out: Path, cache: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "harness", "run", str(suite), "--out", str(out), "--cache-dir", str(cache)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)


def finished(process: subprocess.Popen[bytes]) -> int:
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()[-3000:]
    return process.returncode


def verdict_values(out: Path) -> dict[str, Any]:
    """What a verdict rests on, without timings or cache counters."""
    results = json.loads((out / "results.json").read_text())
    configs = {
        c["name"]: {
            "status": c["status"],
            "samples": [(s["key"], s["metrics"], s["nonfinite_fraction"], s["blank"]) for s in c["samples"]],
            "summaries": c["summaries"],
        }
        for c in results["configs"]
    }
    checks = [(c["config"], c["check"], c["status"], c["value"]) for c in results["checks"] if c["metric"] != "time"]
    return {"configs": configs, "checks": checks, "reference": results["reference_scores"], "state": results["state"]}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shared")
    path = root / "shared.toml"
    path.write_text(SUITE)
    assert main(["bless", str(path), "--cache-dir", str(root / "bless-cache")]) == 0
    return path


@pytest.fixture(scope="module")
def alone(suite: Path) -> dict[str, Any]:
    """An uninterrupted run with its own cache: what every other run must reproduce."""
    out = suite.parent / "alone"
    finished(harness(suite, out, suite.parent / "own-cache"))
    values = verdict_values(out)
    assert values["state"] == "complete" and len(values["configs"]) == 3
    return values


def test_two_runs_sharing_a_cache_at_once_agree_with_a_run_alone(suite, alone, tmp_path):
    shared = tmp_path / "shared-cache"
    first, second = harness(suite, tmp_path / "a", shared), harness(suite, tmp_path / "b", shared)
    finished(first), finished(second)
    assert verdict_values(tmp_path / "a") == alone
    assert verdict_values(tmp_path / "b") == alone
    # the shared cache holds only whole entries: a third run reads every sample from it
    finished(harness(suite, tmp_path / "c", shared))
    assert verdict_values(tmp_path / "c") == alone
    counters = json.loads((tmp_path / "c" / "results.json").read_text())["counters"]
    assert counters["sample_cache_misses"] == 0 and counters["sample_cache_hits"] == 12


def test_a_run_killed_mid_configuration_reruns_to_the_same_results(suite, alone, tmp_path):
    cache, killed_out = tmp_path / "cache", tmp_path / "killed"
    process = harness(suite, killed_out, cache)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            done = json.loads((killed_out / "results.json").read_text())["configs"]
        except (OSError, ValueError):
            done = []
        if len(done) == 2 and len(list((cache / "samples").glob("*/*.png"))) > 9:
            break  # two configurations written, the slow third one under way
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed mid-configuration"
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted = json.loads((killed_out / "results.json").read_text())
    assert interrupted["state"] != "complete" and [c["name"] for c in interrupted["configs"]] == ["fp32", "q8_0"]

    finished(harness(suite, tmp_path / "rerun", cache))
    assert verdict_values(tmp_path / "rerun") == alone
    counters = json.loads((tmp_path / "rerun" / "results.json").read_text())["counters"]
    assert 9 < counters["sample_cache_hits"] < 12  # what the killed run had finished was kept
