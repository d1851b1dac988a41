"""Quality and speed in the reports: the Pareto front against a brute-force definition, the rows and the chart."""

from __future__ import annotations

import itertools

import numpy as np

from harness.report.markdown import speed_table
from harness.report.plots import quality_vs_speedup
from harness.report.speed import pareto_front, speed_rows
from harness.results import CheckOutcome, ConfigResult, MetricSummary, RunResult


def dominated(point, others, higher):
    _, s, q = point
    sign = 1 if higher else -1
    return any(s2 >= s and sign * q2 >= sign * q and (s2 > s or q2 != q) for _, s2, q2 in others if (s2, q2) != (s, q))


def test_the_front_is_every_point_no_other_dominates():
    rng = np.random.default_rng(0)
    for trial, higher in itertools.product(range(50), (True, False)):
        points = [(f"c{i}", float(s), float(q)) for i, (s, q) in enumerate(rng.random((8, 2)).round(1))]
        expected = {p[0] for p in points if not dominated(p, points, higher)}
        assert set(pareto_front(points, higher)) == expected, (trial, points)


def config(name, psnr, speed=None, noop=()):
    summary = MetricSummary("psnr", "dB", True, "pair", 12, psnr, ci_low=psnr - 1, ci_high=psnr + 1)
    record = {}
    if speed is not None:
        record["speedup"] = {"vs": "bf16", "value": speed, "low": speed - 0.1, "high": speed + 0.1, "n": 5}
        record["effects"] = {"noop": list(noop)}
    return ConfigResult(name, "precision", "ok", summaries=(summary,), speed=record, timing={"timed_batches": 5})


def run(*configs, about_speed=True):
    checks = (CheckOutcome("cache", "psnr >= 30", "pass", "", metric="psnr"),)
    listed = [{"name": c.name, "min_speedup": 1.1 if about_speed and c.speed else None} for c in configs]
    return RunResult(suite={"name": "s", "configs": listed}, run_id="r", started="", configs=configs, checks=checks)


def test_rows_put_the_base_at_1x_and_leave_no_ops_off_the_front():
    result = run(
        config("bf16", 100.0),
        config("cache", 50.0, 1.5),
        config("slow_worse", 40.0, 1.2),
        config("noop", 100.0, 1.02, noop=("images bit-identical to those of 'bf16'",)),
    )
    rows = {row.name: row for row in speed_rows(result)}
    assert rows["bf16"].is_base and rows["bf16"].speedup == 1.0
    assert rows["cache"].front == ("psnr",) and rows["bf16"].front == ("psnr",)
    assert rows["slow_worse"].front == () and rows["noop"].front == ()  # noise alone would put it there
    table = "\n".join(speed_table(result))
    assert "| `cache` | 1.5x [1.4, 1.6] | 5 |" in table and "no: images bit-identical" in table
    assert list(quality_vs_speedup(result)) == ["quality_vs_speedup_psnr"]


def test_a_run_without_speedups_has_no_speed_section():
    result = run(config("bf16", 100.0), config("fp16", 60.0))
    assert speed_rows(result) == [] and speed_table(result) == [] and quality_vs_speedup(result) == {}
    # measured, but the suite asks nothing about speed: not shown
    assert speed_rows(run(config("bf16", 100.0), config("fp16", 60.0, 1.2), about_speed=False)) == []
