"""Quality and speed over repeated runs of one suite: the table in docs/speed.md.

    python -m harness run suites/flux_speed.toml --out /tmp/r1 --no-cache   # (repeat: r2, r3)
    python benchmarks/speed_table.py /tmp/r1/results.json /tmp/r2/results.json /tmp/r3/results.json \
        [--save benchmarks/results/flux_speed_cpu.json]

One run's speedup interval resamples that run's timed calls; across runs the machine's
speed drifts between configurations (they are timed one after another), so the table
gives the median speedup over the runs with its range, beside the interval of the
median run. Quality is the first run's (the images are the same in every run on one
machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration: the speedups of every run, the median run's interval, quality and timing."""
    rows = []
    for first in runs[0]["configs"]:
        name = first["name"]
        same = [next(c for c in run["configs"] if c["name"] == name) for run in runs]
        row: dict[str, Any] = {"config": name, "status": first["status"]}
        if first["status"] != "ok":
            row["message"] = first.get("message", "")[:200]
            rows.append(row)
            continue
        means = {m["metric"]: m["mean"] for m in first["summaries"]}
        psnr = [s["metrics"]["psnr"] for s in first["samples"] if "psnr" in s["metrics"]]
        row.update(means=means, worst_psnr=min(psnr) if psnr else None)
        records = [c.get("speed", {}).get("speedup") or {} for c in same]
        values = [r.get("value") for r in records]
        if all(v is not None for v in values):
            middle = sorted(records, key=lambda r: r["value"])[len(records) // 2]
            row.update(
                vs=middle["vs"],
                speedups=[round(v, 4) for v in values],
                median_speedup=statistics.median(values),
                interval=[middle.get("low"), middle.get("high")],
                warmup_image_s=statistics.median(r["warmup_image_s"] for r in records),
                image_s=statistics.median(r["image_s"] for r in records),
            )
        else:
            row["image_s"] = statistics.median(c["timing"].get("median_image_s", 0.0) for c in same)
        row["noop"] = (first.get("speed", {}).get("effects") or {}).get("noop", [])
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], runs: int) -> str:
    lines = [
        f"| configuration | speedup, median (range) of {runs} runs | 95% CI, median run | psnr mean / worst (dB) "
        "| ssim mean | clip_score mean | warm-up s/image | steady s/image | did it apply? |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| `{row['config']}` | {row['status']}: {row.get('message', '')} | | | | | | | |")
            continue
        means = row["means"]
        if "median_speedup" in row:
            low, high = row["interval"]
            speed = f"{row['median_speedup']:.2f}x ({min(row['speedups']):.2f}-{max(row['speedups']):.2f})"
            interval = f"[{low:.2f}, {high:.2f}]" if low is not None else "-"
            warm = f"{row['warmup_image_s']:.3f}"
        else:
            speed, interval, warm = "1x (base)", "", ""
        noop = "no: " + "; ".join(row["noop"]) if row["noop"] else ("yes" if "median_speedup" in row else "")
        lines.append(
            f"| `{row['config']}` | {speed} | {interval} | {means.get('psnr', 0):.1f} / {row['worst_psnr']:.1f} "
            f"| {means.get('ssim', 0):.4f} | {means.get('clip_score', 0):.2f} | {warm} | {row['image_s']:.4f} | {noop} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--save", type=Path, help="write the summary (JSON) here")
    args = parser.parse_args()
    runs = [json.loads(path.read_text()) for path in args.results]
    rows = summary(runs)
    if args.save:
        machine = runs[0]["environment"].get("device_class")
        args.save.write_text(
            json.dumps(
                {"suite": runs[0]["suite"]["name"], "machine": machine, "runs": len(runs), "configs": rows}, indent=1
            )
        )
    print(markdown(rows, len(runs)))


if __name__ == "__main__":
    main()
