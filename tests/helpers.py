"""What the end-to-end tests share: a suite head for one-kind suites, bless + run, reading results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.cli import main

REPO = Path(__file__).resolve().parent.parent  # the checkout: suites/, reference_images/, docs/


# Two held-out captions of the shapes world (its generator never saw them), for small suites on it.
SHAPES_PROMPTS = (
    "a blue square in the center and a yellow star on the left",
    "a purple circle in the center and a green triangle at the bottom",
)


def suite_head(
    name: str,
    *,
    pipeline: str = "builtin:tiny-sd",
    prompts: Sequence[str] = ("a red circle",),
    seeds: Sequence[int] = (0,),
    steps: int = 2,
    size: int = 32,
) -> str:
    """The top of a small suite with an fp32 reference, the one every test suite starts from; the test appends its
    metrics, thresholds and configurations."""
    return (
        f'name = "{name}"\npipeline = "{pipeline}"\nreference = "fp32"\nprompts = {json.dumps(list(prompts))}\n'
        f"seeds = {json.dumps(list(seeds))}\nsteps = {steps}\nwidth = {size}\nheight = {size}\n"
    )


# A two-sample tiny suite with an fp32 reference; a test appends its configurations.
KIND_SUITE_HEAD = """
name = "{name}"
pipeline = "{pipeline}"
reference = "fp32"
prompts = ["a red circle", "a blue square on the left"]
seeds = [0]
steps = 2
width = 32
height = 32
[metrics]
psnr = {{}}
[thresholds]
psnr = {{ min = 25 }}
[configs.fp32]
"""


def read_results(out: Path) -> dict[str, Any]:
    return json.loads((Path(out) / "results.json").read_text())


def configs_by_name(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in results["configs"]}


def bless_and_run(
    path: Path, out: Path, *run_args: str, bless_args: tuple[str, ...] = ()
) -> tuple[int, dict[str, Any]]:
    """Bless ``path``'s references (which must succeed), run it into ``out``; the exit code and results."""
    assert main(["bless", str(path), *bless_args]) == 0
    code = main(["run", str(path), "--out", str(out), *run_args])
    return code, read_results(out)
