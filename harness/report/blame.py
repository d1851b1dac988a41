"""Where the quality goes: the blame, sensitivity and recipe records of a run, as tables and a chart.

``python -m harness blame`` writes ``blame-NAME.json``, ``sensitivity-NAME.json`` or
``recipe-NAME.json`` into the run folder; every report of the run renders what it finds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PREFIXES = ("blame", "sensitivity", "recipe")


def read_blames(run_dir: Path) -> list[dict[str, Any]]:
    """Every blame, sensitivity and recipe record in ``run_dir`` (an unreadable one is skipped, not fatal)."""
    found = []
    for prefix in PREFIXES:
        for path in sorted(run_dir.glob(f"{prefix}-*.json")):
            try:
                found.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue
    return found


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def title(record: dict[str, Any]) -> str:
    verb = {"blame": "restored to", "sensitivity": "taken alone into"}[record["direction"]]
    return (
        f"{record['direction']} of {record['config']!r}: each part {verb} {record['reference']!r} "
        f"(psnr against the images of {record['reference']!r}, n={record['n']} samples, {record['seconds']:.0f} s)"
    )


def blame_rows(record: dict[str, Any]) -> list[tuple[str, list[list[str]]]]:
    """(title, rows) for each table of a record; rows[0] is the header."""
    word = "recovered" if record["direction"] == "blame" else "lost"
    header = ["part", "level", f"{word} dB (mean)", "95% CI", "psnr mean", "psnr worst", "MB config", "MB reference"]
    rows = [header]
    for part in record["parts"]:
        low, high = part["change_ci"]
        rows.append(
            [
                part["name"],
                part["level"],
                _fmt(part["change_mean"]),
                f"[{_fmt(low)}, {_fmt(high)}]",
                _fmt(part["psnr_mean"], 4),
                _fmt(part["psnr_worst"], 4),
                f"{part['bytes_config'] / 1e6:.3f}",
                f"{part['bytes_reference'] / 1e6:.3f}",
            ]
        )
    return [(title(record), rows)]


def markdown(records: Sequence[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for record in records:
        lines += ["", f"### Where the quality goes: {record['direction']} of `{record['config']}`", ""]
        baseline = record["config_psnr"]
        if record["direction"] == "blame":
            lines += [
                f"`{record['config']}` as it is: psnr {baseline['mean']:.2f} dB (worst {baseline['worst']:.2f}).",
                "",
            ]
        for _, rows in blame_rows(record):
            lines.append("| " + " | ".join(rows[0]) + " |")
            lines.append("|---|---|" + "---:|" * (len(rows[0]) - 2))
            lines += ["| " + " | ".join([f"`{r[0]}`", *r[1:]]) + " |" for r in rows[1:]]
        if record.get("recipe"):
            found = record["recipe"]
            lines += ["", f"Recipe: {found['summary']}", "", "```toml", found["toml"].rstrip(), "```"]
        lines += ["", f"<sub>{title(record)}; {record['images_generated']} images generated</sub>"]
    return lines


def chart(record: dict[str, Any], top: int = 20) -> bytes:
    """Horizontal bars: each part's recovered (or lost) dB with its 95% interval, the largest at the top."""
    from harness.report.plots import _figure, _png

    parts = record["parts"][:top]
    figure, axis = _figure(6.4, 0.32 * len(parts) + 1.2)
    names = [p["name"] for p in parts][::-1]
    means = [p["change_mean"] for p in parts][::-1]
    lows = [
        p["change_mean"] - (p["change_ci"][0] if p["change_ci"][0] is not None else p["change_mean"]) for p in parts
    ]
    highs = [
        (p["change_ci"][1] if p["change_ci"][1] is not None else p["change_mean"]) - p["change_mean"] for p in parts
    ]
    colours = {"component": "C0", "block": "C1", "group": "C2"}
    axis.barh(
        names,
        means,
        xerr=[lows[::-1], highs[::-1]],
        capsize=2,
        color=[colours.get(p["level"], "C3") for p in parts][::-1],
    )
    word = "recovered" if record["direction"] == "blame" else "lost"
    axis.set_xlabel(
        f"psnr {word} (dB, mean of n={record['n']}, 95% CI); blue: components, orange: blocks, green: groups"
    )
    axis.set_title(f"{record['direction']} of {record['config']}", fontsize=9)
    axis.tick_params(axis="y", labelsize=7)
    axis.grid(axis="x", alpha=0.3)
    return _png(figure)
