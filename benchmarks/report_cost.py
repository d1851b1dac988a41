"""The HTML report's own cost at GPU-suite size: `python benchmarks/report_cost.py [--size 512] [--repeats 3]`.

Writes ``--samples`` x ``--configs`` synthetic images (a smooth scene plus noise, the
references the same scene) at ``--size`` px, with per-sample PSNR, and times
``render_html`` in this process, ``--repeats`` times. Prints the median with its range.
Nothing is asserted; the figures go into docs/performance.md with the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.report.html import render_html  # noqa: E402
from harness.results import STATUS_OK, ConfigResult, MetricSummary, RunResult, SampleResult  # noqa: E402
from harness.samples import sample_key, save_png  # noqa: E402


def scene(size: int, index: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    phase = index * 0.7
    channels = [np.sin(6 * x + phase) * np.cos(4 * y - phase), np.sin(9 * y + phase), np.cos(5 * (x + y) + phase)]
    return ((np.stack(channels, axis=2) + 1.0) * 127.5).astype(np.uint8)


def synthetic_run(run_dir: Path, samples: int, configs: int, size: int) -> RunResult:
    rng = np.random.default_rng(0)
    results = []
    for index in range(samples):
        save_png(scene(size, index), run_dir / "images" / "reference" / f"{sample_key(index, 0)}.png")
    for number in range(configs):
        name = f"config{number}"
        rows = []
        for index in range(samples):
            key = sample_key(index, 0)
            noise = rng.normal(0.0, 2.0 + 3 * number, (size, size, 3))
            image = np.clip(scene(size, index) + noise, 0, 255).astype(np.uint8)
            save_png(image, run_dir / "images" / name / f"{key}.png")
            rows.append(
                SampleResult(
                    key=key,
                    prompt_index=index,
                    prompt=f"prompt {index}",
                    seed=0,
                    image=f"images/{name}/{key}.png",
                    seconds=0.1,
                    nonfinite_fraction=0.0,
                    blank=False,
                    metrics={"psnr": float(40 - number * 3 + rng.normal())},
                )
            )
        values = [row.metrics["psnr"] for row in rows]
        summary = MetricSummary("psnr", "dB", True, "pair", len(values), float(np.mean(values)))
        results.append(
            ConfigResult(
                name=name,
                kind="precision",
                status=STATUS_OK,
                samples=tuple(rows),
                summaries=(summary,),
                timing={"median_image_s": 0.1, "images": samples},
                memory={"peak_gpu_allocated_mb": 2000.0 + number},
            )
        )
    suite = {
        "name": "report_cost",
        "pipeline": {"kind": "synthetic", "location": "-"},
        "prompts": [f"prompt {index}" for index in range(samples)],
        "seeds": [0],
        "generation": {"steps": 20, "width": size, "height": size, "guidance": 7.5},
    }
    return RunResult(suite=suite, run_id="bench", started="now", configs=tuple(results), exit_code=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--configs", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        run_dir = Path(temporary)
        result = synthetic_run(run_dir, args.samples, args.configs, args.size)
        render_html(result, run_dir)  # warm-up: imports, matplotlib's first figure
        times, size = [], 0
        for _ in range(args.repeats):
            start = time.perf_counter()
            size = len(render_html(result, run_dir))
            times.append(time.perf_counter() - start)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs: report of {args.configs} configs x {args.samples} samples at "
        f"{args.size} px: median {statistics.median(times):.2f} s [{min(times):.2f}, {max(times):.2f}] over "
        f"{args.repeats} repeats; HTML {size / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
