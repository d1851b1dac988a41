"""Peak memory: a freed allocation still shows in the peak; CPU runs report no GPU figures."""

from __future__ import annotations

import numpy as np

from harness.memory import PeakMemory


def test_peak_includes_freed_allocation():
    with PeakMemory("cpu") as peak:
        block = np.ones(300 * 1024 * 1024 // 8)  # 300 MB, touched
        del block
    report = peak.report()
    assert report["rss_rise_mb"] > 250, report
    assert report["peak_rss_mb"] >= report["start_rss_mb"] + 250
    assert "peak_gpu_allocated_mb" not in report


def test_each_measurement_starts_fresh():
    with PeakMemory("cpu"):
        block = np.ones(200 * 1024 * 1024 // 8)
        del block
    with PeakMemory("cpu") as second:
        small = np.ones(1024)
        del small
    assert second.report()["rss_rise_mb"] < 100, second.report()


def test_marks():
    with PeakMemory("cpu") as peak:
        peak.mark("rss_after_load_mb")
    assert peak.report()["rss_after_load_mb"] > 0
