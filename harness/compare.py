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

from harness import tomlread
from harness.errors import Where
from harness.results import FAIL, PASS, STATUS_OK, CheckOutcome, ConfigResult, RunResult
from harness.stats import bootstrap_interval, stable_seed

PERFORMANCE = {
    "median_image_s": ("s", False),
    "peak_rss_mb": ("MB", False),
    "peak_gpu_allocated_mb": ("MB", False),
}
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "psnr": {"max_drop": 0.5},
    "ssim": {"max_drop": 0.005},
    "clip_score": {"max_drop": 0.5},
    "adherence": {"max_drop": 0.05},
    "lpips": {"max_rise": 0.01},
    "fid": {"max_rise_pct": 10.0},
    "kid": {"max_rise": 0.1},
    "median_image_s": {"max_rise_pct": 10.0},
    "peak_rss_mb": {"max_rise_pct": 5.0},
    "peak_gpu_allocated_mb": {"max_rise_pct": 5.0},
}
KEYS = ("max_drop", "max_rise", "max_drop_pct", "max_rise_pct", "basis")


@dataclass(frozen=True)
class Tolerance:
    """How much worse a metric may get than in the baseline; one bound is set."""

    metric: str
    max_drop: float | None = None
    max_rise: float | None = None
    max_drop_pct: float | None = None
    max_rise_pct: float | None = None
    basis: str = "interval"

    def describe(self) -> str:
        for key, word, unit in (
            ("max_drop", "drop", ""),
            ("max_rise", "rise", ""),
            ("max_drop_pct", "drop", "%"),
            ("max_rise_pct", "rise", "%"),
        ):
            value = getattr(self, key)
            if value is not None:
                return f"{self.metric} {word} <= {value:g}{unit} vs baseline" + (
                    " (interval)" if self.basis == "interval" else ""
                )
        return f"{self.metric} vs baseline"


def parse_tolerances(
    table: Mapping[str, Any] | None, where: Where, metric_names: Sequence[str]
) -> dict[str, Tolerance]:
    """The suite's ``[regression]`` table over the defaults, for the suite's metrics, time and memory."""
    names = [*metric_names, *PERFORMANCE]
    tolerances = {name: Tolerance(name, **DEFAULT_TOLERANCES[name]) for name in names if name in DEFAULT_TOLERANCES}  # type: ignore[arg-type]
    tomlread.check_keys(table or {}, names, where, "metric")
    for name, value in (table or {}).items():
        if value is False:
            tolerances.pop(name, None)
            continue
        inner = where.child(name)
        if not isinstance(value, dict):
            raise where.error(name, "expected a table like { max_drop = 0.5 } or false")
        tomlread.check_keys(value, KEYS, inner)
        bounds = {key: tomlread.get(value, key, float, inner) for key in KEYS[:4]}
        given = [key for key, bound in bounds.items() if bound is not None]
        if len(given) != 1:
            raise inner.error("", "give exactly one of max_drop, max_rise, max_drop_pct, max_rise_pct")
        bound = bounds[given[0]]
        if bound is not None and bound < 0:
            raise inner.error(given[0], "must be >= 0")
        basis = tomlread.get_choice(value, "basis", ("interval", "estimate"), inner, "interval")
        tolerances[name] = Tolerance(name, basis=basis, **bounds)
    return tolerances


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
    status: str = "pass"  # pass | regressed | improved | untested
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
        """One check per compared configuration and metric (regressions fail the gate)."""
        return [
            CheckOutcome(
                d.config,
                d.tolerance,
                FAIL if d.status == "regressed" else PASS,
                d.reason,
                metric=d.metric,
                value=d.change,
                n=d.n,
            )
            for d in self.deltas
            if d.status != "untested"
        ]


def _paired(current: ConfigResult, baseline: ConfigResult, metric: str) -> tuple[np.ndarray, np.ndarray]:
    base = {(s.prompt, s.seed): s.metrics.get(metric) for s in baseline.samples}
    mine, theirs = [], []
    for sample in current.samples:
        value, partner = sample.metrics.get(metric), base.get((sample.prompt, sample.seed))
        if value is not None and partner is not None and math.isfinite(value) and math.isfinite(partner):
            mine.append(value)
            theirs.append(partner)
    return np.asarray(mine), np.asarray(theirs)


def _judge(
    tolerance: Tolerance, change: float, low: float | None, high: float | None, base_value: float
) -> tuple[str, str]:
    """``regressed`` / ``improved`` / ``pass`` and the words for it."""
    use_interval = tolerance.basis == "interval" and low is not None and high is not None
    for key, sign, percent in (
        ("max_drop", -1, False),
        ("max_rise", 1, False),
        ("max_drop_pct", -1, True),
        ("max_rise_pct", 1, True),
    ):
        bound = getattr(tolerance, key)
        if bound is None:
            continue
        scale = 100.0 / abs(base_value) if percent and base_value else 1.0
        worse = sign * change * scale
        worse_interval = sorted([sign * low * scale, sign * high * scale]) if use_interval else None  # type: ignore[operator]
        judged = worse_interval[0] if worse_interval else worse
        unit = "%" if percent else ""
        word = "drop" if sign < 0 else "rise"
        text = f"{word} {worse:.4g}{unit}"
        if worse_interval:
            text += f" (95% CI {worse_interval[0]:.4g} to {worse_interval[1]:.4g}{unit})"
        if judged > bound:
            return "regressed", f"{text}: past the tolerance of {bound:g}{unit}" + (
                " for the whole interval" if use_interval else ""
            )
        better = worse_interval[1] if worse_interval else worse
        if better < 0:
            return "improved", f"{text}: better than the baseline"
        return "pass", f"{text}: within {bound:g}{unit}"
    return "untested", "no bound"


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
            if tolerance is None or base_summary is None:
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
                mine, theirs = _paired(config, other, summary.metric)
                if not mine.size:
                    deltas.append(_untested(config.name, summary, base_summary, "no samples in common"))
                    continue
                differences = mine - theirs
                change = float(differences.mean())
                low, high = bootstrap_interval(
                    differences, lambda m: m.mean(axis=1), stable_seed(config.name, summary.metric, "baseline")
                )
                n, base_value, value = int(mine.size), float(theirs.mean()), float(mine.mean())
            status, reason = _judge(tolerance, change, low, high, base_value)
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
        deltas.extend(_performance(config, other, tolerances))
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


def _performance(config: ConfigResult, other: ConfigResult, tolerances: Mapping[str, Tolerance]) -> list[Delta]:
    deltas = []
    for metric, (unit, _) in PERFORMANCE.items():
        tolerance = tolerances.get(metric)
        if tolerance is None:
            continue
        if metric == "median_image_s":
            mine = np.asarray([s.seconds for s in config.samples if s.seconds and not s.cached])
            theirs = np.asarray([s.seconds for s in other.samples if s.seconds and not s.cached])
            if mine.size < 2 or theirs.size < 2:
                continue  # cached or too few samples: no time to compare
            base_value, value = float(np.median(theirs)), float(np.median(mine))
            rng = np.random.default_rng(stable_seed(config.name, metric))
            ratios = [
                np.median(rng.choice(mine, mine.size)) - np.median(rng.choice(theirs, theirs.size)) for _ in range(1000)
            ]
            low, high = (float(v) for v in np.quantile(ratios, [0.025, 0.975]))
            n = int(mine.size)
        else:
            base_raw = other.peak_rss_mb if metric == "peak_rss_mb" else other.memory.get(metric)
            raw = config.peak_rss_mb if metric == "peak_rss_mb" else config.memory.get(metric)
            if base_raw is None or raw is None:
                continue
            base_value, value, low, high, n = float(base_raw), float(raw), None, None, 1
        change = value - base_value
        status, reason = _judge(tolerance, change, low, high, base_value)
        deltas.append(
            Delta(
                config.name, metric, unit, base_value, value, change, low, high, n, tolerance.describe(), status, reason
            )
        )
    return deltas
