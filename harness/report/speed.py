"""Quality and speed together: each configuration's speedup beside its gated metrics, and the Pareto front.

A configuration is on the front for a metric when no other configuration is at least as
fast and at least as good on it, and better on one of the two. The configuration the
speedups are measured against sits at 1x; one that did nothing ("did it apply?" found no
effect) is left off the front, where only noise would place it. Every report format renders these rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from harness.report.model import fmt
from harness.results import STATUS_OK, RunResult


@dataclass(frozen=True)
class SpeedRow:
    name: str
    speedup: float | None
    low: float | None
    high: float | None
    n: int
    vs: str
    warmup_image_s: float | None
    image_s: float | None
    means: Mapping[str, float] = field(default_factory=dict)  # gated metric -> mean
    front: tuple[str, ...] = ()  # the metrics on whose Pareto front it is
    noop: tuple[str, ...] = ()  # "did it apply?" findings, in words
    is_base: bool = False  # the configuration the others' speedups are measured against

    @property
    def speedup_text(self) -> str:
        if self.speedup is None:
            return "-"
        interval = (
            f" [{fmt(self.low, 3)}, {fmt(self.high, 3)}]" if self.low is not None and self.high is not None else ""
        )
        return f"{fmt(self.speedup, 3)}x{interval}"


def gated_metrics(result: RunResult) -> list[str]:
    """Metrics a check of this run judged that the configurations have summaries of, in summary order."""
    checked = {check.metric for check in result.checks}
    found: list[str] = []
    for config in result.configs:
        for summary in config.summaries:
            if summary.metric in checked and summary.metric not in found:
                found.append(summary.metric)
    return found


def about_speed(result: RunResult) -> bool:
    """Whether the suite is about speed: a configuration with a speed-up option, a speed gate or a required effect.
    (Every run measures each configuration's speedup; the reports show it where the suite asks about speed.)"""
    for config in result.suite.get("configs", []):
        options = config.get("options") or {}
        if config.get("min_speedup") is not None or config.get("effects") or options.get("speedups"):
            return True
    return False


def speed_rows(result: RunResult) -> list[SpeedRow]:
    """One row per configuration that has a speedup or is the base of one; empty when the run timed none or the
    suite is not about speed."""
    bases = {str(c.speed["speedup"]["vs"]) for c in result.configs if c.speed.get("speedup")}
    if not bases or not about_speed(result):
        return []
    metrics = gated_metrics(result)
    rows = []
    for config in result.configs:
        if config.status != STATUS_OK or not (config.speed.get("speedup") or config.name in bases):
            continue
        found = dict(config.speed.get("speedup") or {})
        is_base = not found
        means = {}
        for metric in metrics:
            summary = config.summary(metric)
            if summary is not None and math.isfinite(summary.mean):
                means[metric] = summary.mean
        rows.append(
            SpeedRow(
                name=config.name,
                speedup=1.0 if is_base else found.get("value"),
                low=found.get("low"),
                high=found.get("high"),
                n=int(found.get("n", 0)) if not is_base else int(config.timing.get("timed_batches", 0)),
                vs=config.name if is_base else str(found.get("vs")),
                warmup_image_s=found.get("warmup_image_s"),
                image_s=found.get("image_s") if not is_base else config.timing.get("median_image_s"),
                means=means,
                noop=tuple(config.speed.get("effects", {}).get("noop", ())),
                is_base=is_base,
            )
        )
    higher = {m: _higher_is_better(result, m) for m in metrics}
    # a configuration that did nothing (bit-identical images, no speedup) is its base again: beside it only noise
    # separates them, so it takes no place on the front
    candidates = [r for r in rows if not r.noop]
    fronts = {
        m: set(pareto_front([(r.name, r.speedup, r.means.get(m)) for r in candidates], higher[m])) for m in metrics
    }
    return [SpeedRow(**{**r.__dict__, "front": tuple(m for m in metrics if r.name in fronts[m])}) for r in rows]


def _higher_is_better(result: RunResult, metric: str) -> bool:
    for config in result.configs:
        summary = config.summary(metric)
        if summary is not None:
            return summary.higher_is_better
    return True


def pareto_front(points: Sequence[tuple[str, float | None, float | None]], higher_is_better: bool) -> list[str]:
    """The names of the points (name, speedup, quality) no other point dominates, fastest first."""
    known = [(name, s, q if higher_is_better else -q) for name, s, q in points if s is not None and q is not None]
    front = [
        (name, s, q)
        for name, s, q in known
        if not any(s2 >= s and q2 >= q and (s2 > s or q2 > q) for other, s2, q2 in known if other != name)
    ]
    return [name for name, _, _ in sorted(front, key=lambda p: -p[1])]
