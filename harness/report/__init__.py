"""Reports of a run: HTML, Markdown, JUnit (and the console summary in :mod:`.console`)."""

from __future__ import annotations

from pathlib import Path

from harness.results import RunResult


def write_reports(result: RunResult, run_dir: Path) -> dict[str, Path]:
    """Write report.html, summary.md and junit.xml into ``run_dir``; returns their paths."""
    from harness.report.html import render_html
    from harness.report.junit import render_junit
    from harness.report.markdown import render_markdown

    paths = {"html": run_dir / "report.html", "markdown": run_dir / "summary.md", "junit": run_dir / "junit.xml"}
    paths["markdown"].write_text(render_markdown(result), encoding="utf-8")
    paths["junit"].write_text(render_junit(result), encoding="utf-8")
    paths["html"].write_text(render_html(result, run_dir), encoding="utf-8")
    return paths
