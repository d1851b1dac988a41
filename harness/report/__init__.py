"""Reports of a run: HTML, Markdown, JUnit (and the console summary in :mod:`.console`)."""

from __future__ import annotations

from pathlib import Path

from harness.results import RunResult


def write_reports(result: RunResult, run_dir: Path) -> dict[str, Path]:
    """Write report.html, summary.md and junit.xml into ``run_dir``; returns their paths."""
    from harness.report.blame import read_blames
    from harness.report.html import render_html
    from harness.report.junit import render_junit
    from harness.report.markdown import render_markdown

    blames = read_blames(run_dir)  # what `python -m harness blame` wrote into the run folder
    paths = {"html": run_dir / "report.html", "markdown": run_dir / "summary.md", "junit": run_dir / "junit.xml"}
    paths["markdown"].write_text(render_markdown(result, blames), encoding="utf-8")
    paths["junit"].write_text(render_junit(result), encoding="utf-8")
    paths["html"].write_text(render_html(result, run_dir, blames), encoding="utf-8")
    return paths
