"""The numbers every report format shows, computed once from a :class:`RunResult`.

Console, Markdown and HTML all render these rows, so they can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.results import ERROR, FAIL, PASS, SKIPPED, XFAIL, CheckOutcome, ConfigResult, MetricSummary, RunResult
from harness.timing import BASELINE_TIMING_HINT

SPEED_METRICS = ("median_image_s", "median_denoiser_s")
STATUS_MARK = {PASS: "pass", FAIL: "FAIL", ERROR: "error", SKIPPED: "skipped", XFAIL: "caught (negative control)"}


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for people: significant digits, '-' for missing, 'n/a' for NaN."""
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g}"


def fmt_interval(summary: MetricSummary) -> str:
    if summary.ci_low is None or summary.ci_high is None:
        return ""
    return f"[{fmt(summary.ci_low)}, {fmt(summary.ci_high)}]"


@dataclass(frozen=True)
class MetricCell:
    """One configuration x metric cell: value, interval, n, unit and the worst check status on it."""

    metric: str
    text: str
    value: float | None
    interval: str
    n: int
    unit: str
    status: str
    note: str = ""
    reliable: bool = True


@dataclass(frozen=True)
class ConfigRow:
    name: str
    kind: str
    status: str
    description: str
    verdict: str
    cells: Mapping[str, MetricCell]
    per_image_s: float | None
    load_s: float | None
    peak_rss_mb: float | None
    peak_gpu_mb: float | None
    checks: tuple[CheckOutcome, ...]
    message: str = ""
    notes: Mapping[str, Any] = field(default_factory=dict)
    measured: bool = True  # False when served from the sample cache: no time or memory of this run
    timed_batches: int = 0
    gpu_resident_mb: float | None = None
    sequential: Mapping[str, Any] = field(default_factory=dict)  # the sequential sampling record; {} when off

    @property
    def time_text(self) -> str:
        """Median seconds per image over the timed calls, with their n; says so when nothing was measured."""
        if not self.measured:
            return "not measured (cached)"
        if self.per_image_s is None:
            return "-"
        return (
            f"{fmt(self.per_image_s, 3)} (n={self.timed_batches} calls)"
            if self.timed_batches
            else fmt(self.per_image_s, 3)
        )

    @property
    def rss_text(self) -> str:
        return "not measured (cached)" if not self.measured else fmt(self.peak_rss_mb, 5)

    @property
    def equivalence(self) -> str:
        """``identical to fp32`` / ``max pixel diff 3 vs fp16`` for configurations that must match another."""
        found = self.notes.get("equivalence")
        if not found:
            return ""
        if "note" in found:
            return found["note"]
        if found["identical"]:
            return f"identical to {found['target']} (n={found['samples_compared']})"
        text = f"max pixel diff {found['max_pixel_diff']} vs {found['target']} ({found['samples_differing']}/{found['samples_compared']} differ)"
        causes = found.get("known_causes")
        return f"{text}; known causes in diffusers' disk offloading: {'; '.join(causes)}" if causes else text

    @property
    def samples_text(self) -> str:
        """``8 of 12`` for a configuration sequential sampling stopped early; ``12`` otherwise."""
        record = self.sequential
        if not record:
            return ""
        return f"{record['generated']} of {record['planned']}" if record.get("early") else str(record["generated"])

    @property
    def stop_text(self) -> str:
        return str(self.sequential.get("stopped", "")) if self.sequential else ""

    @property
    def passed(self) -> int:
        return sum(1 for c in self.checks if c.status == PASS)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.checks if c.status in (FAIL, ERROR))


def metric_names(result: RunResult) -> list[str]:
    names: list[str] = []
    for config in result.configs:
        for summary in config.summaries:
            if summary.metric not in names:
                names.append(summary.metric)
    return names


def metric_header(result: RunResult, metric: str) -> str:
    """A metric's column title: per-sample metrics are summarised by their mean, set metrics are one value."""
    scopes = {s.scope for config in result.configs for s in config.summaries if s.metric == metric}
    return metric if scopes == {"set"} else f"{metric} (mean)"


def _verdict(checks: tuple[CheckOutcome, ...]) -> str:
    statuses = {c.status for c in checks}
    for status in (ERROR, FAIL):
        if status in statuses:
            return status
    if XFAIL in statuses:
        return XFAIL
    if statuses == {SKIPPED}:
        return SKIPPED
    return PASS


def config_rows(result: RunResult) -> list[ConfigRow]:
    """One row per configuration, in run order."""
    rows = []
    for config in result.configs:
        checks = tuple(c for c in result.checks if c.config == config.name)
        cells = {}
        for summary in config.summaries:
            on_metric = [c.status for c in checks if c.metric == summary.metric]
            status = _verdict(tuple(c for c in checks if c.metric == summary.metric)) if on_metric else ""
            unit = summary.unit if summary.unit.strip("()") else ""
            cells[summary.metric] = MetricCell(
                metric=summary.metric,
                text=fmt(summary.mean) + (f" {unit}" if unit else ""),
                value=summary.mean,
                interval=fmt_interval(summary),
                n=summary.n,
                unit=summary.unit,
                status=status,
                note=summary.note,
                reliable=summary.reliable,
            )
        rows.append(
            ConfigRow(
                name=config.name,
                kind=config.kind,
                status=config.status,
                description=config.description,
                verdict=_verdict(checks) if checks else config.status,
                cells=cells,
                per_image_s=config.timing.get("median_image_s", config.timing.get("per_image_s")),
                load_s=config.timing.get("load_s"),
                peak_rss_mb=config.peak_rss_mb,
                peak_gpu_mb=config.memory.get("peak_gpu_allocated_mb"),
                checks=checks,
                message=config.message,
                notes=config.notes,
                measured=config.measured,
                timed_batches=int(config.timing.get("timed_batches", 0)),
                gpu_resident_mb=config.memory.get("gpu_resident_mb"),
                sequential=config.sequential,
            )
        )
    return rows


def failing_checks(result: RunResult) -> list[CheckOutcome]:
    return [c for c in result.checks if c.status in (FAIL, ERROR)]


def config_by_name(result: RunResult) -> dict[str, ConfigResult]:
    return {c.name: c for c in result.configs}


def headline(result: RunResult) -> str:
    """``PASS: 4 configurations, 12/12 checks passed`` or the failing counts."""
    total = len(result.checks)
    failed = len(failing_checks(result))
    skipped = sum(1 for c in result.checks if c.status == SKIPPED)
    expected = sum(1 for c in result.checks if c.status == XFAIL)
    verdict = "PASS" if result.exit_code == 0 else "FAIL"
    if result.state != "complete":
        verdict = result.state.upper()
    text = (
        f"{verdict}: {len(result.configs)} configurations, {total - failed - skipped - expected}/{total} checks passed"
    )
    if expected:
        text += f", {expected} failed as expected (negative controls)"
    if failed:
        text += f", {failed} failed or errored"
    if skipped:
        text += f", {skipped} skipped"
    unjudged = speed_not_judged(result)
    if unjudged:
        text += f"; {unjudged}"
    return text


def speed_not_judged(result: RunResult) -> str:
    """``speed not judged for 2/3 configurations (why)`` when a baseline's time checks could not decide."""
    by_config: dict[str, list[CheckOutcome]] = {}
    for check in result.checks:
        if check.metric in SPEED_METRICS:
            by_config.setdefault(check.config, []).append(check)
    unjudged = [checks for checks in by_config.values() if all(c.status == SKIPPED for c in checks)]
    if not unjudged:
        return ""
    reason = unjudged[0][0].reason
    why = reason.split(";")[0].split(" (")[0]
    hint = f"; {BASELINE_TIMING_HINT}" if BASELINE_TIMING_HINT in reason else ""
    return f"speed not judged for {len(unjudged)}/{len(by_config)} configurations ({why}){hint}"


def sequential_headline(result: RunResult) -> str:
    """``72 of 108 images generated (67% of fixed n); 2 of 9 configurations stopped early`` when the run used
    sequential sampling; empty otherwise."""
    records = [(c, c.sequential) for c in result.configs if c.sequential]
    if not records:
        return ""
    generated = sum(len(c.samples) for c in result.configs)
    planned = sum(int(r["planned"]) if r else len(c.samples) for c, r in ((c, c.sequential) for c in result.configs))
    early = sum(1 for _, r in records if r.get("early"))
    share = 100.0 * generated / planned if planned else 100.0
    return (
        f"sequential sampling: {generated} of {planned} images generated ({share:.0f}% of fixed n); "
        f"{early} of {len(records)} watched configurations stopped early"
    )


def references_line(record: Mapping[str, Any]) -> str:
    """One line for reports: where the references came from and, for live ones, the drift of the blessed set."""
    if not record:
        return ""
    source, config = record.get("source"), record.get("config")
    if source != "live":
        return (
            f"references: blessed ({config!r} on {record.get('device_class') or '?'}, {record.get('created') or '?'})"
        )
    text = f"references: live (generated by {config!r} in this run)"
    blessed = record.get("blessed")
    if not blessed:
        return text + "; no current blessed set to measure drift against"
    mean, low = blessed.get("psnr_mean"), blessed.get("psnr_min")
    if blessed.get("identical") == blessed.get("n"):
        return text + f"; the blessed set ({blessed.get('device_class')}) is identical"
    differing = int(blessed.get("n", 0)) - int(blessed.get("identical", 0))
    return (
        text + f"; the blessed set ({blessed.get('device_class')}) differs in {differing}/{blessed.get('n')} "
        f"images: PSNR mean {_db(mean)}, worst {_db(low)} ({blessed.get('worst')})"
    )


def _db(value: Any) -> str:
    return "inf" if value is None or not math.isfinite(float(value)) else f"{float(value):.1f} dB"


def cpu_half_line(environment: Mapping[str, Any]) -> str:
    """Which path half precision took on the run's CPU (harness/kinds/cpu_half.py), in one line; empty off a CPU."""
    decided = environment.get("cpu_half")
    if not decided:
        return ""
    parts = []
    for dtype, operations in decided.items():
        emulated = [op for op, path in operations.items() if path == "float32-accumulate"]
        native = [op for op, path in operations.items() if path != "float32-accumulate"]
        text = f"{dtype} " + " and ".join(emulated) + " accumulate in float32" if emulated else ""
        if native:
            text += ("; " if text else f"{dtype} ") + " and ".join(native) + " native"
        parts.append(text)
    return "CPU half precision (kept per machine): " + ", ".join(parts)
