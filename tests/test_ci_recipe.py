"""The documented GitHub Actions recipe parses, and the harness commands it runs are ones the CLI accepts."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from harness.cli import build_parser

RECIPE = Path(__file__).resolve().parent.parent / "docs" / "github-actions.yml"


def test_recipe_parses_and_its_commands_are_valid():
    workflow = yaml.safe_load(RECIPE.read_text())
    steps = workflow["jobs"]["evaluate"]["steps"]
    commands = [
        line.strip() for step in steps for line in str(step.get("run", "")).splitlines() if "python -m harness" in line
    ]
    assert any("--baseline" in c for c in commands) and any("--baseline" not in c for c in commands)
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command)[3:]  # after "python -m harness"
        arguments = parser.parse_args(argv)
        assert arguments.no_cache and arguments.timing_repeats >= 1  # the one documented way to measure for real
        assert arguments.references == "live"  # margins from this runner's own reference images
        assert (arguments.command == "run" and Path(arguments.suite).is_file()) or (
            RECIPE.parent.parent / arguments.suite
        ).is_file()
    names = [step.get("name", "") for step in steps]
    assert "Post the summary" in names and "Upload the report" in names
    assert any("GITHUB_STEP_SUMMARY" in str(step.get("run", "")) for step in steps)
