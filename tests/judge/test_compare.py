"""Baseline comparison: paired changes, tolerance semantics, noise that must not fail, new and removed configurations."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from harness.cli import main
from harness.judge.compare import compare_runs
from harness.plan.tolerance import Tolerance
from harness.results import ConfigResult, MetricSummary, RunResult, SampleResult
from harness.score.scoring import summary_of
from harness.timing import BatchTiming
from tests.helpers import REPO, suite_head


class _Metric:
    name, higher_is_better, scope, unit = "psnr", True, "pair", "dB"


def config(name, values, seconds=None, peak=None):
    """A configuration with per-sample PSNRs; ``seconds`` are per-image times of timed batches (after a warm-up)."""
    samples = tuple(SampleResult(f"p{i:03d}-s0", i, f"p{i}", 0, metrics={"psnr": v}) for i, v in enumerate(values))
    memory = {"peak_rss_mb": peak} if peak is not None else {}
    batches = ()
    if seconds:
        warmup = BatchTiming(images=4, wall_s=4 * seconds[0] * 3, cpu_s=1.0, warmup=True)
        batches = (warmup, *(BatchTiming(images=4, wall_s=4 * s, cpu_s=4 * s) for s in seconds))
    return ConfigResult(
        name,
        "precision",
        "ok",
        samples=samples,
        summaries=(summary_of(_Metric(), list(values), name),),
        memory=memory,
        batches=batches,
    )


def run(*configs):
    return RunResult(suite={"name": "s", "prompts": ["x"], "seeds": [0]}, run_id="r", started="t", configs=configs)


TOLERANCES = {
    "psnr": Tolerance("psnr", max_drop=0.5),
    "median_image_s": Tolerance("median_image_s", max_rise_pct=10.0),
    "peak_rss_mb": Tolerance("peak_rss_mb", max_rise=32.0, max_rise_pct=5.0, basis="estimate"),
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


def test_time_per_timed_batch_and_memory_with_absolute_and_relative_parts():
    fast, slow = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95], [1.5, 1.6, 1.4, 1.5, 1.55, 1.45]
    comparison = compare_runs(
        run(config("a", [40.0] * 6, slow, peak=1100.0)), run(config("a", [40.0] * 6, fast, peak=1000.0)), TOLERANCES
    )
    time = delta(comparison, "median_image_s")
    assert time.status == "regressed" and "rise 50%" in time.reason and time.n == 6  # warm-up left out
    assert "detect a rise of about" in time.reason
    memory = delta(comparison, "peak_rss_mb")
    # allowed: 32 MB + 5% of 1000 = 82 MB; 100 MB is past it
    assert memory.status == "regressed" and memory.change == 100.0 and "82 MB (32 + 5% of 1000)" in memory.reason
    same = compare_runs(
        run(config("a", [40.0] * 6, fast, peak=1070.0)), run(config("a", [40.0] * 6, fast, peak=1000.0)), TOLERANCES
    )
    assert delta(same, "median_image_s").status == "pass" and delta(same, "peak_rss_mb").status == "pass"


def test_too_few_timed_batches_is_said_not_judged():
    comparison = compare_runs(
        run(config("a", [40.0] * 2, [1.3, 1.3])), run(config("a", [40.0] * 2, [1.0, 1.0])), TOLERANCES
    )
    time = delta(comparison, "median_image_s")
    assert time.status == "inconclusive" and "not enough measurements: n=2 timed batches" in time.reason
    (outcome,) = [o for o in comparison.outcomes() if o.metric == "median_image_s"]
    assert outcome.status == "skipped"


def test_cached_and_other_machine_timings_are_not_compared():
    measured = config("a", [40.0] * 4, [1.0, 1.0, 1.0], peak=100.0)
    cached = replace(config("a", [40.0] * 4, peak=None), timing={"measured": 0})
    comparison = compare_runs(run(cached), run(measured), TOLERANCES)
    for metric in ("median_image_s", "peak_rss_mb"):
        found = delta(comparison, metric)
        assert found.status == "untested" and "not measured (cached) in this run" in found.reason
    elsewhere = replace(run(measured), environment={"device_class": "cpu: Other CPU, 2 threads"})
    here = replace(
        run(config("a", [40.0] * 4, [2.0, 2.0, 2.0])), environment={"device_class": "cpu: This CPU, 2 threads"}
    )
    found = delta(compare_runs(here, elsewhere, TOLERANCES), "median_image_s")
    assert found.status == "untested" and "baseline ran on cpu: Other CPU" in found.reason


def test_psnr_differences_above_the_saturation_level_do_not_count():
    tolerance = {"psnr": Tolerance("psnr", max_drop=0.5, saturate_at=48.0)}
    base = np.full(16, 60.0)
    rounding = delta(compare_runs(run(config("a", base - 1.0)), run(config("a", base)), tolerance), "psnr")
    assert rounding.status == "pass" and rounding.change == 0.0
    identical = delta(compare_runs(run(config("a", [np.inf] * 4)), run(config("a", [np.inf] * 4)), tolerance), "psnr")
    assert identical.status == "pass" and identical.n == 4  # infinite PSNR pairs as the saturation level
    real = delta(compare_runs(run(config("a", base - 20.0)), run(config("a", base)), tolerance), "psnr")
    assert real.status == "regressed" and real.change == -8.0  # 48 -> 40 counts


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
    assert delta(comparison, "fid").status == "untested"
    assert [o.status for o in comparison.outcomes()] == ["skipped"]  # visible, never a silent pass or a failure


def test_a_baseline_in_another_unit_is_not_compared():
    def with_kid(value, unit):
        return ConfigResult("a", "precision", "ok", summaries=(MetricSummary("kid", unit, False, "set", 24, value),))

    tolerance = {"kid": Tolerance("kid", max_rise=100)}
    # KID used to be raw; now x1e-3: 0.004 raw and 4.0 x1e-3 are the same distance, not a rise of 3.996
    before = compare_runs(run(with_kid(400.0, "x1e-3")), run(with_kid(0.004, "")), tolerance)
    assert delta(before, "kid").status == "untested"
    assert "re-run the baseline" in delta(before, "kid").reason
    same_unit = compare_runs(run(with_kid(400.0, "x1e-3")), run(with_kid(4.0, "x1e-3")), tolerance)
    assert delta(same_unit, "kid").status == "regressed"


SUITE = (
    suite_head("c", prompts=["a red circle", "a cat", "a lighthouse", "two squares"], seeds=[0, 1])
    + """[metrics]
psnr = {}
[regression]
psnr = { max_drop = 0.5 }
[configs.fp32]
[configs.bf16]
dtype = "bfloat16"
"""
)


def test_run_with_baseline_and_compare_command(write_suite, tmp_path, capsys, monkeypatch):
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
        c["check"] == "psnr drop <= 0.5 vs baseline (values beyond 48 count as 48) (interval)" and c["status"] == "fail"
        for c in results["checks"]
    )
    assert "Compared with baseline" in (tmp_path / "pr" / "summary.md").read_text()
    assert "Compared with the baseline" in (tmp_path / "pr" / "report.html").read_text()
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "main"), str(tmp_path / "pr"), "--out", str(tmp_path / "cmp")]) == 1
    assert "REGRESSION bf16" in capsys.readouterr().out
    assert "❌ `bf16`" in (tmp_path / "cmp" / "comparison.md").read_text()
    assert "comparison-table" in (tmp_path / "cmp" / "comparison.html").read_text()
    assert main(["compare", str(tmp_path / "main"), str(tmp_path / "main"), "--out", str(tmp_path / "same")]) == 0
    # Without --out, compare writes under reports/comparisons/ and never into the runs it reads.
    before = {p: p.stat().st_mtime_ns for run in ("main", "pr") for p in (tmp_path / run).rglob("*")}
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(tmp_path / "main"), str(tmp_path / "pr")]) == 1
    after = {p: p.stat().st_mtime_ns for run in ("main", "pr") for p in (tmp_path / run).rglob("*")}
    assert before == after
    assert list((tmp_path / "reports" / "comparisons").glob("*-vs-*/comparison.html"))
    assert main(["run", str(path), "--out", str(tmp_path / "x"), "--baseline", str(tmp_path / "nowhere")]) == 2


NOISE_FLOOR_SUITE = """
name = "floor"
pipeline = "{pipeline}"
reference = "fp32"
prompts_file = "{prompts}"
seeds = [0, 1]
steps = 4
width = 64
height = 64
[metrics]
psnr = {{}}
ssim = {{}}
[configs.fp32]
[configs.fp16]
dtype = "float16"
{transform}
"""


@pytest.mark.parametrize("pipeline", ["builtin:tiny-sd", "builtin:tiny-sana"])
def test_default_tolerances_ignore_rounding_noise_and_catch_a_2bit_loss(pipeline, write_suite, tmp_path):

    prompts = REPO / "suites" / "prompts" / "smoke.txt"

    def run(name, transform=""):
        body = NOISE_FLOOR_SUITE.format(pipeline=pipeline, prompts=prompts, transform=transform)
        path = write_suite(body, name="floor")
        extra = ["--baseline", str(tmp_path / "base")] if name != "base" else []
        code = main(["run", str(path), "--config", "fp16", "--out", str(tmp_path / name), *extra])
        results = json.loads((tmp_path / name / "results.json").read_text())
        return code, {d["metric"]: d for d in results.get("comparison", {}).get("deltas", [])}

    assert (
        main(
            [
                "bless",
                str(
                    write_suite(
                        NOISE_FLOOR_SUITE.format(pipeline=pipeline, prompts=prompts, transform=""), name="floor"
                    )
                ),
            ]
        )
        == 0
    )
    assert run("base")[0] == 0
    code, deltas = run("rounding", 'transform = "harness.controls:denoiser_rounding_noise"')
    assert deltas["psnr"]["baseline"] - deltas["psnr"]["current"] > 0.5  # the old rule (drop <= 0.5 dB) fired here
    assert deltas["psnr"]["status"] in ("pass", "improved") and deltas["ssim"]["status"] in ("pass", "improved")
    code, deltas = run("2bit", 'transform = "harness.controls:denoiser_2bit"')
    assert code == 1 and deltas["psnr"]["status"] == "regressed" and deltas["ssim"]["status"] == "regressed"


def test_a_metric_without_a_tolerance_is_shown_untested_never_skipped():
    """clip_iqa, hpsv2 and image_reward have no default tolerance: their change is a row that says so."""
    values = np.linspace(30, 40, 8)
    comparison = compare_runs(run(config("a", values - 3.0)), run(config("a", values)), {})
    row = delta(comparison, "psnr")
    assert row.status == "untested" and "no tolerance for psnr" in row.reason and "max_drop" in row.reason
    assert row.change == pytest.approx(-3.0)
    assert delta(compare_runs(run(config("a", values - 3.0)), run(config("a", values)), TOLERANCES), "psnr").status == (
        "regressed"
    )
