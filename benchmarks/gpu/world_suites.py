"""The trained-world suites on a GPU: against the CPU-blessed references and live, in one process (issue #43).

    python benchmarks/gpu/world_suites.py OUT_DIR SUITE...

For each suite, ``harness run --device cuda`` twice (blessed references, then ``--references live``), then one JSON
per suite in OUT_DIR: every check's verdict, value and bound, each configuration's PSNR mean / p25 / worst, the
margin of each gate (value minus bound, signed so that negative fails), and the drift of the blessed set in live
mode. The run folders stay in /tmp/worlds-gpu.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from harness.cli import main


def margin(check: dict) -> float | None:
    """How far a check's value is from its bound, positive on the passing side."""
    value, bound = check.get("value"), check.get("bound")
    if value is None or bound is None:
        return None
    return round(value - bound if ">=" in check["check"] else bound - value, 3)


def digest(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    configs = {}
    for config in results["configs"]:
        row: dict = {"status": config["status"], "message": config.get("message", "")[:200]}
        for summary in config.get("summaries", []):
            values = sorted(
                s["metrics"][summary["metric"]]
                for s in config["samples"]
                if s["metrics"].get(summary["metric"]) is not None and math.isfinite(s["metrics"][summary["metric"]])
            )
            k = max(1, math.ceil(0.25 * len(values))) if values else 0
            row[summary["metric"]] = {
                "mean": summary["mean"],
                "p25": (values[k - 1] if summary["higher_is_better"] else values[-k]) if values else None,
                "worst": summary.get("worst"),
            }
        configs[config["name"]] = row
    checks = [
        {k: c.get(k) for k in ("config", "check", "status", "value", "bound")} | {"margin": margin(c)}
        for c in results["checks"]
    ]
    return {
        "exit_code": results["exit_code"],
        "verdict": results["verdict"],
        "device_class": results["environment"].get("device_class"),
        "references": results.get("references"),
        "phases": results.get("phases"),
        "configs": configs,
        "checks": checks,
        "warnings": results.get("warnings"),
    }


def run(out: Path, suites: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for suite in suites:
        record: dict = {}
        for mode in ("blessed", "live"):
            run_dir = Path("/tmp/worlds-gpu") / f"{Path(suite).stem}-{mode}"
            start = time.perf_counter()
            code = main(["run", suite, "--device", "cuda", "--out", str(run_dir), "--references", mode, "--no-cache"])
            record[mode] = {"exit": code, "wall_s": round(time.perf_counter() - start, 1), **digest(run_dir)}
            print(f"{suite} {mode}: exit {code} in {record[mode]['wall_s']} s", flush=True)
        (out / f"{Path(suite).stem}.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    run(Path(sys.argv[1]), sys.argv[2:])
