"""Every shipped suite, run whole, exits 0 on both CPU half-precision paths, with every gate tripped by a control.

A suite passes when every configuration it expects to pass passes, and every negative
control (``expect = "fail"``) fails a gate of its own; together the controls must trip
every metric the suite gates.

Two paths, because a CPU difference once hid a failing shipped suite (#27): the tests
passed on a CPU with native half-precision kernels while `suites/streaming.toml` gave NaN
images on a 2-core AMD EPYC without them.

- ``default``: this CPU as it is (``HARNESS_CPU_HALF=auto``), in this process.
- ``no-fast-half``: the recipe that reproduced the AMD case on an Intel CPU, in a fresh
  process (both variables are read when torch starts): ``ATEN_CPU_CAPABILITY=avx2``,
  ``ONEDNN_MAX_CPU_ISA=AVX2`` (no AVX-512, no AMX) and ``HARNESS_CPU_HALF=float32-accumulate``
  (the emulation forced on). On a CPU that already lacks fast half precision, ``default``
  is that path and this leg is skipped as a repeat; so is a suite with no half-precision
  configuration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from tests.helpers import REPO

ROOT = REPO
SHIPPED = sorted((ROOT / "suites").glob("*.toml"))
NO_FAST_HALF = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "HARNESS_CPU_HALF": "float32-accumulate"}


def test_every_shipped_suite_is_checked():
    assert len(SHIPPED) >= 6


def cpu_has_fast_half() -> bool:
    import torch

    from harness.kinds.cpu_half import slow_half

    return not slow_half(torch.float16)


def check_suite_results(suite: Path, results: dict[str, Any]) -> None:
    """Expected passes pass, each control fails a gate of its own, the controls trip every gated metric."""
    data = tomllib.loads(suite.read_text())
    controls = {name for name, config in data["configs"].items() if config.get("expect") == "fail"}
    assert controls, f"{suite.name} has no negative control (expect = 'fail')"
    by_config: dict[str, list[dict]] = {}
    for check in results["checks"]:
        by_config.setdefault(check["config"], []).append(check)
    for name in controls:
        assert any(c["status"] == "xfail" for c in by_config[name]), f"{name} failed no gate: {by_config[name]}"
    for name in set(data["configs"]) - controls:
        failed = [c for c in by_config.get(name, []) if c["status"] not in ("pass", "skipped")]
        assert not failed, f"{name} should pass: {failed}"
    gated = set(data.get("thresholds", {})) | {
        metric for config in data["configs"].values() for metric in config.get("thresholds", {})
    }
    tripped = {c["metric"] for c in results["checks"] if c["config"] in controls and c["status"] == "xfail"}
    assert gated <= tripped, f"gates no control trips: {sorted(gated - tripped)}"
    uncovered = [w for w in results["warnings"] if "no negative control trips" in w]
    assert not uncovered, uncovered


@pytest.mark.parametrize("suite", SHIPPED, ids=lambda path: path.stem)
def test_shipped_suite_passes_on_this_cpu(suite, tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_CPU_HALF", raising=False)
    code = main(["run", str(suite), "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache")])
    check_suite_results(suite, json.loads((tmp_path / "results.json").read_text()))
    assert code == 0


@pytest.mark.parametrize("suite", SHIPPED, ids=lambda path: path.stem)
def test_shipped_suite_passes_without_fast_half_precision(suite, tmp_path):
    if not cpu_has_fast_half():
        pytest.skip("this CPU has no fast half precision: the default run already takes the emulated path")
    if not any(word in suite.read_text() for word in ("float16", "bfloat16")):
        pytest.skip("no configuration computes in half precision: both paths run the same kernels' dtype")
    env = {**os.environ, **NO_FAST_HALF, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "harness", "run", str(suite), "--out", str(tmp_path)]
    done = subprocess.run(
        [*command, "--cache-dir", str(tmp_path / "cache")], env=env, cwd=ROOT, capture_output=True, text=True
    )
    results = json.loads((tmp_path / "results.json").read_text())
    emulated = [c["name"] for c in results["configs"] if "cpu_half" in c.get("notes", {})]
    check_suite_results(suite, results)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = tomllib.loads(suite.read_text())
    ran = {c["name"] for c in results["configs"] if c["status"] == "ok"}  # a skipped one (CUDA only) computes nothing
    half = [n for n, c in data["configs"].items() if c.get("dtype") in ("float16", "bfloat16") and n in ran]
    assert set(half) <= set(emulated), (
        f"half-precision configurations not emulated: {sorted(set(half) - set(emulated))}"
    )
