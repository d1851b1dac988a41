"""results.json round-trips; NaN becomes null and comes back as NaN."""

from __future__ import annotations

import json
import math

import pytest

from harness.errors import InputError
from harness.results import (
    CheckOutcome,
    ConfigResult,
    MetricSummary,
    RunResult,
    SampleResult,
    read_results,
    write_results,
)


def make_result() -> RunResult:
    sample = SampleResult(
        "p000-s0", 0, "a cat", 0, image="images/a/p000-s0.png", seconds=0.1, metrics={"psnr": float("nan"), "ssim": 0.9}
    )
    summary = MetricSummary("psnr", "dB", True, "pair", 1, 40.0, 40.0, 40.0, None, None)
    config = ConfigResult(
        "a", "precision", "ok", samples=(sample,), summaries=(summary,), timing={"load_s": 1.0}, notes={"x": [1, 2]}
    )
    check = CheckOutcome("a", "psnr >= 30", "pass", "ok", metric="psnr", value=40.0, bound=30.0, n=1)
    return RunResult(
        suite={"name": "s"}, run_id="r1", started="t0", configs=(config,), checks=(check,), exit_code=0, warnings=("w",)
    )


def test_round_trip(tmp_path):
    result = make_result()
    write_results(result, tmp_path / "results.json")
    text = (tmp_path / "results.json").read_text()
    assert "NaN" not in text and json.loads(text)["configs"][0]["samples"][0]["metrics"]["psnr"] is None
    back = read_results(tmp_path)
    assert math.isnan(back.configs[0].samples[0].metrics["psnr"])
    assert back.configs[0].samples[0].metrics["ssim"] == 0.9
    assert back.checks == result.checks and back.warnings == ("w",)
    assert back.configs[0].summaries == result.configs[0].summaries
    assert not (tmp_path / "results.json.tmp").exists()


def test_with_config_replaces_in_place():
    result = make_result()
    replaced = result.with_config(ConfigResult("a", "precision", "error", message="boom"))
    assert [c.status for c in replaced.configs] == ["error"]
    added = result.with_config(ConfigResult("b", "precision", "ok"))
    assert [c.name for c in added.configs] == ["a", "b"]


def test_unreadable_results_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no results.json"):
        read_results(tmp_path)
    (tmp_path / "results.json").write_text("{broken")
    with pytest.raises(InputError, match="not a readable results.json"):
        read_results(tmp_path)


def test_paired_values_by_sample_key_or_by_prompt_and_seed():
    """One pairing for checks (sample keys within a run) and comparisons ((prompt, seed) across runs): only samples
    both sides have, finite on both after the value transform (saturation turns an infinite PSNR finite)."""
    from harness.results import paired_values, sample_values

    def config(values):
        samples = tuple(
            SampleResult(f"p{i:03d}-s0", i, f"prompt {i}", 0, metrics={} if v is None else {"psnr": v})
            for i, v in enumerate(values)
        )
        return ConfigResult("c", "precision", "ok", samples=samples)

    this = config([30.0, float("inf"), 40.0, None, float("nan")])
    other = config([31.0, 50.0, None, 20.0, 25.0])
    assert sample_values(other, "psnr") == {"p000-s0": 31.0, "p001-s0": 50.0, "p003-s0": 20.0, "p004-s0": 25.0}
    mine, theirs, keys = paired_values(this, sample_values(other, "psnr"), "psnr")
    assert keys == ["p000-s0"] and mine.tolist() == [30.0] and theirs.tolist() == [31.0]
    by_prompt = {(s.prompt, s.seed): s.metrics.get("psnr") for s in other.samples}
    mine, theirs, keys = paired_values(
        this, by_prompt, "psnr", key=lambda s: (s.prompt, s.seed), value=lambda v: v if v is None else min(v, 48.0)
    )
    assert (
        keys == [("prompt 0", 0), ("prompt 1", 0)] and mine.tolist() == [30.0, 48.0] and theirs.tolist() == [31.0, 48.0]
    )
