"""The harness's wall time on the cost suite against a plain diffusers script doing the same generation.

Each repeat runs, as fresh processes and in alternating order, ``benchmarks/gpu/plain_script.py``
and ``python -m harness run benchmarks/suites/gpu_sd15_cost.toml --no-cache``. A first
harness run, reported on its own, writes the GGUF file the plain script reads and fills
the reference caches (features and values) that later runs use.

Usage (after ``make_sd15.py /tmp/sd15-random`` and ``harness bless``):
    python benchmarks/gpu/wall_vs_plain.py --repeats 3 [--cache-dir /tmp/cc] [--json OUT.json]
Prints a table of medians with [min, max]; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent.parent
SUITE = ROOT / "benchmarks" / "suites" / "gpu_sd15_cost.toml"


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: a gate failed, which still measures the run
        raise SystemExit(f"{command[1:4]} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return wall, done.stdout


def harness_run(cache_dir: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "harness", "run", str(SUITE), "--no-cache", "--cache-dir", str(cache_dir)]
        wall, _ = timed([*command, "--out", out])
        phases = json.loads((Path(out) / "results.json").read_text())["phases"]
    return {"wall_s": wall, **phases}


def plain_run(model: str, gguf_file: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        wall, stdout = timed(
            [sys.executable, str(ROOT / "benchmarks" / "gpu" / "plain_script.py"), model, str(gguf_file), out]
        )
    return {"wall_s": wall, **json.loads(stdout.strip().splitlines()[-1])}


def spread(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="/tmp/sd15-random")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/cc"))
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()

    first = harness_run(args.cache_dir)
    (gguf_file,) = sorted(args.cache_dir.glob("gguf/*/unet-Q8_0.gguf"))
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "harness": []}
    for repeat in range(args.repeats):
        order = ("plain", "harness") if repeat % 2 == 0 else ("harness", "plain")
        for what in order:
            runs[what].append(plain_run(args.model, gguf_file) if what == "plain" else harness_run(args.cache_dir))
            if args.json:  # after every run: a run cut short keeps what it measured
                args.json.write_text(json.dumps({"first_harness_run": first, **runs}, indent=1))

    console = Console(width=160)
    table = Table(title=f"cost suite: {args.repeats} interleaved repeats, fresh processes, median [min, max]")
    for column in ("what", "wall s", "generation s", "wall / generation", "wall / plain script's wall"):
        table.add_column(column, justify="right" if column != "what" else "left")
    plain_walls = [run["wall_s"] for run in runs["plain"]]
    for what in ("plain", "harness"):
        walls = [run["wall_s"] for run in runs[what]]
        generation = [run["generate_s"] for run in runs[what]]
        table.add_row(
            "plain diffusers script" if what == "plain" else "harness run --no-cache, 4 metrics, report",
            spread(walls, 1),
            spread(generation, 1),
            spread([w / g for w, g in zip(walls, generation, strict=True)]),
            spread([w / p for w, p in zip(walls, plain_walls, strict=True)], 3),
        )
    console.print(table)
    console.print(f"first harness run (GGUF file written, reference caches filled): {json.dumps(first)}")
    for what, rows in runs.items():
        for row in rows:
            console.print(f"{what}: {json.dumps(row)}")


if __name__ == "__main__":
    main()
