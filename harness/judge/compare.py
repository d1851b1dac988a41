"""Comparing a run with a baseline run (main's): did this change make any configuration worse?

Quality metrics are compared sample by sample (same prompt and seed in both runs), so
the change has a bootstrap interval, and by default a tolerance fails only when the
whole 95% interval is past it: noise alone never fails the gate. Time is compared by
the median seconds per image (interval from bootstrapping both runs' samples), memory
by the peaks. A configuration new in this run, or gone from it, is reported as such.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from harness.judge.performance import UNITS, machine_difference, performance_verdicts
from harness.plan.tolerance import INCONCLUSIVE, REGRESSED, UNTESTED, Tolerance, judge
from harness.results import (
    FAIL,
    PASS,
    SKIPPED,
    STATUS_OK,
    CheckOutcome,
    ConfigResult,
    MetricSummary,
    RunResult,
    paired_values,
)
from harness.stats import bootstrap_interval, stable_seed

__all__ = ["Comparison", "Delta", "compare_runs"]

PERFORMANCE = UNITS  # time and memory metrics, with their units


@dataclass(frozen=True)
class Delta:
    """One configuration x metric: baseline, current, the change and its verdict."""

    config: str
    metric: str
    unit: str
    baseline: float | None
    current: float | None
    change: float | None
    change_low: float | None = None
    change_high: float | None = None
    n: int = 0
    tolerance: str = ""
    status: str = "pass"  # pass | regressed | improved | untested | inconclusive
    reason: str = ""


@dataclass(frozen=True)
class Comparison:
    baseline: Mapping[str, Any]
    deltas: tuple[Delta, ...] = ()
    new_configs: tuple[str, ...] = ()
    removed_configs: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def regressions(self) -> list[Delta]:
        return [d for d in self.deltas if d.status == "regressed"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["deltas"] = [
            {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
            for d in data["deltas"]
        ]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        return cls(
            baseline=data.get("baseline", {}),
            deltas=tuple(Delta(**d) for d in data.get("deltas", [])),
            new_configs=tuple(data.get("new_configs", [])),
            removed_configs=tuple(data.get("removed_configs", [])),
            notes=tuple(data.get("notes", [])),
        )

    def outcomes(self) -> list[CheckOutcome]:
        """One check per compared configuration and metric: regressions fail the gate; what could not be
        judged (too few measurements, cached, another machine) is a visible skip, never a silent pass."""
        status = {REGRESSED: FAIL, UNTESTED: SKIPPED, INCONCLUSIVE: SKIPPED}
        return [
            CheckOutcome(
                d.config,
                d.tolerance or f"{d.metric} vs baseline",
                status.get(d.status, PASS),
                d.reason,
                metric=d.metric,
                value=d.change,
                n=d.n,
            )
            for d in self.deltas
            if d.metric != "runs"
        ]


def _saturated(value: float | None, tolerance: Tolerance, higher_is_better: bool) -> float | None:
    """A value past the tolerance's ``saturate_at`` counts as that level (infinite PSNR included)."""
    limit = tolerance.saturate_at
    if value is None or limit is None or math.isnan(value):
        return value
    return min(value, limit) if higher_is_better else max(value, limit)


def _paired(
    current: ConfigResult, baseline: ConfigResult, metric: str, tolerance: Tolerance, higher_is_better: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Values of the samples with the same prompt and seed in both runs, saturated at the tolerance's level."""
    base = {(s.prompt, s.seed): s.metrics.get(metric) for s in baseline.samples}
    mine, theirs, _ = paired_values(
        current,
        base,
        metric,
        key=lambda sample: (sample.prompt, sample.seed),
        value=lambda v: _saturated(v, tolerance, higher_is_better),
    )
    return mine, theirs


def compare_runs(
    current: RunResult, baseline: RunResult, tolerances: Mapping[str, Tolerance], baseline_path: str = ""
) -> Comparison:
    """Compare every configuration both runs have, metric by metric, plus time and memory."""
    current_names = [c.name for c in current.configs]
    baseline_names = [c.name for c in baseline.configs]
    notes: list[str] = []
    if current.suite.get("prompts") != baseline.suite.get("prompts") or current.suite.get(
        "seeds"
    ) != baseline.suite.get("seeds"):
        notes.append("prompts or seeds differ between the runs: only samples with the same prompt and seed are paired")
    machines = machine_difference(current.environment, baseline.environment)
    if machines:
        notes.append(f"time and memory {machines}")
    on_cpu = str(current.environment.get("device", "cpu")).startswith("cpu")
    deltas: list[Delta] = []
    for config in current.configs:
        other = baseline.config(config.name)
        if other is None:
            continue
        if config.status != STATUS_OK or other.status != STATUS_OK:
            reason = f"now {config.status}, baseline {other.status}"
            deltas.append(Delta(config.name, "runs", "", None, None, None, status="untested", reason=reason))
            continue
        for summary in config.summaries:
            base_summary = other.summary(summary.metric)
            if base_summary is not None:
                deltas.append(_quality_delta(config, other, summary, base_summary, tolerances.get(summary.metric)))
        for metric, verdict in performance_verdicts(config, other, tolerances, machines, on_cpu):
            deltas.append(_performance_delta(config.name, metric, verdict, tolerances[metric]))
    return Comparison(
        baseline={
            "run_id": baseline.run_id,
            "started": baseline.started,
            "path": baseline_path,
            "git": baseline.environment.get("git_commit"),
        },
        deltas=tuple(deltas),
        new_configs=tuple(name for name in current_names if name not in baseline_names),
        removed_configs=tuple(name for name in baseline_names if name not in current_names),
        notes=tuple(notes),
    )


def _not_judged(summary: MetricSummary, base: MetricSummary, tolerance: Tolerance | None) -> str:
    """Why a metric's change cannot be judged (no tolerance, other units, unreliable at this n); empty if it can."""
    if tolerance is None:  # shown, never skipped silently: a metric nobody gates is a gap a reader should see
        return (
            f"untested: no tolerance for {summary.metric} (it has no default, or [regression] turns it off); "
            f"give one in the suite's [regression] table, e.g. {summary.metric} = "
            f"{{ {'max_drop' if summary.higher_is_better else 'max_rise'} = ... }}"
        )
    if summary.unit != base.unit:
        return (
            f"not judged: the baseline has {summary.metric} in {base.unit or 'raw units'!r}, "
            f"this run in {summary.unit or 'raw units'!r}; re-run the baseline with this version"
        )
    if not (summary.reliable and base.reliable):
        return f"not judged: {summary.metric} is unreliable at this n ({summary.note or base.note})"
    return ""


def _quality_delta(
    config: ConfigResult,
    other: ConfigResult,
    summary: MetricSummary,
    base: MetricSummary,
    tolerance: Tolerance | None,
) -> Delta:
    """One quality metric of one configuration against the baseline: paired per sample, or set against set."""
    reason = _not_judged(summary, base, tolerance)
    if reason:
        return _untested(config.name, summary, base, reason)
    assert tolerance is not None
    if summary.scope == "set":
        change = summary.mean - base.mean
        low = high = None
        if None not in (summary.ci_low, summary.ci_high, base.ci_low, base.ci_high):
            low = summary.ci_low - base.ci_high  # type: ignore[operator]
            high = summary.ci_high - base.ci_low  # type: ignore[operator]
        n = summary.n
    else:
        mine, theirs = _paired(config, other, summary.metric, tolerance, summary.higher_is_better)
        if not mine.size:
            return _untested(config.name, summary, base, "no samples in common")
        differences = mine - theirs
        change = float(differences.mean())
        low, high = bootstrap_interval(
            differences, lambda m: m.mean(axis=1), stable_seed(config.name, summary.metric, "baseline")
        )
        n = int(mine.size)
    # Shown as measured; a per-sample change is judged on the saturated pairs (tolerance.saturate_at).
    status, why = judge(tolerance, change, low, high, base.mean, summary.unit.strip("()"))
    return Delta(
        config.name, summary.metric, summary.unit, base.mean, summary.mean, change, low, high, n,
        tolerance.describe(), status, why,
    )  # fmt: skip


def _performance_delta(config: str, metric: str, verdict: Any, tolerance: Tolerance) -> Delta:
    return Delta(
        config, metric, PERFORMANCE[metric], verdict.base_value, verdict.value, verdict.change, verdict.low,
        verdict.high, verdict.n, tolerance.describe(), verdict.status, verdict.reason,
    )  # fmt: skip


def _untested(config: str, summary: Any, base: Any, reason: str) -> Delta:
    return Delta(
        config,
        summary.metric,
        summary.unit,
        base.mean,
        summary.mean,
        summary.mean - base.mean,
        status="untested",
        reason=reason,
    )
