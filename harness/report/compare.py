"""Rendering a baseline comparison: console table, comparison.md and comparison.html."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.judge.compare import Comparison
from harness.report.markdown import comparison_markdown
from harness.report.model import fmt
from harness.results import RunResult

STYLE = {"regressed": "bold red", "improved": "green", "pass": "", "untested": "yellow"}


def print_comparison(comparison: Comparison, console: Console) -> None:
    table = Table(title=f"vs baseline {comparison.baseline.get('run_id')}", header_style="bold")
    for column in ("configuration", "metric", "baseline", "this run", "change [95% CI]", "status"):
        table.add_column(column)
    for d in comparison.deltas:
        interval = f" [{fmt(d.change_low)}, {fmt(d.change_high)}]" if d.change_low is not None else ""
        style = STYLE.get(d.status, "")
        table.add_row(
            d.config,
            d.metric,
            fmt(d.baseline),
            fmt(d.current),
            fmt(d.change) + interval,
            f"[{style}]{d.status}[/]" if style else d.status,
        )
    console.print(table)
    for name in comparison.new_configs:
        console.print(f"new in this run: {name}", highlight=False)
    for name in comparison.removed_configs:
        console.print(f"gone from this run: {name}", highlight=False)
    for d in comparison.regressions:
        console.print(f"[bold red]REGRESSION[/] {d.config}: {d.tolerance}: {d.reason}", highlight=False)


def write_comparison(comparison: Comparison, current: RunResult, out: Path) -> dict[str, Path]:
    from jinja2 import Environment, PackageLoader, select_autoescape

    out.mkdir(parents=True, exist_ok=True)
    data = comparison.to_dict()
    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["fmt"] = fmt
    html = env.get_template("comparison.html.j2").render(
        suite=current.suite,
        current=current,
        comparison=data,
        regressions=len(comparison.regressions),
        passed=not comparison.regressions,
        metrics=sorted({d.metric for d in comparison.deltas}),
    )
    paths = {"html": out / "comparison.html", "markdown": out / "comparison.md"}
    paths["html"].write_text(html, encoding="utf-8")
    paths["markdown"].write_text("\n".join(comparison_markdown(data)) + "\n", encoding="utf-8")
    return paths
