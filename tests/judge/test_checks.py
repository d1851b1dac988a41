"""Threshold semantics: absolute bounds, interval basis, paired changes, noise that must not fail."""

from __future__ import annotations

import numpy as np

from harness.judge.checks import HEALTH_CHECK, evaluate, exit_code, run_checks
from harness.plan.thresholds import Threshold
from harness.results import ConfigResult, MetricSummary, RunResult, SampleResult
from harness.score.scoring import summary_of


class _Metric:
    def __init__(self, name="psnr", higher=True, scope="pair", unit="dB"):
        self.name, self.higher_is_better, self.scope, self.unit = name, higher, scope, unit


def config(name, values, metric=_Metric(), status="ok", **sample_fields):
    samples = tuple(
        SampleResult(
            key=f"p{i:03d}-s0", prompt_index=i, prompt=f"p{i}", seed=0, metrics={metric.name: v}, **sample_fields
        )
        for i, v in enumerate(values)
    )
    summaries = (summary_of(metric, list(values), name),) if values else ()
    return ConfigResult(name=name, kind="precision", status=status, samples=samples, summaries=summaries)


def run(*configs, reference_scores=None):
    return RunResult(
        suite={"name": "t"}, run_id="r", started="now", configs=configs, reference_scores=reference_scores or {}
    )


def test_absolute_min_on_mean_and_worst():
    c = config("a", [40.0, 41.0, 29.0, 42.0])
    r = run(c)
    assert evaluate(Threshold("psnr", min=35), c, r).status == "pass"
    outcome = evaluate(Threshold("psnr", stat="worst", min=30), c, r)
    assert outcome.status == "fail" and "worst psnr = 29 dB" in outcome.reason and "below 30" in outcome.reason
    assert evaluate(Threshold("psnr", max=37), c, r).status == "fail"  # mean 38


def test_a_low_tail_gate_sees_a_quarter_of_ruined_samples_the_mean_does_not():
    """p25: the ceil(n/4)-th worst sample. Three ruined images of twelve leave the mean far above its gate."""
    ruined = config("a", [60.0] * 9 + [26.0, 25.0, 27.0])
    one_bad = config("b", [60.0] * 11 + [26.0])
    r = run(ruined, one_bad)
    assert evaluate(Threshold("psnr", min=38), ruined, r).status == "pass"  # mean 51.5
    tail = evaluate(Threshold("psnr", stat="p25", min=32), ruined, r)
    assert tail.status == "fail" and tail.value == 27.0 and "p25 psnr = 27 dB" in tail.reason
    assert evaluate(Threshold("psnr", stat="p25", min=32), one_bad, r).status == "pass"  # 3rd worst: 60
    lower = config("c", [0.1] * 6 + [0.5, 0.6], metric=_Metric("lpips", higher=False, unit=""))
    assert evaluate(Threshold("lpips", stat="p25", max=0.3), lower, run(lower)).value == 0.5  # worst side: high


def test_interval_basis_fails_only_when_the_whole_interval_is_past_the_bound():
    noisy = config("a", [25.0, 35.0, 28.0, 33.0, 26.0, 34.0])  # mean 30.2
    r = run(noisy)
    assert evaluate(Threshold("psnr", min=31), noisy, r).status == "fail"
    assert evaluate(Threshold("psnr", min=31, basis="interval"), noisy, r).status == "pass"
    low = config("b", [20.0, 21.0, 20.5, 20.8, 21.2, 20.1])
    assert evaluate(Threshold("psnr", min=31, basis="interval"), low, run(low)).status == "fail"


def test_relative_drop_against_a_configuration_is_paired():
    base = config("fp16", [50.0, 40.0, 60.0, 45.0])
    worse = config("mixed", [47.0, 37.0, 57.0, 42.0])  # exactly 3 dB lower on every sample
    r = run(base, worse)
    outcome = evaluate(Threshold("psnr", max_drop=2, vs="fp16"), worse, r)
    assert outcome.status == "fail" and "mean drop 3 dB" in outcome.reason
    # paired: the spread between samples does not widen the interval of a constant shift
    assert "95% CI 3 to 3" in outcome.reason
    assert evaluate(Threshold("psnr", max_drop=3.5, vs="fp16", basis="interval"), worse, r).status == "pass"
    assert evaluate(Threshold("psnr", max_rise=0, vs="fp16"), worse, r).status == "pass"


def test_noise_alone_does_not_fail_an_interval_gate():
    rng = np.random.default_rng(0)
    base_values = rng.uniform(30, 60, size=24)
    noisy = base_values + rng.normal(0, 1.0, size=24)  # no real change, just noise
    base, other = config("main", list(base_values)), config("pr", list(noisy))
    r = run(base, other)
    tight = Threshold("psnr", max_drop=0.1, vs="main", basis="interval")
    assert evaluate(tight, other, r).status == "pass"
    shifted = config("pr", list(noisy - 2.0))
    assert evaluate(tight, shifted, run(base, shifted)).status == "fail"


def test_relative_to_the_reference_images_uses_their_scores():
    clip = _Metric("clip_score", scope="image", unit="")
    c = config("fp16", [30.0, 31.0, 29.0], metric=clip)
    r = run(c, reference_scores={"clip_score": {"p000-s0": 30.5, "p001-s0": 31.5, "p002-s0": 29.5}})
    outcome = evaluate(Threshold("clip_score", max_drop=0.4), c, r)
    assert outcome.status == "fail" and "clip_score vs reference: mean drop 0.5" in outcome.reason
    assert evaluate(Threshold("clip_score", max_drop=0.6), c, r).status == "pass"
    assert evaluate(Threshold("clip_score", stat="worst", max_drop=0.6), c, r).status == "pass"


def test_comparing_with_a_failed_or_missing_configuration_is_an_error():
    broken = config("fp16", [], status="error")
    c = config("mixed", [40.0, 41.0])
    outcome = evaluate(Threshold("psnr", max_drop=1, vs="fp16"), c, run(broken, c))
    assert outcome.status == "error" and "configuration 'fp16' is error" in outcome.reason
    assert evaluate(Threshold("ssim", min=0.9), c, run(c)).status == "error"


def test_set_metric_change_needs_a_configuration():
    def with_set(name, value, low, high):
        summary = MetricSummary("fid", "", False, "set", 10, value, ci_low=low, ci_high=high)
        return ConfigResult(name=name, kind="precision", status="ok", summaries=(summary,))

    a, b = with_set("a", 10.0, 8.0, 12.0), with_set("b", 30.0, 27.0, 33.0)
    r = run(a, b)
    assert evaluate(Threshold("fid", max_rise=5, vs="a"), b, r).status == "fail"
    assert evaluate(Threshold("fid", max_rise=25, vs="a", basis="interval"), b, r).status == "pass"
    assert evaluate(Threshold("fid", max_rise=5), b, r).status == "error"
    assert evaluate(Threshold("fid", max=20), a, r).status == "pass"


def test_outcomes_and_exit_code():
    good = config("good", [40.0, 41.0])
    nan = config("nan", [10.0, 12.0], nonfinite_fraction=0.5)
    blank = config("blank", [20.0, 20.0], blank=True)
    errored = ConfigResult(name="boom", kind="gguf", status="error", message="RuntimeError: no")
    skipped = ConfigResult(name="cuda", kind="streaming", status="skipped", message="needs CUDA")
    r = run(good, nan, blank, errored, skipped)
    thresholds = {"good": [Threshold("psnr", min=30)]}
    outcomes = run_checks(r, thresholds)
    status = {(o.config, o.check): o.status for o in outcomes}
    assert status[("good", HEALTH_CHECK)] == "pass" and status[("good", "psnr >= 30")] == "pass"
    assert status[("nan", HEALTH_CHECK)] == "fail" and status[("blank", HEALTH_CHECK)] == "fail"
    assert status[("boom", "runs")] == "error" and status[("cuda", "runs")] == "skipped"
    assert exit_code(outcomes) == 1
    assert exit_code(run_checks(run(good, skipped), thresholds)) == 0
    # a blank image is fine where the reference itself is blank
    exempt = run_checks(run(blank), {}, reference_blank=["p000-s0", "p001-s0"])
    assert exempt[0].status == "pass"


def test_expected_times_factor_with_per_device_expected_values():
    import pytest

    from harness.errors import InputError, Where
    from harness.plan.thresholds import parse_thresholds

    lpips = _Metric("lpips", higher=False, unit="")
    c = config("q4", [0.20, 0.21, 0.22, 0.21], metric=lpips)  # mean 0.21
    table = {"lpips": {"expected": {"cuda: NVIDIA H200": 0.2, "default": 0.15}, "factor": 1.1}}
    (threshold,) = parse_thresholds(table, Where("s.toml", "thresholds"), ("lpips",))["lpips"]
    assert threshold.describe() == "lpips <= expected x 1.1 (0.2 on cuda: NVIDIA H200, 0.15 on default)"
    on = {cls: replace_env(run(c), cls) for cls in ("cuda: NVIDIA H200", "cpu: x86")}
    assert evaluate(threshold, c, on["cuda: NVIDIA H200"]).status == "pass"  # 0.21 <= 0.22
    failed = evaluate(threshold, c, on["cpu: x86"])  # the default: 0.21 > 0.165
    assert failed.status == "fail" and "above 0.165" in failed.reason
    only_h200 = Threshold("lpips", expected=(("cuda: NVIDIA H200", 0.2),), factor=1.1)
    skipped = evaluate(only_h200, c, on["cpu: x86"])
    assert skipped.status == "skipped" and "no expected value for device class 'cpu: x86'" in skipped.reason
    # a factor below 1 is a lower bound (for metrics where higher is better)
    assert Threshold("lpips", expected=(("default", 0.3),), factor=0.5).on_device("x").min == 0.15
    assert Threshold.from_dict(threshold.to_dict()) == threshold
    for bad, key in (
        ({"expected": 0.2}, "factor"),
        ({"expected": 0.2, "factor": 1.0}, "factor"),
        ({"expected": "x", "factor": 1.1}, "expected"),
    ):
        with pytest.raises(InputError, match=f"thresholds.lpips.{key}"):
            parse_thresholds({"lpips": bad}, Where("s.toml", "thresholds"), ("lpips",))


def replace_env(r, device_class):
    from dataclasses import replace

    return replace(r, environment={"device_class": device_class})
