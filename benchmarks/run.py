"""Benchmarks that print tables: `python benchmarks/run.py [suite|overhead|all]`.

- suite: wall time of `python -m harness run suites/smoke.toml` (what `nox -s evaluate` runs),
  as a fresh process, imports included, three times.
- overhead: the harness generating the smoke suite's images vs a plain diffusers loop
  producing the same images (same pipeline copies, latents and calls), side by side in
  one process, then scoring and reporting on top.
Nothing here is asserted; the numbers go into the README with the machine they came from.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
console = Console()


def bench_suite(repeats: int = 3) -> None:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "harness", "run", "suites/smoke.toml", "--out", out],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - start)
    table = Table(title="`python -m harness run suites/smoke.toml` (nox -s evaluate's suite), fresh process")
    table.add_column("runs")
    table.add_column("median s", justify="right")
    table.add_column("min s", justify="right")
    table.add_column("max s", justify="right")
    table.add_row(str(repeats), f"{statistics.median(times):.1f}", f"{min(times):.1f}", f"{max(times):.1f}")
    console.print(table)


def bench_overhead(repeats: int = 3) -> None:
    import torch

    from harness.configs import default_kinds
    from harness.configs.casting import CastLog, apply_precision
    from harness.configs.pipeline import copy_pipeline
    from harness.environment import quiet_libraries
    from harness.generate import plan
    from harness.metrics import default_metrics
    from harness.report import write_reports
    from harness.runner import Runner, RunRequest
    from harness.suite import load_suite

    quiet_libraries()
    kinds, metrics = default_kinds(), default_metrics()
    suite = load_suite(ROOT / "suites" / "smoke.toml", kinds, metrics)
    runner = Runner(kinds, metrics, Console(file=open(os.devnull, "w")))  # noqa: SIM115
    gen = suite.generation

    def plain_loop() -> float:
        """What a user would write by hand: copy + cast the pipeline per configuration, one call per image."""
        from harness.pipelines.source import load_pipeline

        loaded = load_pipeline(suite.pipeline, None)  # type: ignore[arg-type]
        start = time.perf_counter()
        for spec in suite.configs:
            pipe = copy_pipeline(loaded.pipe)
            apply_precision(pipe, spec.options.precision, CastLog())
            for _, prompt, seed in suite.samples():
                latents = loaded.family.initial_latents(pipe, [seed], gen.height, gen.width)
                with torch.inference_mode():
                    pipe(
                        prompt=[prompt],
                        num_inference_steps=gen.steps,
                        guidance_scale=gen.guidance,
                        height=gen.height,
                        width=gen.width,
                        generator=[torch.Generator("cpu").manual_seed(seed)],
                        latents=latents,
                        output_type="np",
                    )
        return time.perf_counter() - start

    def harness_generate() -> float:
        from harness.runner import BaseLoader

        loader = BaseLoader(suite)
        loader()
        with tempfile.TemporaryDirectory() as temporary:
            work = Path(temporary)
            context = runner._context(RunRequest(suite), "cpu", loader, work)
            start = time.perf_counter()
            for spec in suite.configs:
                runner.generate_config(
                    spec, plan(suite, spec.name), context, work / spec.name, work, None, lambda n: None
                )
            return time.perf_counter() - start

    def harness_full() -> tuple[float, float]:
        with tempfile.TemporaryDirectory() as temporary:
            start = time.perf_counter()
            output = runner.run(RunRequest(suite, out_dir=Path(temporary), batch_size=1, use_cache=False))
            run_s = time.perf_counter() - start
            start = time.perf_counter()
            write_reports(output.result, output.run_dir)
            return run_s, time.perf_counter() - start

    plain_loop()  # warm-up: first calls allocate and JIT-select kernels
    rows = {"plain": [], "harness_generate": [], "harness_run": [], "reports": []}
    for _ in range(repeats):
        rows["plain"].append(plain_loop())
        rows["harness_generate"].append(harness_generate())
        run_s, report_s = harness_full()
        rows["harness_run"].append(run_s)
        rows["reports"].append(report_s)
    plain = statistics.median(rows["plain"])
    table = Table(
        title=f"harness overhead on suites/smoke.toml ({len(suite.configs)} configs x {len(suite.samples())} images), median of {repeats}"
    )
    table.add_column("what")
    table.add_column("median s", justify="right")
    table.add_column("vs plain loop", justify="right")
    labels = {
        "plain": "plain diffusers loop (generation only)",
        "harness_generate": "harness generation (copies, casts, PNGs, memory sampling)",
        "harness_run": "harness run (generation + verify + scoring PSNR/SSIM + results.json)",
        "reports": "reports (HTML with charts, Markdown, JUnit)",
    }
    for key, label in labels.items():
        value = statistics.median(rows[key])
        table.add_row(label, f"{value:.2f}", f"{value / plain:.3f}x")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="?", default="all", choices=("suite", "overhead", "all"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import platform

    console.print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    if args.which in ("suite", "all"):
        bench_suite(args.repeats)
    if args.which in ("overhead", "all"):
        bench_overhead(args.repeats)


if __name__ == "__main__":
    main()
