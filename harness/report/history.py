"""History of a suite's runs: each metric per configuration over time, as one HTML page.

``python -m harness history reports/<suite>/`` reads every completed run folder below,
orders the runs by start time (labelled with their git commit where recorded) and
plots each metric's mean with its 95% interval per configuration, plus time and memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.results import STATUS_OK, RunResult, read_results


@dataclass(frozen=True)
class HistoryPoint:
    run_id: str
    started: str
    git: str | None
    verdict: str
    result: RunResult

    @property
    def label(self) -> str:
        day = self.started[:16].replace("T", " ")
        return f"{day} {self.git}" if self.git else day


def collect(folder: Path) -> list[HistoryPoint]:
    """Completed runs below ``folder``, oldest first; unreadable ones are skipped."""
    if not folder.is_dir():
        raise InputError("not a folder of runs (expected reports/<suite>/)", file=folder)
    points = []
    for path in sorted(folder.rglob("results.json")):
        try:
            result = read_results(path)
        except InputError:
            continue
        if result.state != "complete":
            continue
        points.append(
            HistoryPoint(result.run_id, result.started, result.environment.get("git_commit"), result.verdict, result)
        )
    if not points:
        raise InputError("no completed runs (results.json with state complete) below this folder", file=folder)
    suites = {str(p.result.suite.get("name")) for p in points}
    if len(suites) > 1:
        raise InputError(
            f"runs of several suites ({', '.join(sorted(suites))}); point at one suite's folder", file=folder
        )
    return sorted(points, key=lambda p: p.started)


def series(
    points: Sequence[HistoryPoint], metric: str
) -> dict[str, list[tuple[int, float, float | None, float | None]]]:
    """Per configuration: (run index, mean, ci_low, ci_high) where the metric was computed."""
    found: dict[str, list[tuple[int, float, float | None, float | None]]] = {}
    for index, point in enumerate(points):
        for config in point.result.configs:
            if config.status != STATUS_OK:
                continue
            if metric in ("median_image_s", "peak_rss_mb"):
                raw = config.timing.get(metric) if metric == "median_image_s" else config.peak_rss_mb
                if raw is not None:
                    found.setdefault(config.name, []).append((index, float(raw), None, None))
                continue
            summary = config.summary(metric)
            if summary is not None and math.isfinite(summary.mean):
                found.setdefault(config.name, []).append((index, summary.mean, summary.ci_low, summary.ci_high))
    return found


def chart(points: Sequence[HistoryPoint], metric: str) -> bytes | None:
    from harness.report.plots import _figure, _png

    data = series(points, metric)
    if not data:
        return None
    figure, axis = _figure(max(6.0, 0.9 * len(points) + 3), 3.8)
    for number, (config, values) in enumerate(sorted(data.items())):
        xs = [v[0] for v in values]
        ys = [v[1] for v in values]
        lows = [max(0.0, v[1] - v[2]) if v[2] is not None else 0.0 for v in values]
        highs = [max(0.0, v[3] - v[1]) if v[3] is not None else 0.0 for v in values]
        axis.errorbar(xs, ys, yerr=[lows, highs], marker="o", capsize=3, label=config, color=f"C{number % 10}")
    axis.set_xticks(range(len(points)), [p.label for p in points], rotation=30, ha="right", fontsize=7)
    axis.set_ylabel(metric)
    axis.set_title(f"{metric} per run (mean, 95% CI)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="best")
    return _png(figure)


def metrics_of(points: Sequence[HistoryPoint]) -> list[str]:
    names: list[str] = []
    for point in points:
        for config in point.result.configs:
            for summary in config.summaries:
                if summary.metric not in names:
                    names.append(summary.metric)
    return [*names, "median_image_s", "peak_rss_mb"]


def render_history(points: Sequence[HistoryPoint]) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    from harness.report.html import data_uri_png
    from harness.report.model import fmt

    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["fmt"] = fmt
    charts: dict[str, Any] = {}
    for metric in metrics_of(points):
        png = chart(points, metric)
        if png:
            charts[metric] = data_uri_png(png)
    suite = points[-1].result.suite
    return env.get_template("history.html.j2").render(
        suite=suite, points=points, charts=charts, passed=points[-1].verdict == "pass"
    )
