"""The rich summary table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from harness.report.model import config_rows, failing_checks, headline, metric_header, metric_names, references_line
from harness.report.speed import speed_rows
from harness.results import ERROR, FAIL, PASS, SKIPPED, XFAIL, RunResult

STYLE = {PASS: "green", FAIL: "bold red", ERROR: "bold red", SKIPPED: "yellow", XFAIL: "magenta", "ok": "green"}


LOG_WIDTH = 200  # columns when writing to a pipe or a CI log, where rich would otherwise cut tables to 80


def make_console(stderr: bool = False) -> Console:
    """A console for a terminal, or full-width plain lines for a pipe or a CI log (``COLUMNS`` wins)."""
    import os
    import sys

    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and not os.environ.get("COLUMNS")
    return Console(stderr=stderr, width=LOG_WIDTH if wide else None)


def print_summary(result: RunResult, console: Console) -> None:
    """Configurations x metrics, timing and memory, then every failing check with its reason."""
    metrics = metric_names(result)
    table = Table(title=f"suite {result.suite.get('name', '?')}", header_style="bold", show_lines=False)
    table.add_column("configuration")
    table.add_column("kind")
    table.add_column("verdict")
    for metric in metrics:
        table.add_column(metric_header(result, metric), justify="right")
    table.add_column("s/image (median)", justify="right")
    speed = {row.name: row for row in speed_rows(result)}
    if speed:
        table.add_column("speedup [95% CI]", justify="right")
    table.add_column("peak RSS MB", justify="right")
    table.add_column("checks", justify="right")
    for row in config_rows(result):
        style = STYLE.get(row.verdict, "")
        cells = []
        for metric in metrics:
            cell = row.cells.get(metric)
            if cell is None:
                cells.append("-")
            else:
                text = cell.text if cell.reliable else f"{cell.text} (unreliable)"
                cells.append(f"[{STYLE.get(cell.status, '')}]{text}[/]" if cell.status else text)
        table.add_row(
            row.name,
            row.kind,
            f"[{style}]{row.verdict}[/]",
            *cells,
            row.time_text,
            *([speed[row.name].speedup_text if row.name in speed else "-"] if speed else []),
            row.rss_text,
            f"{row.passed}/{len(row.checks)}",
        )
    console.print(table)
    for check in failing_checks(result):
        console.print(
            f"[{STYLE[check.status]}]{check.status.upper()}[/] {check.config}: {check.check}: {check.reason}",
            highlight=False,
        )
    style = "bold green" if result.exit_code == 0 else "bold red"
    console.print(f"[{style}]{headline(result)}[/]", highlight=False)
    if result.references:
        console.print(references_line(result.references), style="dim", highlight=False)
    if result.phases:
        from harness.phases import describe

        console.print(describe(result.phases), style="dim", highlight=False)
