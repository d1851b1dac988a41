"""Verdicts and margins against blessed references and against live ones, on this machine.

`python benchmarks/live_vs_blessed.py [SUITE ...] [--device D] [--label TEXT] [--json PATH]`

Each suite runs twice, sharing one sample cache: once judged against the blessed images
(`--references blessed`) and once against the reference configuration generated in the
same run (`--references live`); the second run only rescores. For every gated check it
prints the value and the margin to the bound both ways, and whether the verdict changed;
for each suite, how far the blessed images are from the live ones (the drift of the
reference itself). Run it on each machine class (this CPU, a CPU without fast half
precision: `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 HARNESS_CPU_HALF=float32-accumulate`,
a GPU with `--device cuda`). Nothing is asserted; the table goes into docs/regression.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SUITES = ("suites/smoke.toml", "suites/shapes.toml", "suites/flux_gguf.toml", "suites/sd3_precision.toml")
console = Console(width=160)


def run(suite: str, mode: str, out: Path, cache: Path, device: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "harness", "run", suite, "--out", str(out), "--cache-dir", str(cache)]
    command += ["--references", mode, "--device", device]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{suite} --references {mode}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads((out / "results.json").read_text())


def margin(check: dict[str, Any]) -> float | None:
    """Distance from the value to the bound, positive on the passing side."""
    value, bound = check.get("value"), check.get("bound")
    if value is None or bound is None:
        return None
    return float(bound) - float(value) if "<=" in check["check"] else float(value) - float(bound)


def gated(results: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["config"], c["check"]): c for c in results["checks"] if c["metric"] and c["metric"] != "time"}


def compare(suite: str, blessed: dict[str, Any], live: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    live_checks = gated(live)
    for key, check in gated(blessed).items():
        other = live_checks.get(key)
        if other is None:
            continue
        rows.append(
            {
                "suite": Path(suite).stem,
                "config": key[0],
                "check": key[1],
                "blessed_value": check["value"],
                "live_value": other["value"],
                "blessed_margin": margin(check),
                "live_margin": margin(other),
                "blessed_status": check["status"],
                "live_status": other["status"],
            }
        )
    return rows


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="*", default=list(DEFAULT_SUITES))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--label", default="", help="machine description for the table title")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows, drifts = [], []
    with tempfile.TemporaryDirectory(prefix="live-vs-blessed-") as scratch:
        work = Path(scratch)
        for suite in args.suites:
            name = Path(suite).stem
            live = run(suite, "live", work / f"{name}-live", work / "cache", args.device)
            blessed = run(suite, "blessed", work / f"{name}-blessed", work / "cache", args.device)
            rows += compare(suite, blessed, live)
            drift = live["references"].get("blessed") or {}
            drifts.append(
                {
                    "suite": name,
                    "device_class": live["environment"].get("device_class"),
                    "blessed_on": drift.get("device_class"),
                    "identical": f"{drift.get('identical')}/{drift.get('n')}",
                    "psnr_mean": drift.get("psnr_mean"),
                    "psnr_min": drift.get("psnr_min"),
                    "verdict_blessed": blessed["verdict"],
                    "verdict_live": live["verdict"],
                }
            )
    title = f"blessed vs live references{': ' + args.label if args.label else ''}"
    table = Table(title=f"{title}: drift of the blessed reference images from the live ones")
    for column in ("suite", "this machine", "blessed on", "identical", "PSNR mean dB", "worst dB", "run verdicts"):
        table.add_column(column)
    for d in drifts:
        table.add_row(
            d["suite"],
            str(d["device_class"]),
            str(d["blessed_on"]),
            d["identical"],
            fmt(d["psnr_mean"]),
            fmt(d["psnr_min"]),
            f"{d['verdict_blessed']} / {d['verdict_live']}",
        )
    console.print(table)
    table = Table(title=f"{title}: every gated check (margin: distance to the bound, positive = passing side)")
    for column in ("suite", "config", "check", "blessed value", "live value", "blessed margin", "live margin"):
        table.add_column(column, justify="right" if "value" in column or "margin" in column else "left")
    table.add_column("verdict")
    for row in rows:
        same = row["blessed_status"] == row["live_status"]
        table.add_row(
            row["suite"],
            row["config"],
            row["check"],
            fmt(row["blessed_value"]),
            fmt(row["live_value"]),
            fmt(row["blessed_margin"]),
            fmt(row["live_margin"]),
            row["live_status"] if same else f"[bold red]{row['blessed_status']} -> {row['live_status']}[/]",
        )
    console.print(table)
    changed = sum(row["blessed_status"] != row["live_status"] for row in rows)
    console.print(f"{len(rows)} gated checks, {changed} verdicts differ between blessed and live references")
    if args.json:
        args.json.write_text(json.dumps({"label": args.label, "drift": drifts, "checks": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
