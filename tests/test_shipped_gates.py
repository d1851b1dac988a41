"""Every shipped suite's negative controls together fail every metric the suite gates."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "suites").glob("*.toml"))


def test_every_shipped_suite_is_checked():
    assert len(SHIPPED) >= 6


@pytest.mark.parametrize("suite", SHIPPED, ids=lambda path: path.stem)
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
