"""Shipped suites with and without sequential sampling: images generated, wall time and verdicts (issue #28).

Runs each suite ``--repeats`` times in each mode, interleaved (fixed, sequential, fixed, ...), every run with
``--no-cache`` into its own folder, and prints per suite and mode the median wall time with its range, the images
generated, and whether every configuration's verdict (pass / fail / caught control) is the same in both modes.

    python benchmarks/sequential_suites.py suites/shapes.toml suites/shapes_faults.toml --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = {"fixed": ["--no-sequential"], "sequential": ["--sequential"]}


def verdicts(results: dict[str, Any]) -> dict[str, str]:
    """Each configuration's verdict: fail (a check failed or errored), caught (a control flagged), else pass."""
    out: dict[str, str] = {}
    for check in results["checks"]:
        status = check["status"]
        current = out.get(check["config"], "pass")
        if status in ("fail", "error"):
            current = "fail"
        elif status == "xfail" and current != "fail":
            current = "caught"
        out[check["config"]] = current
    return out


def run_once(suite: Path, mode: str, out: Path, device: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "harness", "run", str(suite), "--device", device, "--no-cache", "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run([*command, *MODES[mode]], capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - start
    results = json.loads((out / "results.json").read_text())
    planned = {c["name"]: int(c.get("sequential", {}).get("planned", len(c["samples"]))) for c in results["configs"]}
    return {
        "mode": mode,
        "wall_s": round(wall, 2),
        "exit_code": done.returncode,
        "images": sum(len(c["samples"]) for c in results["configs"]),
        "planned": sum(planned.values()),
        "per_config": {
            c["name"]: [len(c["samples"]), planned[c["name"]], c.get("sequential", {}).get("stopped", "")]
            for c in results["configs"]
        },
        "verdicts": verdicts(results),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", type=Path, nargs="+")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="harness-seq-") as scratch:
        for suite in args.suites:
            runs = table.setdefault(str(suite), [])
            for repeat in range(args.repeats):
                for mode in MODES:
                    runs.append(run_once(suite, mode, Path(scratch) / f"{suite.stem}-{mode}-{repeat}", args.device))
                    print(f"{suite} {mode} #{repeat}: {runs[-1]['wall_s']} s, {runs[-1]['images']} images", flush=True)
    print(f"\n{'suite':<28} {'mode':<11} {'wall s median [range]':>24} {'images':>12} {'exit':>5} verdicts")
    for suite, runs in table.items():
        reference = runs[0]["verdicts"]
        for mode in MODES:
            mine = [run for run in runs if run["mode"] == mode]
            walls = [run["wall_s"] for run in mine]
            same = all(run["verdicts"] == reference for run in mine)
            print(
                f"{Path(suite).stem:<28} {mode:<11} {statistics.median(walls):>10.1f} [{min(walls):.1f}, {max(walls):.1f}]"
                f"{mine[0]['images']:>7}/{mine[0]['planned']:<4} {mine[0]['exit_code']:>5} "
                + ("same as fixed n" if same else "DIFFER")
            )
    if args.json:
        machine = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
        args.json.write_text(json.dumps({"environment": machine, "suites": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
