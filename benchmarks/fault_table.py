"""The fault table of docs/families.md from finished runs of the trained-world suites.

For each configuration of each run: mean PSNR with a seeded bootstrap 95% interval
(n = the run's samples), the worst image, mean SSIM, the paired CLIP-score drop against
the reference images with its interval, adherence, and which gates it failed.

    python benchmarks/fault_table.py reports/flux_gguf/<run> reports/sd3_precision/<run> ...
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


def rows(run: Path) -> list[str]:
    results = json.loads((run / "results.json").read_text())
    reference = results["reference_scores"].get("clip_score", {})
    failed: dict[str, list[str]] = {}
    for check in results["checks"]:
        if check["status"] in ("fail", "xfail"):
            failed.setdefault(check["config"], []).append(check["metric"] or "finite/blank")
    out = []
    for config in results["configs"]:
        samples = config["samples"]
        if config["status"] == "error" or not samples:
            out.append(f"| {results['suite']['name']} | {config['name']} | error: {config['message'][:60]} |")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding results.json")
    args = parser.parse_args()
    print("| suite | configuration | PSNR dB, mean [95%] | worst | SSIM | CLIP drop [95%] | adherence | gates failed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in args.runs:
        print("\n".join(rows(run)))


if __name__ == "__main__":
    main()
