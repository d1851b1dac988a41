"""Benchmarks that print tables: `python benchmarks/run.py [suite|overhead|all] [--overhead-suite S] [--device D]`.

- suite: wall time of `python -m harness run suites/smoke.toml` (what `nox -s evaluate` runs), as a fresh
  process with imports, three times.
- overhead: a plain diffusers loop (copy + cast the pipeline per configuration, one call per image) against
  the harness generating the same images (batch size 1, cache off), and the harness with automatic
  batching, side by side in one process. Metrics are excluded; scoring and reports are timed separately
  on the CPU suite.
Nothing here is asserted; the numbers go into docs/performance.md with the machine they came from.
"""

from __future__ import annotations

import argparse
import os
import platform
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
console = Console(width=140)


def bench_suite(repeats: int) -> None:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "harness", "run", "suites/smoke.toml", "--out", out, "--no-cache"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - start)
    table = Table(
        title="`python -m harness run suites/smoke.toml --no-cache`, fresh process (what nox -s evaluate runs)"
    )
    for column in ("runs", "median s", "min s", "max s"):
        table.add_column(column, justify="right")
    table.add_row(str(repeats), f"{statistics.median(times):.1f}", f"{min(times):.1f}", f"{max(times):.1f}")
    console.print(table)


def bench_overhead(suite_path: Path, device: str, repeats: int, full: bool) -> None:
    import torch

    from harness.environment import quiet_libraries, resolve_device
    from harness.generate.generator import ConfigGenerator, plan
    from harness.generate.workbench import BaseLoader, make_context
    from harness.kinds.casting import CastLog, apply_precision
    from harness.kinds.pipeline import copy_pipeline
    from harness.plan.suite import load_suite
    from harness.registry import build_registry

    quiet_libraries()
    device = resolve_device(device)
    registry = build_registry()
    suite = load_suite(suite_path, registry)
    loader = BaseLoader(suite, registry)
    loaded = loader()
    gen = suite.generation
    images = len(suite.samples()) * len(suite.configs)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def plain_loop() -> dict[str, float]:
        """What a user writes by hand: copy + cast the pipeline per configuration, one call per image."""
        parts = {"setup": 0.0, "calls": 0.0}
        start = time.perf_counter()
        for spec in suite.configs:
            setup = time.perf_counter()
            pipe = copy_pipeline(loaded.pipe)
            apply_precision(pipe, spec.options.precision, CastLog())
            pipe.to(device)
            sync()
            parts["setup"] += time.perf_counter() - setup
            calls = time.perf_counter()
            for _, prompt, seed in suite.samples():
                latents = loaded.family.initial_latents(pipe, [seed], gen.height, gen.width)
                with torch.no_grad():
                    pipe(
                        prompt=[prompt],
                        num_inference_steps=gen.steps,
                        guidance_scale=gen.guidance,
                        height=gen.height,
                        width=gen.width,
                        generator=[torch.Generator("cpu").manual_seed(seed)],
                        latents=latents.to(device) if latents is not None else None,
                        output_type="np",
                        **loaded.family.call_kwargs(),
                    )
            sync()
            parts["calls"] += time.perf_counter() - calls
            del pipe
        return {"total": time.perf_counter() - start, **parts}

    def harness(batch_size: int | None) -> dict[str, float]:
        parts = {"setup": 0.0, "calls": 0.0}
        with tempfile.TemporaryDirectory() as temporary:
            work = Path(temporary)
            context = make_context(suite, device, loader, work / "cache", work)
            generator = ConfigGenerator(registry.kinds, None, suite, device, loader)
            start = time.perf_counter()
            for spec in suite.configs:
                result = generator.generate(
                    spec, plan(suite, spec.name), context, work / spec.name, work, batch_size, lambda n: None
                )
                assert result.status == "ok", result.message
                parts["setup"] += result.timing["load_s"]
                parts["calls"] += sum(batch.wall_s for batch in result.batches)
            sync()
            return {"total": time.perf_counter() - start, **parts}

    auto = (
        ConfigGenerator(registry.kinds, None, suite, device, loader).batch_size(suite.configs[0], None)
        if suite.generation.batch_size is None
        else 8
    )
    variants = {"plain": plain_loop, "harness": lambda: harness(1), "batched": lambda: harness(auto)}
    plain_loop()  # warm-up: kernels, allocator
    rows: dict[str, list[dict[str, float]]] = {key: [] for key in variants}
    order = list(variants)
    for repeat in range(repeats):
        # rotate the order each repeat (plain, harness, batched; harness, batched, plain; ...): no variant
        # always runs first after the previous repeat, or right after the same neighbour
        for key in order[repeat % 3 :] + order[: repeat % 3]:
            rows[key].append(variants[key]())
    table = Table(
        title=f"{suite.name} on {device}: {len(suite.configs)} configs x {len(suite.samples())} images, "
        f"{repeats} interleaved repeats, order rotated"
    )
    columns = ("what", "median s", "images/s", "vs plain loop: median of the repeats' ratios", "[min, max]")
    for column in columns:
        table.add_column(column, justify="right" if column != "what" else "left")
    labels = {
        "plain": "plain diffusers loop, batch 1",
        "harness": "harness generation, batch 1 (copies, casts, PNGs, memory, no cache)",
        "batched": f"harness generation, batch {auto}",
    }
    for key, label in labels.items():
        totals = [row["total"] for row in rows[key]]
        value = statistics.median(totals)
        # each repeat's ratio against the plain loop of the same repeat: drift between repeats cancels
        ratios = [mine["total"] / plain["total"] for mine, plain in zip(rows[key], rows["plain"], strict=True)]
        table.add_row(
            label,
            f"{value:.2f}",
            f"{images / value:.2f}",
            f"{statistics.median(ratios):.3f}x",
            f"[{min(ratios):.3f}, {max(ratios):.3f}]",
        )
    console.print(table)
    parts = Table(title="where the time goes (medians over the repeats, s)")
    for column in ("what", "setup: copy, cast, place", "generation calls", "the rest: images, files, memory, timing"):
        parts.add_column(column, justify="right" if column != "what" else "left")
    for key, label in labels.items():
        setup = statistics.median(row["setup"] for row in rows[key])
        calls = statistics.median(row["calls"] for row in rows[key])
        rest = statistics.median(row["total"] - row["setup"] - row["calls"] for row in rows[key])
        parts.add_row(label, f"{setup:.2f}", f"{calls:.2f}", f"{rest:.2f}")
    console.print(parts)
    console.print(
        "seconds per repeat: " + ", ".join(f"{k}={[round(row['total'], 2) for row in rows[k]]}" for k in rows)
    )
    if full:
        bench_run(suite_path, repeats)


def bench_run(suite_path: Path, repeats: int) -> None:
    """Scoring and reports on top of generation (needs blessed references)."""
    from harness.plan.suite import load_suite
    from harness.registry import build_registry
    from harness.report import write_reports
    from harness.runner import Runner, RunRequest

    registry = build_registry()
    suite = load_suite(suite_path, registry)
    runner = Runner(registry, Console(file=open(os.devnull, "w")))  # noqa: SIM115
    rows: dict[str, list[float]] = {"generate": [], "score": [], "report": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as temporary:
            output = runner.run(RunRequest(suite, out_dir=Path(temporary), use_cache=False, reports=False))
            rows["generate"].append(
                sum(c.timing.get("generate_s", 0.0) + c.timing.get("load_s", 0.0) for c in output.result.configs)
            )
            rows["score"].append(sum(c.timing.get("scoring_s", 0.0) for c in output.result.configs))
            start = time.perf_counter()
            write_reports(output.result, output.run_dir)
            rows["report"].append(time.perf_counter() - start)
    table = Table(title=f"{suite.name}: where a whole run's time goes (median of {repeats})")
    for column in ("phase", "median s"):
        table.add_column(column)
    for key, label in (
        ("generate", "build + generate (all configurations)"),
        ("score", "scoring (all metrics, all configurations)"),
        ("report", "reports: HTML with charts, Markdown, JUnit"),
    ):
        table.add_row(label, f"{statistics.median(rows[key]):.2f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="?", default="all", choices=("suite", "overhead", "all"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--overhead-suite", type=Path, default=ROOT / "suites" / "smoke.toml")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-full", action="store_true", help="skip the scoring/report breakdown")
    args = parser.parse_args()
    console.print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    if args.which in ("suite", "all"):
        bench_suite(args.repeats)
    if args.which in ("overhead", "all"):
        bench_overhead(args.overhead_suite, args.device, args.repeats, full=not args.no_full)


if __name__ == "__main__":
    main()
