"""Comparing a run with a baseline run (main's): did this change make any configuration worse?

Quality metrics are compared sample by sample (same prompt and seed in both runs), so
the change has a bootstrap interval, and by default a tolerance fails only when the
whole 95% interval is past it: noise alone never fails the gate. Time is compared by
the median seconds per image (interval from bootstrapping both runs' samples), memory
by the peaks. A configuration new in this run, or gone from it, is reported as such.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from harness.errors import Where
from harness.judge.performance import UNITS, machine_difference, performance_verdicts
from harness.metrics import default_metrics
from harness.metrics.base import Metric
from harness.plan import tolerance
from harness.plan.tolerance import INCONCLUSIVE, REGRESSED, UNTESTED, Tolerance, default_tolerances, judge
from harness.results import FAIL, PASS, SKIPPED, STATUS_OK, CheckOutcome, ConfigResult, RunResult, paired_values
from harness.stats import bootstrap_interval, stable_seed

__all__ = ["Comparison", "Delta", "Tolerance", "compare_runs", "parse_tolerances"]

PERFORMANCE = UNITS  # time and memory metrics, with their units


def parse_tolerances(
    table: Mapping[str, Any] | None,
    where: Where,
    metric_names: Sequence[str],
    metrics: Mapping[str, type[Metric]] | None = None,
) -> dict[str, Tolerance]:
    """The ``[regression]`` table over the defaults (each metric's ``default_tolerance``, then time and memory's)
    for ``metric_names``, time and memory; see :func:`harness.plan.tolerance.parse_tolerances`."""
    return tolerance.parse_tolerances(
        table, where, [*metric_names, *PERFORMANCE], default_tolerances(metrics or default_metrics())
    )


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
    deltas: list[Delta] = []
    notes: list[str] = []
    if current.suite.get("prompts") != baseline.suite.get("prompts") or current.suite.get(
        "seeds"
    ) != baseline.suite.get("seeds"):
        notes.append("prompts or seeds differ between the runs: only samples with the same prompt and seed are paired")
    machines = machine_difference(current.environment, baseline.environment)
    if machines:
        notes.append(f"time and memory {machines}")
    on_cpu = str(current.environment.get("device", "cpu")).startswith("cpu")
    for config in current.configs:
        other = baseline.config(config.name)
        if other is None:
            continue
        if config.status != STATUS_OK or other.status != STATUS_OK:
            deltas.append(
                Delta(
                    config.name,
                    "runs",
                    "",
                    None,
                    None,
                    None,
                    status="untested",
                    reason=f"now {config.status}, baseline {other.status}",
                )
            )
            continue
        for summary in config.summaries:
            tolerance = tolerances.get(summary.metric)
            base_summary = other.summary(summary.metric)
            if base_summary is None:
                continue
            if tolerance is None:  # shown, never skipped silently: a metric nobody gates is a gap a reader should see
                reason = (
                    f"untested: no tolerance for {summary.metric} (it has no default, or [regression] turns it off); "
                    f"give one in the suite's [regression] table, e.g. {summary.metric} = "
                    f"{{ {'max_drop' if summary.higher_is_better else 'max_rise'} = ... }}"
                )
                deltas.append(_untested(config.name, summary, base_summary, reason))
                continue
            if summary.unit != base_summary.unit:
                reason = (
                    f"not judged: the baseline has {summary.metric} in {base_summary.unit or 'raw units'!r}, "
                    f"this run in {summary.unit or 'raw units'!r}; re-run the baseline with this version"
                )
                deltas.append(_untested(config.name, summary, base_summary, reason))
                continue
            if not (summary.reliable and base_summary.reliable):
                reason = f"not judged: {summary.metric} is unreliable at this n ({summary.note or base_summary.note})"
                deltas.append(_untested(config.name, summary, base_summary, reason))
                continue
            if summary.scope == "set":
                change = summary.mean - base_summary.mean
                low = high = None
                if None not in (summary.ci_low, summary.ci_high, base_summary.ci_low, base_summary.ci_high):
                    low = summary.ci_low - base_summary.ci_high  # type: ignore[operator]
                    high = summary.ci_high - base_summary.ci_low  # type: ignore[operator]
                n, base_value, value = summary.n, base_summary.mean, summary.mean
            else:
                mine, theirs = _paired(config, other, summary.metric, tolerance, summary.higher_is_better)
                if not mine.size:
                    deltas.append(_untested(config.name, summary, base_summary, "no samples in common"))
                    continue
                differences = mine - theirs
                change = float(differences.mean())
                low, high = bootstrap_interval(
                    differences, lambda m: m.mean(axis=1), stable_seed(config.name, summary.metric, "baseline")
                )
                n = int(mine.size)
                # Shown as measured; the change is judged on the saturated pairs (tolerance.saturate_at).
                base_value, value = base_summary.mean, summary.mean
            status, reason = judge(tolerance, change, low, high, base_value, summary.unit.strip("()"))
            deltas.append(
                Delta(
                    config.name,
                    summary.metric,
                    summary.unit,
                    base_value,
                    value,
                    change,
                    low,
                    high,
                    n,
                    tolerance.describe(),
                    status,
                    reason,
                )
            )
        for metric, verdict in performance_verdicts(config, other, tolerances, machines, on_cpu):
            tolerance = tolerances[metric]
            deltas.append(
                Delta(
                    config.name,
                    metric,
                    PERFORMANCE[metric],
                    verdict.base_value,
                    verdict.value,
                    verdict.change,
                    verdict.low,
                    verdict.high,
                    verdict.n,
                    tolerance.describe(),
                    verdict.status,
                    verdict.reason,
                )
            )
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
