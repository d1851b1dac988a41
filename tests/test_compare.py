"""Baseline comparison: paired changes, tolerance semantics, noise that must not fail, new and removed configurations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.cli import main
from harness.compare import Tolerance, compare_runs, parse_tolerances
from harness.errors import InputError, Where
from harness.results import ConfigResult, MetricSummary, RunResult, SampleResult
from harness.scoring import summary_of


class _Metric:
    name, higher_is_better, scope, unit = "psnr", True, "pair", "dB"


def config(name, values, seconds=None, peak=None):
    samples = tuple(
        SampleResult(f"p{i:03d}-s0", i, f"p{i}", 0, metrics={"psnr": v}, seconds=(seconds[i] if seconds else None))
        for i, v in enumerate(values)
    )
    memory = {"peak_rss_mb": peak} if peak is not None else {}
    return ConfigResult(
        name, "precision", "ok", samples=samples, summaries=(summary_of(_Metric(), list(values), name),), memory=memory
    )


def run(*configs):
    return RunResult(suite={"name": "s", "prompts": ["x"], "seeds": [0]}, run_id="r", started="t", configs=configs)


TOLERANCES = {
    "psnr": Tolerance("psnr", max_drop=0.5),
    "median_image_s": Tolerance("median_image_s", max_rise_pct=10.0),
    "peak_rss_mb": Tolerance("peak_rss_mb", max_rise_pct=5.0, basis="estimate"),
}


def delta(comparison, metric):
    return next(d for d in comparison.deltas if d.metric == metric)


def test_noise_does_not_fail_but_a_real_drop_does():
    rng = np.random.default_rng(0)
    base = rng.uniform(30, 60, 32)
    noisy = base + rng.normal(0, 0.8, 32)  # no real change
    assert delta(compare_runs(run(config("a", noisy)), run(config("a", base)), TOLERANCES), "psnr").status == "pass"
    worse = delta(compare_runs(run(config("a", base - 2.0)), run(config("a", base)), TOLERANCES), "psnr")
    assert worse.status == "regressed" and "drop 2" in worse.reason and worse.n == 32
    better = delta(compare_runs(run(config("a", base + 1.0)), run(config("a", base)), TOLERANCES), "psnr")
    assert better.status == "improved"
    estimate = {"psnr": Tolerance("psnr", max_drop=0.5, basis="estimate")}
    spread = rng.normal(0, 2.0, 32)
    slight = base - 0.6 + spread - spread.mean()  # mean drop exactly 0.6, past 0.5, with an interval straddling it
    assert delta(compare_runs(run(config("a", slight)), run(config("a", base)), estimate), "psnr").status == "regressed"
    assert delta(compare_runs(run(config("a", slight)), run(config("a", base)), TOLERANCES), "psnr").status == "pass"


def test_time_and_memory_percentages():
    fast, slow = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95], [1.5, 1.6, 1.4, 1.5, 1.55, 1.45]
    comparison = compare_runs(
        run(config("a", [40.0] * 6, slow, peak=1100.0)), run(config("a", [40.0] * 6, fast, peak=1000.0)), TOLERANCES
    )
    time = delta(comparison, "median_image_s")
    assert time.status == "regressed" and "rise 50%" in time.reason
    memory = delta(comparison, "peak_rss_mb")
    assert memory.status == "regressed" and memory.change == 100.0
    same = compare_runs(
        run(config("a", [40.0] * 6, fast, peak=1010.0)), run(config("a", [40.0] * 6, fast, peak=1000.0)), TOLERANCES
    )
    assert delta(same, "median_image_s").status == "pass" and delta(same, "peak_rss_mb").status == "pass"


def test_new_and_removed_configurations_are_reported_not_failed():
    comparison = compare_runs(
        run(config("a", [40.0, 41.0]), config("new", [30.0, 31.0])),
        run(config("a", [40.0, 41.0]), config("old", [1.0, 2.0])),
        TOLERANCES,
    )
    assert comparison.new_configs == ("new",) and comparison.removed_configs == ("old",)
    assert not comparison.regressions and {d.config for d in comparison.deltas} == {"a"}
    assert all(outcome.status == "pass" for outcome in comparison.outcomes())


def test_unreliable_set_metrics_are_not_judged():
    def with_fid(name, value, reliable):
        return ConfigResult(
            name, "precision", "ok", summaries=(MetricSummary("fid", "", False, "set", 8, value, reliable=reliable),)
        )

    comparison = compare_runs(
        run(with_fid("a", 50.0, False)), run(with_fid("a", 10.0, False)), {"fid": Tolerance("fid", max_rise=1)}
    )
    assert delta(comparison, "fid").status == "untested" and not comparison.outcomes()


def test_tolerance_parsing():
    tolerances = parse_tolerances(
        {"psnr": {"max_drop": 1.0}, "ssim": False}, Where("s.toml", "regression"), ["psnr", "ssim"]
    )
    assert tolerances["psnr"].max_drop == 1.0 and "ssim" not in tolerances
    assert tolerances["median_image_s"].max_rise_pct == 10.0  # defaults for time and memory
    for table, message in (
        ({"psnr": {"max_drop": 1, "max_rise": 1}}, "exactly one"),
        ({"psnr": {"max_drop": -1}}, "must be >= 0"),
        ({"psrn": {"max_drop": 1}}, "Did you mean: psnr?"),
    ):
        with pytest.raises(InputError, match=message):
            parse_tolerances(table, Where("s.toml", "regression"), ["psnr"])


SUITE = """
name = "c"
pipeline = "builtin:tiny-sd"
reference = "fp32"
prompts = ["a red circle", "a cat", "a lighthouse", "two squares"]
seeds = [0, 1]
steps = 2
width = 32
height = 32
[metrics]
psnr = {}
[regression]
psnr = { max_drop = 0.5 }
[configs.fp32]
[configs.bf16]
dtype = "bfloat16"
"""


def test_run_with_baseline_and_compare_command(write_suite, tmp_path, capsys):
    path = write_suite(SUITE, name="c")
    assert main(["bless", str(path)]) == 0
    assert main(["run", str(path), "--out", str(tmp_path / "main")]) == 0
    # a change that makes bf16 worse: the same suite with a damaging transform on bf16
    damaged = SUITE.replace('dtype = "bfloat16"', 'dtype = "bfloat16"\ntransform = "damage:halve"')
    path.write_text(damaged)
    (path.parent / "damage.py").write_text(
        "import torch\n\n\ndef halve(pipe):\n    with torch.no_grad():\n        pipe.unet.conv_out.weight.mul_(0.5)\n    return pipe\n"
    )
    assert main(["run", str(path), "--out", str(tmp_path / "pr"), "--baseline", str(tmp_path / "main")]) == 1
    results = json.loads((tmp_path / "pr" / "results.json").read_text())
    regressed = [d for d in results["comparison"]["deltas"] if d["status"] == "regressed"]
    assert [(d["config"], d["metric"]) for d in regressed] == [("bf16", "psnr")]
    assert any(
        c["check"] == "psnr drop <= 0.5 vs baseline (interval)" and c["status"] == "fail" for c in results["checks"]
    )
    assert "Compared with baseline" in (tmp_path / "pr" / "summary.md").read_text()
    assert "Compared with the baseline" in (tmp_path / "pr" / "report.html").read_text()
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "main"), str(tmp_path / "pr"), "--out", str(tmp_path / "cmp")]) == 1
    assert "REGRESSION bf16" in capsys.readouterr().out
    assert "❌ `bf16`" in (tmp_path / "cmp" / "comparison.md").read_text()
    assert "comparison-table" in (tmp_path / "cmp" / "comparison.html").read_text()
    assert main(["compare", str(tmp_path / "main"), str(tmp_path / "main"), "--out", str(tmp_path / "same")]) == 0
    assert main(["run", str(path), "--out", str(tmp_path / "x"), "--baseline", str(tmp_path / "nowhere")]) == 2
