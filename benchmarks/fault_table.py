"""The fault table of docs/families.md from finished runs of the trained-world suites.

For each configuration of each run: mean PSNR with a seeded bootstrap 95% interval
(n = the run's samples), the worst image, mean SSIM, the paired CLIP-score drop against
the reference images with its interval, adherence, and which gates it failed.

    python benchmarks/fault_table.py reports/flux_gguf/<run> reports/sd3_precision/<run> ...

Runs of a clip suite (one that gates ``frame_psnr``) get the video table: mean per-frame PSNR with its
interval, the worst clip, the mean of each clip's worst frame, frame SSIM, temporal error and motion adherence.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def bootstrap(values: list[float], seed: int = 0, draws: int = 4000) -> tuple[float, float, float]:
    data = np.asarray(values, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(data), (draws, len(data)))
    means = data[picks].mean(axis=1)
    return float(data.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def failed_gates(results: dict) -> dict[str, list[str]]:
    """The metrics each configuration failed (expected or not), by configuration."""
    failed: dict[str, list[str]] = {}
    for check in results["checks"]:
        if check["status"] in ("fail", "xfail"):
            failed.setdefault(check["config"], []).append(check["metric"] or "finite/blank")
    return failed


def error_row(results: dict, config: dict) -> str:
    return f"| {results['suite']['name']} | {config['name']} | error: {config['message'][:60]} |"


def rows(run: Path) -> list[str]:
    results = json.loads((run / "results.json").read_text())
    reference = results["reference_scores"].get("clip_score", {})
    failed = failed_gates(results)
    out = []
    for config in results["configs"]:
        samples = config["samples"]
        if config["status"] == "error" or not samples:
            out.append(error_row(results, config))
            continue
        psnr = [s["metrics"]["psnr"] for s in samples]
        mean, low, high = bootstrap(psnr)
        drop = [reference[s["key"]] - s["metrics"]["clip_score"] for s in samples if s["key"] in reference]
        drop_mean, drop_low, drop_high = bootstrap(drop) if drop else (float("nan"),) * 3
        ssim = np.mean([s["metrics"]["ssim"] for s in samples])
        adherence = np.mean([s["metrics"]["adherence"] for s in samples])
        gates = ", ".join(sorted(set(failed.get(config["name"], [])))) or "passes"
        out.append(
            f"| {results['suite']['name']} | {config['name']} | {mean:.1f} [{low:.1f}, {high:.1f}] | {min(psnr):.1f} "
            f"| {ssim:.4f} | {drop_mean:+.2f} [{drop_low:+.2f}, {drop_high:+.2f}] | {adherence:.2f} | {gates} |"
        )
    return out


VIDEO_HEADER = (
    "| suite | configuration | frame PSNR dB, mean [95%] | worst clip | worst frame (mean) | frame SSIM "
    "| temporal error | motion adherence | gates failed |"
)


def video_rows(run: Path) -> list[str]:
    results = json.loads((run / "results.json").read_text())
    failed = failed_gates(results)
    out = []
    for config in results["configs"]:
        samples = config["samples"]
        if config["status"] == "error" or not samples:
            out.append(error_row(results, config))
            continue

        def values(metric: str, samples: list[dict] = samples) -> list[float]:
            return [s["metrics"][metric] for s in samples]

        mean, low, high = bootstrap(values("frame_psnr"))
        gates = ", ".join(sorted(set(failed.get(config["name"], [])))) or "passes"
        out.append(
            f"| {results['suite']['name']} | {config['name']} | {mean:.1f} [{low:.1f}, {high:.1f}] "
            f"| {min(values('frame_psnr')):.1f} | {np.mean(values('frame_psnr_worst')):.1f} "
            f"| {np.mean(values('frame_ssim')):.4f} | {np.mean(values('temporal_error')):.2f} "
            f"| {np.mean(values('motion_adherence')):.2f} | {gates} |"
        )
    return out


def is_clip_run(run: Path) -> bool:
    results = json.loads((run / "results.json").read_text())
    return any("frame_psnr" in s["metrics"] for c in results["configs"] for s in c["samples"][:1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding results.json")
    args = parser.parse_args()
    images = [run for run in args.runs if not is_clip_run(run)]
    clips = [run for run in args.runs if is_clip_run(run)]
    if images:
        print(
            "| suite | configuration | PSNR dB, mean [95%] | worst | SSIM | CLIP drop [95%] | adherence | gates failed |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for run in images:
            print("\n".join(rows(run)))
    if clips:
        print(VIDEO_HEADER)
        print("| --- " * VIDEO_HEADER.count(" | ") + "| --- |")
        for run in clips:
            print("\n".join(video_rows(run)))


if __name__ == "__main__":
    main()
