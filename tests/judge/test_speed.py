"""The speedup against a configuration of the same run, its gate, and "did it apply?"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.judge.speed import Speedup, effect_base, effects, speed_check, speedup
from harness.kinds.base import ConfigSpec
from harness.plan.suite import load_suite
from harness.registry import build_registry
from harness.results import FAIL, PASS, SKIPPED, ConfigResult, SampleResult
from harness.samples import save_png
from harness.timing import MIN_TIMED_CALLS, BatchTiming
from tests.helpers import suite_head


def result(name: str, seconds: list[float], images: int = 2, probe: float | None = None, **kw) -> ConfigResult:
    """A configuration whose first call is warm-up, then one call per entry of ``seconds`` (per call, not image)."""
    calls = [BatchTiming(images, 10.0, 1.0, warmup=True, probe_s=probe)]
    calls += [BatchTiming(images, s, 1.0, probe_s=probe) for s in seconds]
    return ConfigResult(name, "precision", "ok", batches=tuple(calls), **kw)


def test_the_speedup_is_the_ratio_of_medians_per_image_without_the_warmup():
    base, fast = result("base", [1.0, 1.2, 1.1, 0.9, 1.0]), result("fast", [0.5, 0.55, 0.6, 0.5, 0.45])
    found = speedup(fast, base, on_cpu=False)
    assert found.value == pytest.approx(np.median([1.0, 1.2, 1.1, 0.9, 1.0]) / np.median([0.5, 0.55, 0.6, 0.5, 0.45]))
    assert found.low is not None and found.high is not None and found.low <= found.value <= found.high
    assert found.n == found.n_vs == 5 and found.vs == "base"
    assert found.warmup_image_s == pytest.approx(5.0) and found.image_s == pytest.approx(0.25)


def test_on_a_cpu_each_call_is_taken_relative_to_its_speed_probe():
    # the machine ran at half speed while the second configuration was timed: its probe took twice as long too
    base, same_work = result("base", [1.0] * 5, probe=0.02), result("same", [2.0] * 5, probe=0.04)
    assert speedup(same_work, base, on_cpu=True).value == pytest.approx(1.0)
    assert speedup(same_work, base, on_cpu=False).value == pytest.approx(0.5)


def test_too_few_calls_give_an_estimate_but_no_interval():
    found = speedup(result("fast", [0.5] * (MIN_TIMED_CALLS - 1)), result("base", [1.0] * 5), on_cpu=False)
    assert found.value == pytest.approx(2.0) and found.low is None and "too few for an interval" in found.note


def test_cached_configurations_have_no_speedup():
    cached = ConfigResult("fast", "precision", "ok", timing={"measured": 0})
    found = speedup(cached, result("base", [1.0] * 5), on_cpu=False)
    assert found.value is None and "no timed calls of 'fast'" in found.note


def spec(**kw) -> ConfigSpec:
    return ConfigSpec("fast", "precision", None, **kw)


def test_the_speed_gate_fails_only_when_the_whole_interval_is_below():
    below = Speedup("base", value=1.05, low=1.0, high=1.09, n=5, n_vs=5)
    straddles = Speedup("base", value=1.05, low=1.0, high=1.3, n=5, n_vs=5)
    assert speed_check(spec(min_speedup=1.1), below, "base").status == FAIL
    check = speed_check(spec(min_speedup=1.1), straddles, "base")
    assert check.status == PASS and "not failed on noise" in check.reason
    assert speed_check(spec(min_speedup=1.1), Speedup("base", note="too few"), "base").status == SKIPPED
    assert speed_check(spec(min_speedup=1.1), None, "base").status == SKIPPED
    assert check.metric == "speedup" and check.check == "speedup >= 1.1 vs base"


def images(tmp_path: Path, name: str, values: list[int]) -> ConfigResult:
    samples = []
    for index, value in enumerate(values):
        path = tmp_path / name / f"p{index:03d}-s0.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_png(np.full((4, 4, 3), value, dtype=np.uint8), path)
        samples.append(SampleResult(f"p{index:03d}-s0", index, "x", 0, image=str(path.relative_to(tmp_path))))
    return ConfigResult(name, "precision", "ok", samples=tuple(samples))


def test_bit_identical_images_are_a_no_op_and_fail_where_the_configuration_asks(tmp_path):
    base = images(tmp_path, "base", [10, 20])
    same, changed = images(tmp_path, "same", [10, 20]), images(tmp_path, "changed", [10, 21])
    found = effects(same, base, spec(effects=("pixels",)), None, tmp_path)
    assert found["pixels"] is False and found["noop"] == ["images bit-identical to those of 'base'"]
    assert effects(changed, base, spec(), None, tmp_path)["pixels"] is True
    no_speedup = Speedup("base", value=1.01, low=0.95, high=1.07, n=5, n_vs=5)
    assert effects(changed, base, spec(min_speedup=1.2), no_speedup, tmp_path)["noop"] == [
        "no speedup over 'base' beyond noise"
    ]
    assert effects(changed, base, spec(), no_speedup, tmp_path)["noop"] == []  # it claims no speed: not flagged


def test_the_effect_base_is_the_same_configuration_without_its_speedups(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(
        suite_head("speed")
        + '[configs.fp32]\n[configs.bf16]\ndtype = "bfloat16"\n'
        + '[configs.bf16_cached]\ndtype = "bfloat16"\ncache = { hook = "first_block" }\n'
        + '[configs.fp16_cached]\ndtype = "float16"\ncache = { hook = "first_block" }\nmin_speedup = 1.1\n'
        + 'speedup_vs = "bf16"\n'
    )
    suite = load_suite(path, build_registry())
    assert effect_base(suite.config("bf16_cached"), suite) == "bf16"
    assert effect_base(suite.config("fp16_cached"), suite) == "bf16"  # no plain fp16: its speedup_vs
    assert effect_base(suite.config("bf16"), suite) == "fp32"
    assert suite.timed() == {"fp16_cached", "bf16"}
    assert suite.comparisons_needed(["fp16_cached"]) == {"bf16": "the speed gate of 'fp16_cached' compares with it"}


def test_a_speed_gated_configuration_is_timed_in_every_run_never_served_from_the_cache(tmp_path):
    from harness.cli import main
    from tests.helpers import configs_by_name, read_results

    path = tmp_path / "suite.toml"
    path.write_text(
        suite_head("timed", prompts=("a red circle", "a blue square"), seeds=(0, 1))
        + "batch_size = 1\nreference_images = 'live'\n[metrics]\npsnr = {}\n"
        + '[configs.fp32]\n[configs.bf16]\ndtype = "bfloat16"\nmin_speedup = 0.01\n[configs.fp16]\ndtype = "float16"\n'
    )
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["run", str(path), "--out", str(tmp_path / "first"), *cache]) == 0
    assert main(["run", str(path), "--out", str(tmp_path / "second"), *cache]) == 0
    second = configs_by_name(read_results(tmp_path / "second"))
    assert second["fp16"]["timing"]["cache_hits"] == 4  # not gated: served from the cache
    for name in ("bf16", "fp32"):  # gated, and the base of the gate
        assert second[name]["timing"]["cache_hits"] == 0 and second[name]["timing"]["timed_batches"] >= MIN_TIMED_CALLS
    gate = next(c for c in read_results(tmp_path / "second")["checks"] if c["metric"] == "speedup")
    assert gate["status"] == PASS and gate["check"] == "speedup >= 0.01 vs fp32"
    assert second["bf16"]["speed"]["speedup"]["low"] is not None


def test_the_pixel_check_stops_at_the_first_differing_sample(tmp_path):
    from harness.results import image_equivalence

    base, changed = images(tmp_path, "base", [10, 20, 30]), images(tmp_path, "changed", [11, 20, 30])
    full = image_equivalence(changed, base, tmp_path)
    quick = image_equivalence(changed, base, tmp_path, first_difference=True)
    assert full["samples_compared"] == 3 and quick["samples_compared"] == 1
    assert full["identical"] is quick["identical"] is False
    same = images(tmp_path, "same", [10, 20, 30])
    assert image_equivalence(same, base, tmp_path, first_difference=True)["samples_compared"] == 3
