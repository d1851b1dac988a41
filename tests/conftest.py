"""Shared fixtures: small suites written into temporary folders."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_SUITE = """
name = "{name}"
pipeline = "builtin:tiny-sd"
reference = "fp32"
prompts = ["a red circle", "a blue square on the left"]
seeds = [0]
steps = 2
width = 32
height = 32
guidance = 3.0

[metrics]
psnr = {{}}
ssim = {{}}

[thresholds]
psnr = {{ min = 30 }}

[configs.fp32]
dtype = "float32"

[configs.bf16]
dtype = "bfloat16"
"""


@pytest.fixture
def write_suite(tmp_path: Path) -> Callable[..., Path]:
    """Write a suite TOML (and extra files) into a temp folder; returns the suite path."""

    def write(body: str | None = None, name: str = "tiny", files: dict[str, str] | None = None) -> Path:
        suites = tmp_path / "suites"
        suites.mkdir(exist_ok=True)
        for relative, content in (files or {}).items():
            target = suites / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(content))
        path = suites / f"{name}.toml"
        text = TINY_SUITE.format(name=name) if body is None else textwrap.dedent(body)
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="session")
def registry():
    """The registry a command builds: the core's entries and the bundled plug-in's."""
    from harness.registry import build_registry

    return build_registry()


@pytest.fixture
def kinds(registry):
    return registry.kinds


@pytest.fixture
def metrics(registry):
    return registry.metrics
