"""Default tolerances come from the metrics themselves (and time and memory's table); [regression] overrides them."""

from __future__ import annotations

import pytest

from harness.errors import InputError, Where
from harness.judge.performance import UNITS
from harness.metrics import default_metrics
from harness.plan.tolerance import PERFORMANCE_TOLERANCES, Tolerance, default_tolerances, parse_tolerances


def test_each_gated_metric_carries_its_default_and_the_rest_have_none():
    defaults = default_tolerances(default_metrics())
    assert defaults["psnr"] == {"max_drop": 0.5, "saturate_at": 48.0}
    assert defaults["kid"] == {"max_rise": 100.0} and defaults["fid"] == {"max_rise_pct": 10.0}
    without = {name for name, cls in default_metrics().items() if cls.default_tolerance is None}
    assert without == {"clip_iqa", "hpsv2", "image_reward"}  # shown "untested: no tolerance" in comparisons
    assert set(PERFORMANCE_TOLERANCES) == set(UNITS)  # every time and memory metric has one


def test_directions_match_the_metrics():
    """A metric where higher is better may only drop; one where lower is better only rise."""
    for name, cls in default_metrics().items():
        if cls.default_tolerance:
            bounds = {k for k in cls.default_tolerance if k.startswith("max_")}
            expected = "drop" if cls.higher_is_better else "rise"
            assert all(expected in k for k in bounds), (name, bounds)


def test_regression_table_over_the_defaults():
    defaults = default_tolerances(default_metrics())
    names = ["psnr", "clip_iqa", *UNITS]
    where = Where("s.toml", "regression")
    parsed = parse_tolerances({"psnr": {"max_drop": 1.0}, "peak_rss_mb": False}, where, names, defaults)
    assert parsed["psnr"] == Tolerance("psnr", max_drop=1.0, saturate_at=48.0)  # the noise floor is kept
    assert "peak_rss_mb" not in parsed and "clip_iqa" not in parsed
    assert parse_tolerances({"clip_iqa": {"max_drop": 0.02}}, where, names, defaults)["clip_iqa"].max_drop == 0.02
    with pytest.raises(InputError, match="regression.lpips"):
        parse_tolerances({"lpips": {"max_rise": 0.1}}, where, names, defaults)  # not one of this suite's metrics
