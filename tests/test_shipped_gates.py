"""Every shipped suite's negative controls together fail every metric the suite gates.

The trained-world fault suites (FLUX, SD3, SDXL and SD1.x layouts) run whole: every
quantized type they ship must pass, and every fault must fail a gate of its own.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "suites").glob("*.toml"))
WORLD_FAULTS = [
    path for path in SHIPPED if path.stem in ("flux_gguf", "sd3_precision", "sdxl_vae_fp16", "shapes_faults")
]


def test_every_shipped_suite_is_checked():
    assert len(SHIPPED) >= 6


@pytest.mark.parametrize("suite", [s for s in SHIPPED if s not in WORLD_FAULTS], ids=lambda path: path.stem)
def test_negative_controls_trip_every_gate(suite, tmp_path):
    data = tomllib.loads(suite.read_text())
    controls = [name for name, config in data["configs"].items() if config.get("expect") == "fail"]
    assert controls, f"{suite.name} has no negative control (expect = 'fail')"
    selected = [arg for name in (data["reference"], *controls) for arg in ("--config", name)]
    code = main(["run", str(suite), "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), *selected])
    results = json.loads((tmp_path / "results.json").read_text())
    uncovered = [w for w in results["warnings"] if "no negative control trips" in w]
    assert not uncovered, uncovered
    gated = {metric for metric in data.get("thresholds", {})} | {
        metric for config in data["configs"].values() for metric in config.get("thresholds", {})
    }
    tripped = {c["metric"] for c in results["checks"] if c["config"] in controls and c["status"] == "xfail"}
    assert gated <= tripped, f"gates no control trips: {sorted(gated - tripped)}"
    assert code == 0  # every control was caught, and the reference passed


@pytest.mark.parametrize("suite", WORLD_FAULTS, ids=lambda path: path.stem)
def test_world_suite_passes_its_types_and_each_fault_fails_a_gate(suite, tmp_path):
    data = tomllib.loads(suite.read_text())
    code = main(["run", str(suite), "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache")])
    results = json.loads((tmp_path / "results.json").read_text())
    controls = {name for name, config in data["configs"].items() if config.get("expect") == "fail"}
    by_config: dict[str, list[dict]] = {}
    for check in results["checks"]:
        by_config.setdefault(check["config"], []).append(check)
    for name in controls:
        assert any(c["status"] == "xfail" for c in by_config[name]), f"{name} failed no gate: {by_config[name]}"
    for name in set(data["configs"]) - controls:
        failed = [c for c in by_config.get(name, []) if c["status"] not in ("pass", "skip")]
        assert not failed, f"{name} should pass: {failed}"
    gated = set(data.get("thresholds", {}))
    tripped = {c["metric"] for c in results["checks"] if c["config"] in controls and c["status"] == "xfail"}
    assert gated <= tripped, f"gates no control trips: {sorted(gated - tripped)}"
    assert code == 0
