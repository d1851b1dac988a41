"""summary.md: for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.phases import describe as describe_phases
from harness.report.blame import markdown as blame_markdown
from harness.report.model import (
    config_rows,
    cpu_half_line,
    failing_checks,
    fmt,
    headline,
    metric_names,
    references_line,
    sequential_headline,
)
from harness.report.speed import gated_metrics, speed_rows
from harness.results import RunResult

ICON = {"pass": "✅", "fail": "❌", "error": "💥", "skipped": "⏭️", "xfail": "🧪", "ok": "✅"}


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def comparison_markdown(comparison: Mapping[str, Any]) -> list[str]:
    """The baseline comparison: regressions first, then a compact table of every change."""
    baseline = comparison.get("baseline", {})
    deltas = comparison.get("deltas", [])
    regressions = [d for d in deltas if d["status"] == "regressed"]
    lines = [
        "",
        f"### Compared with baseline `{baseline.get('run_id', '?')}`"
        + (f" (commit {baseline['git']})" if baseline.get("git") else ""),
        "",
    ]
    if regressions:
        lines += [f"- ❌ `{d['config']}` {_escape(d['tolerance'])}: {_escape(d['reason'])}" for d in regressions]
    else:
        lines.append("No regression past its tolerance.")
    for key, label in (("new_configs", "New in this run"), ("removed_configs", "Gone from this run")):
        if comparison.get(key):
            lines.append(f"- {label}: " + ", ".join(f"`{name}`" for name in comparison[key]))
    lines += [
        "",
        "| configuration | metric | baseline | this run | change [95% CI] | status |",
        "|---|---|---:|---:|---:|---|",
    ]
    for d in deltas:
        interval = f" [{fmt(d['change_low'])}, {fmt(d['change_high'])}]" if d.get("change_low") is not None else ""
        lines.append(
            f"| `{d['config']}` | {d['metric']} | {fmt(d['baseline'])} | {fmt(d['current'])} | {fmt(d['change'])}{interval} | {d['status']} |"
        )
    return lines


def render_markdown(result: RunResult, blames: Sequence[Mapping[str, Any]] = ()) -> str:
    """The verdict, a configuration x metric table, failing checks, the sections the run has (quality and speed,
    blame records) and the environment."""
    suite = result.suite
    lines = [f"## {ICON['pass' if result.exit_code == 0 else 'fail']} `{suite.get('name')}`: {headline(result)}", ""]
    if suite.get("description"):
        lines += [str(suite["description"]), ""]
    lines += _table(result)
    failures = failing_checks(result)
    if failures:
        lines += ["", "### Failing checks", ""]
        for check in failures:
            lines.append(f"- {ICON[check.status]} `{check.config}` {_escape(check.check)}: {_escape(check.reason)}")
    if result.comparison:
        lines += comparison_markdown(result.comparison)
    lines += _sections(result)
    lines += blame_markdown([dict(b) for b in blames])
    if result.references:
        lines += ["", f"<sub>{_escape(references_line(result.references))}</sub>"]
    if result.phases:
        lines += ["", f"<sub>{describe_phases(result.phases)}</sub>"]
    if cpu_half_line(result.environment):
        lines += ["", f"<sub>{cpu_half_line(result.environment)}</sub>"]
    env = result.environment
    libraries = env.get("libraries", {})
    versions = ", ".join(f"{k} {v}" for k, v in libraries.items() if k in ("torch", "diffusers", "transformers"))
    lines += [
        "",
        f"<sub>run `{result.run_id}` on {env.get('device_class', '?')}; {versions}; harness {env.get('harness', '?')}</sub>",
        "",
    ]
    return "\n".join(lines)


def _table(result: RunResult) -> list[str]:
    """The configuration x metric table."""
    metrics = metric_names(result)
    header = ["configuration", "kind", "verdict", *[f"{m} mean [95% CI]" for m in metrics]]
    header += ["s/image (median)", "peak RSS MB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|"]
    for row in config_rows(result):
        cells = []
        for metric in metrics:
            cell = row.cells.get(metric)
            if cell is None:
                cells.append("-")
                continue
            text = f"{cell.text} {cell.interval}".strip() + f" (n={cell.n})"
            if not cell.reliable:
                text += " ⚠️ unreliable"
            if cell.status in ("fail", "error"):
                text = f"**{text}** ❌"
            cells.append(_escape(text))
        verdict = f"{ICON.get(row.verdict, '')} {row.verdict}"
        lines.append(
            "| " + " | ".join([f"`{row.name}`", row.kind, verdict, *cells, row.time_text, row.rss_text]) + " |"
        )
    return lines


def speed_table(result: RunResult) -> list[str]:
    """Quality and speed: each timed configuration's speedup with its interval, warm-up apart from the steady
    state, its gated metrics' means, and whether it is on their Pareto front."""
    rows = speed_rows(result)
    if not rows:
        return []
    metrics = gated_metrics(result)
    header = ["configuration", "speedup [95% CI]", "n calls", "warm-up s/image", "steady s/image"]
    header += [f"{m} mean" for m in metrics] + ["Pareto front", "did it apply?"]
    lines = ["", "### Quality and speed", ""]
    lines += ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 3) + "---|---|"]
    for row in rows:
        means = [fmt(row.means.get(m)) for m in metrics]
        front = ", ".join(row.front) or "-"
        noop = "(base)" if row.is_base else _escape("no: " + "; ".join(row.noop)) if row.noop else "yes"
        cells = [f"`{row.name}`", row.speedup_text, str(row.n), fmt(row.warmup_image_s), fmt(row.image_s)]
        lines.append("| " + " | ".join([*cells, *means, front, noop]) + " |")
    bases = ", ".join(sorted({f"`{row.vs}`" for row in rows}))
    lines += [
        "",
        f"<sub>speedup: the median s/image of its base ({bases}) over its own, warm-up calls left out; the unit is "
        "one timed call (a batch)</sub>",
    ]
    return lines


def _sections(result: RunResult) -> list[str]:
    """Quality and speed, sequential sampling, streaming equivalences and boundary casts, where the run has them."""
    lines: list[str] = speed_table(result)
    sequential = sequential_headline(result)
    if sequential:
        lines += ["", "### Sequential sampling", "", sequential[0].upper() + sequential[1:], ""]
        lines += [
            f"- `{row.name}`: {row.samples_text} samples, {_escape(row.stop_text)}"
            for row in config_rows(result)
            if row.sequential
        ]
    equivalences = [(row.name, row.equivalence) for row in config_rows(result) if row.equivalence]
    if equivalences:
        lines += ["", "### Same images as the plain configuration", ""]
        lines += [f"- `{name}`: {text}" for name, text in equivalences]
    casts = [(c.name, list(c.notes["boundary_casts"])) for c in result.configs if c.notes.get("boundary_casts")]
    if casts:
        lines += ["", "### Casts inserted at component boundaries", ""]
        lines += [f"- `{name}`: " + "; ".join(f"`{line}`" for line in items) for name, items in casts]
    return lines
