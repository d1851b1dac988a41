"""Default tolerances come from the metrics themselves (and time and memory's table); [regression] overrides them."""

from __future__ import annotations

import pytest

from harness.errors import InputError, Where
from harness.judge.performance import UNITS
from harness.plan.tolerance import (
    PERFORMANCE_TOLERANCES,
    Tolerance,
    default_tolerances,
    parse_tolerances,
    regression_tolerances,
)
from harness.registry import build_registry


def test_each_gated_metric_carries_its_default_and_the_rest_have_none():
    defaults = default_tolerances(build_registry().metrics)
    assert defaults["psnr"] == {"max_drop": 0.5, "saturate_at": 48.0}
    assert defaults["kid"] == {"max_rise": 100.0} and defaults["fid"] == {"max_rise_pct": 10.0}
    without = {name for name, cls in build_registry().metrics.items() if cls.default_tolerance is None}
    assert without == {"clip_iqa", "hpsv2", "image_reward"}  # shown "untested: no tolerance" in comparisons
    assert set(PERFORMANCE_TOLERANCES) == set(UNITS)  # every time and memory metric has one


def test_directions_match_the_metrics():
    """A metric where higher is better may only drop; one where lower is better only rise."""
    for name, cls in build_registry().metrics.items():
        if cls.default_tolerance:
            bounds = {k for k in cls.default_tolerance if k.startswith("max_")}
            expected = "drop" if cls.higher_is_better else "rise"
            assert all(expected in k for k in bounds), (name, bounds)


def test_regression_table_over_the_defaults():
    defaults = default_tolerances(build_registry().metrics)
    names = ["psnr", "clip_iqa", *UNITS]
    where = Where("s.toml", "regression")
    parsed = parse_tolerances({"psnr": {"max_drop": 1.0}, "peak_rss_mb": False}, where, names, defaults)
    assert parsed["psnr"] == Tolerance("psnr", max_drop=1.0, saturate_at=48.0)  # the noise floor is kept
    assert "peak_rss_mb" not in parsed and "clip_iqa" not in parsed
    assert parse_tolerances({"clip_iqa": {"max_drop": 0.02}}, where, names, defaults)["clip_iqa"].max_drop == 0.02
    with pytest.raises(InputError, match="regression.lpips"):
        parse_tolerances({"lpips": {"max_rise": 0.1}}, where, names, defaults)  # not one of this suite's metrics


def test_regression_tolerances_over_the_defaults(registry):
    tolerances = regression_tolerances(
        {"psnr": {"max_drop": 1.0}, "ssim": False, "peak_rss_mb": {"max_rise": 10, "max_rise_pct": 2}},
        Where("s.toml", "regression"),
        ["psnr", "ssim"],
        registry.metrics,
    )
    assert tolerances["psnr"].max_drop == 1.0 and "ssim" not in tolerances
    assert tolerances["median_image_s"].max_rise_pct == 5.0  # defaults for time and memory
    assert tolerances["peak_gpu_allocated_mb"].allowed(6191.0) == pytest.approx(32 + 61.91)
    assert tolerances["peak_rss_mb"].allowed(1000.0) == pytest.approx(30.0)
    for table, message in (
        ({"psnr": {"max_drop": 1, "max_rise": 1}}, "one direction"),
        ({"psnr": {"max_drop": -1}}, "must be >= 0"),
        ({"psrn": {"max_drop": 1}}, "Did you mean: psnr?"),
    ):
        with pytest.raises(InputError, match=message):
            regression_tolerances(table, Where("s.toml", "regression"), ["psnr"], registry.metrics)
