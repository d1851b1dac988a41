"""The workflow as plain steps: `nox -s evaluate`, `nox -s families`, `nox -s tests`, `nox -s lint`, `nox -s benchmark`.

Every session runs in one shared environment, `.nox/harness` (created on first use with
virtualenv, which nox brings): torch alone makes an environment about 6 GB, and the
README's two commands used to build two of them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

nox.options.sessions = ["evaluate"]
nox.options.reuse_venv = "yes"

SHARED = Path(__file__).resolve().parent / ".nox" / "harness"

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def shared(session: nox.Session, extras: str = "test") -> str:
    """Create (once) and update the shared environment with the harness and ``extras``; its Python."""
    python = SHARED / "bin" / "python"
    if not python.exists():
        session.run(sys.executable, "-m", "virtualenv", "-q", str(SHARED), external=True)
    session.log(f"installing the harness into {SHARED} (a few minutes the first time: torch is large)")
    session.run(str(python), "-m", "pip", "install", "-e", f".[{extras}]", external=True, silent=False)
    return str(python)


@nox.session(venv_backend="none")
def evaluate(session: nox.Session) -> None:
    """Run a suite (default: the trained shapes world, offline), print the summary and the report path.

    `nox -s evaluate -- suites/gguf.toml --config q8_0` passes arguments to `harness run`.
    """
    python = shared(session)
    args = session.posargs or ["suites/shapes.toml"]
    env = {**OFFLINE, **{k: v for k, v in os.environ.items() if k.startswith("HF_")}}
    session.run(python, "-m", "harness", "run", *args, env=env, external=True)


FAMILY_SUITES = (
    "suites/flux_gguf.toml",
    "suites/sd3_precision.toml",
    "suites/sdxl_vae_fp16.toml",
    "suites/sana_precision.toml",
    "suites/shapes_faults.toml",
    "suites/video_tiny.toml",
    "suites/video_ltx.toml",
)


@nox.session(venv_backend="none")
def families(session: nox.Session) -> None:
    """The trained worlds' family suites (FLUX.1, SD3, SDXL, Sana, SD1.x) and the tiny video ones (Wan, LTX): every shipped
    type passes, every fault fails.

    About 4 minutes on 2 cores. `nox -s families -- --config q4_k` passes arguments to each `harness run`.
    """
    python = shared(session)
    env = {**OFFLINE, **{k: v for k, v in os.environ.items() if k.startswith("HF_")}}
    for suite in FAMILY_SUITES:
        session.run(python, "-m", "harness", "run", suite, *session.posargs, env=env, external=True)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The test suite, offline."""
    python = shared(session)
    session.run(python, "-m", "pytest", *session.posargs, env=OFFLINE, external=True)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff and mypy."""
    python = shared(session, "test,lint")
    session.run(python, "-m", "ruff", "check", "harness", "training", "tests", "noxfile.py", external=True)
    session.run(python, "-m", "ruff", "format", "--check", "harness", "training", "tests", "noxfile.py", external=True)
    session.run(python, "-m", "mypy", "harness", "training", external=True)


@nox.session(venv_backend="none")
def benchmark(session: nox.Session) -> None:
    """Benchmarks that print tables (wall time of the default suite, harness overhead, ...)."""
    python = shared(session)
    session.run(python, "benchmarks/run.py", *session.posargs, env=OFFLINE, external=True)
