"""Can the speed and memory gates fire, and do they stay quiet on clean reruns? Prints a table.

One suite, one gated configuration (``cand``, identical to the reference ``ref``). A baseline
run, then interleaved runs against it, each a fresh process with the cache off:
clean reruns, a 10% denoiser slowdown (host sleeps: the device idles), a 50% slowdown
(CPU spin), rounding-sized weight noise (quality gates must stay quiet) and 200 MiB of
ballast held on the device. For each run: the verdict and change of every time and
memory metric. Nothing is asserted; the table goes into docs/regression.md.

    python benchmarks/gates.py --pipeline builtin:shapes --dtype float32 --steps 8 --size 64 \
        --prompts 4 --seeds 4 --repeats 2 --clean 5 --out benchmarks/results/gates_cpu.json
    python benchmarks/gates.py --pipeline /tmp/sd15-random --dtype float16 --steps 20 --size 512 \
        --prompts 8 --seeds 4 --repeats 2 --clean 5 --out $OUT/gates_gpu.json      # on the GPU machine

Default settings (what a user gets from `run --baseline` with no timing flags): `--repeats -1`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = [
    "a red circle on the left",
    "a blue square at the top",
    "a green triangle on the right",
    "a yellow star at the bottom",
    "a purple circle in the center",
    "an orange square on the left",
    "a white triangle at the top",
    "a black star on the right",
]
CONTROLS = {
    "clean": "",
    "slow 10% (sleep)": "harness.controls:denoiser_slowdown_10pct",
    "slow 50% (spin)": "harness.controls:denoiser_slowdown_50pct",
    "slow 2x (sleep)": "harness.controls:denoiser_slowdown_2x",
    "rounding noise": "harness.controls:denoiser_rounding_noise",
    "ballast 200 MiB": "harness.controls:device_ballast_200mib",
}
WATCH = ("psnr", "median_image_s", "median_denoiser_s", "peak_rss_mb", "gpu_resident_mb", "peak_gpu_allocated_mb")

SUITE = """
name = "gates"
pipeline = "{pipeline}"
reference = "ref"
prompts = {prompts}
seeds = {seeds}
steps = {steps}
width = {size}
height = {size}
guidance = 5.0
references = "{references}"
[metrics]
psnr = {{}}
[configs.ref]
dtype = "{dtype}"
[configs.cand]
dtype = "{dtype}"
{transform}
"""


def write_suite(folder: Path, args: argparse.Namespace, transform: str) -> Path:
    path = folder / "gates.toml"
    path.write_text(
        SUITE.format(
            pipeline=args.pipeline,
            prompts=json.dumps(PROMPTS[: args.prompts]),
            seeds=list(range(args.seeds)),
            steps=args.steps,
            size=args.size,
            dtype=args.dtype,
            references=folder / "refs",
            transform=f'transform = "{transform}"' if transform else "",
        )
    )
    return path


def harness(*argv: str) -> int:
    found = subprocess.run([sys.executable, "-m", "harness", *argv], cwd=ROOT, capture_output=True, text=True)
    if found.returncode not in (0, 1):
        print(found.stdout[-3000:], found.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"harness {argv[0]} exited {found.returncode}")
    return found.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="builtin:shapes")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument(
        "--repeats", type=int, default=2, help="--timing-repeats of every run; -1: leave it out (default settings)"
    )
    parser.add_argument("--batch-size", type=int, help="--batch-size of every run (default: the harness's)")
    parser.add_argument("--cache", action="store_true", help="leave the sample cache on (default settings)")
    parser.add_argument("--clean", type=int, default=5, help="clean reruns against the baseline")
    parser.add_argument("--controls", default=",".join(list(CONTROLS)[1:]), help="comma-separated control names")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, help="write every run's verdicts here (JSON)")
    args = parser.parse_args()
    controls = [name for name in args.controls.split(",") if name]
    # Interleave: clean, control, clean, control, ... so slow drifts of the machine hit both alike.
    order: list[str] = []
    for index in range(max(args.clean, len(controls))):
        if index < args.clean:
            order.append("clean")
        if index < len(controls):
            order.append(controls[index])
    rows = []
    with tempfile.TemporaryDirectory(prefix="gates-") as temporary:
        folder = Path(temporary)
        common = ["--config", "cand", "--device", args.device, "--cache-dir", str(folder / "cache")]
        common += [] if args.cache else ["--no-cache"]
        common += ["--timing-repeats", str(args.repeats)] if args.repeats >= 0 else []
        common += ["--batch-size", str(args.batch_size)] if args.batch_size else []
        suite = write_suite(folder, args, "")
        harness("bless", str(suite), "--device", args.device, "--cache-dir", str(folder / "cache"))
        harness("run", str(suite), "--out", str(folder / "base"), *common)
        for index, name in enumerate(order):
            suite = write_suite(folder, args, CONTROLS[name])
            out = folder / f"run{index}"
            start = time.perf_counter()
            code = harness("run", str(suite), "--out", str(out), "--baseline", str(folder / "base"), *common)
            results = json.loads((out / "results.json").read_text())
            cand = next(c for c in results["configs"] if c["name"] == "cand")
            deltas = {d["metric"]: d for d in results["comparison"]["deltas"] if d["config"] == "cand"}
            rows.append(
                {
                    "run": name,
                    "exit": code,
                    "wall_s": round(time.perf_counter() - start, 1),
                    "timed_batches": cand["timing"].get("timed_batches"),
                    "auto_timing_passes": cand["timing"].get("auto_timing_passes"),
                    "headline_speed": "speed not judged" in (out / "summary.md").read_text(),
                    "noise_pct": cand["timing"].get("noise_pct"),
                    "others_cores": cand["timing"].get("others_cores"),
                    "device_class": results["environment"]["device_class"],
                    "deltas": {m: deltas[m] for m in WATCH if m in deltas},
                    "batches": cand.get("batches", []),
                }
            )
            print(f"{name}: exit {code}", flush=True)
            if args.out:  # after every run, so a cut-off benchmark still leaves what it measured
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(
                    json.dumps({"args": vars(args) | {"out": str(args.out)}, "runs": rows}, indent=1) + "\n"
                )
    table = Table(
        title=f"gates: {args.pipeline} {args.dtype}, {args.size} px, {args.steps} steps, {rows[0]['device_class']}"
    )
    for column in ("run", "exit", "batches", "noise %", *WATCH):
        table.add_column(column, justify="right")
    for row in rows:
        cells = []
        for metric in WATCH:
            found = row["deltas"].get(metric)
            if found is None:
                cells.append("-")
                continue
            base, change = found.get("baseline"), found.get("change")
            pct = f"{100 * change / base:+.1f}%" if base and change is not None else "n/a"
            cells.append(f"{found['status']} {pct}")
        table.add_row(row["run"], str(row["exit"]), str(row["timed_batches"]), str(row["noise_pct"]), *cells)
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
