"""The workflow as plain steps: `nox -s evaluate`, `nox -s tests`, `nox -s lint`, `nox -s benchmark`."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["evaluate"]
nox.options.reuse_venv = "yes"

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@nox.session
def evaluate(session: nox.Session) -> None:
    """Run a suite (default: the trained shapes world, offline), print the summary and the report path.

    `nox -s evaluate -- suites/gguf.toml --config q8_0` passes arguments to `harness run`.
    """
    session.log("installing the harness and its dependencies (a few minutes the first time: torch is large)")
    session.install("-e", ".", silent=False)
    args = session.posargs or ["suites/shapes.toml"]
    env = {**OFFLINE, **{k: v for k, v in os.environ.items() if k.startswith("HF_")}}
    session.run("python", "-m", "harness", "run", *args, env=env)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, offline."""
    session.log("installing the harness with its test extras (a few minutes the first time: torch is large)")
    session.install("-e", ".[test]", silent=False)
    session.run("python", "-m", "pytest", *session.posargs, env=OFFLINE)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "harness", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "harness", "tests", "noxfile.py")
    session.run("mypy", "harness")


@nox.session
def benchmark(session: nox.Session) -> None:
    """Benchmarks that print tables (wall time of the default suite, harness overhead, ...)."""
    session.install("-e", ".[test]")
    session.run("python", "benchmarks/run.py", *session.posargs, env=OFFLINE)
