"""report.html: a self-contained page (no network) comparing configurations side by side.

Thumbnails, difference heatmaps and charts are embedded as data URIs; a click on a
thumbnail enlarges it, and the full-size files under ``images/`` are linked. Tables
sort by any column and filter by configuration and metric.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.phases import describe as describe_phases
from harness.report.blame import blame_rows, title
from harness.report.blame import chart as blame_chart
from harness.report.clips import animated_preview, clip_frames_of, frame_chart, key_frames
from harness.report.model import (
    STATUS_MARK,
    config_rows,
    cpu_half_line,
    failing_checks,
    fmt,
    headline,
    metric_names,
    references_line,
    sequential_headline,
)
from harness.report.plots import (
    difference_heatmap,
    distributions,
    heatmap_colorbar,
    primary_metric,
    quality_vs_cost,
    quality_vs_size,
    quality_vs_speedup,
)
from harness.report.speed import gated_metrics, speed_rows
from harness.results import STATUS_OK, XFAIL, RunResult, SampleResult
from harness.samples import io_threads, load_png

THUMBNAIL_PX = 160
WORST_SHOWN = 3
GALLERY_SAMPLES = 48  # prompt/seed rows embedded in the report; a larger run shows its worst ones


def data_uri_png(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def png_bytes(image: np.ndarray, max_side: int | None = None) -> bytes:
    from PIL import Image

    picture = Image.fromarray(image)
    if max_side and max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    # zlib level 1: lossless still, 4x faster than the default level for about 18% more bytes on a
    # 160 px photo thumbnail (optimize=True costs ~3x the encoding time for a few % of bytes)
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@dataclass(frozen=True)
class Tile:
    """One image in the gallery with what to say under it."""

    label: str
    thumb: str
    full: str
    heatmap: str
    caption: str
    flags: str
    frames: str = ""  # clips: the first, middle and last frames side by side


VERDICT_ORDER = {"fail": 0, "error": 0, "xfail": 1}  # the gallery shows what failed first, then the controls


def gallery_keys(
    result: RunResult, metric: str | None, controls: set[str], limit: int = GALLERY_SAMPLES
) -> tuple[set[str] | None, int]:
    """Which samples the gallery embeds (``None``: all), and how many there are.

    Past ``limit`` it keeps the samples whose worst configuration is worst on the primary
    metric (NaN and blank images first; negative ``controls`` do not choose): the report
    stays small and fast at thousands of samples, and still shows what went wrong; every
    image stays in the run folder.
    """
    keys: dict[str, float] = {}
    sign = -1.0 if higher_is_better(result, metric) else 1.0  # badness grows as the metric gets worse
    for config in result.configs:
        if config.status != STATUS_OK or config.name in controls:
            continue
        for sample in config.samples:
            if sample.image is None:
                continue
            value = sample.metrics.get(metric, math.nan) if metric else math.nan
            if sample.nonfinite_fraction > 0 or sample.blank or not math.isfinite(value):
                badness = math.inf
            else:
                badness = sign * value
            keys[sample.key] = max(keys.get(sample.key, -math.inf), badness)
    if len(keys) <= limit:
        return None, len(keys)
    ranked = sorted(keys, key=lambda key: (-keys[key], key))
    return set(ranked[:limit]), len(keys)


def higher_is_better(result: RunResult, metric: str | None) -> bool:
    """The metric's direction, from the first summary of it (higher when no configuration has one)."""
    for config in result.configs:
        for summary in config.summaries:
            if summary.metric == metric:
                return summary.higher_is_better
    return True


def _gallery(
    result: RunResult, run_dir: Path, verdicts: dict[str, str], shown: set[str] | None
) -> list[dict[str, Any]]:
    metric = primary_metric(result)
    configs = sorted(
        (c for c in result.configs if c.status == STATUS_OK),
        key=lambda c: VERDICT_ORDER.get(verdicts.get(c.name, ""), 2),
    )
    rows: dict[str, list[tuple[str, SampleResult]]] = {}
    for config in configs:
        for sample in config.samples:
            if sample.image is not None and (shown is None or sample.key in shown):
                rows.setdefault(sample.key, []).append((config.name, sample))
    # one job per prompt/seed row (its reference read once); PNG decoding, resizing and encoding release
    # the GIL, so rows are made on a few threads
    workers = min(io_threads(), max(1, len(rows)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="harness-report") as pool:
        frames = clip_frames_of(result)
        return list(pool.map(lambda samples: _gallery_row(samples, run_dir, metric, frames), rows.values()))


def _gallery_row(
    samples: list[tuple[str, SampleResult]], run_dir: Path, metric: str | None, frames: int = 1
) -> dict[str, Any]:
    """One prompt/seed: the reference's thumbnail, and each configuration's with its heatmap against it. Clips
    play as animated previews, with their first/middle/last frames and those frames' heatmaps."""
    first = samples[0][1]
    row: dict[str, Any] = {"key": first.key, "prompt": first.prompt, "seed": first.seed, "reference": None, "tiles": []}
    reference_path = run_dir / "images" / "reference" / f"{first.key}.png"
    reference = load_png(reference_path) if reference_path.is_file() else None
    if reference is not None:
        thumb = animated_preview(reference, frames) if frames > 1 else data_uri_png(png_bytes(reference, THUMBNAIL_PX))
        still = data_uri_png(png_bytes(key_frames(reference, frames))) if frames > 1 else ""
        row["reference"] = Tile("reference", thumb, f"images/reference/{first.key}.png", "", "", "", still)
    for name, sample in samples:
        image = load_png(run_dir / str(sample.image))
        heatmap = ""
        if reference is not None and reference.shape == image.shape:
            pair = (key_frames(image, frames), key_frames(reference, frames)) if frames > 1 else (image, reference)
            heatmap = data_uri_png(png_bytes(difference_heatmap(*pair, THUMBNAIL_PX if frames == 1 else None)))
        value = sample.metrics.get(metric) if metric else None
        caption = f"{metric} {fmt(value)}" if value is not None else ""
        flags = []
        if sample.nonfinite_fraction > 0:
            flags.append(f"NaN/Inf {sample.nonfinite_fraction:.0%}")
        if sample.blank:
            flags.append("blank")
        if frames > 1:
            thumb, still = animated_preview(image, frames), data_uri_png(png_bytes(key_frames(image, frames)))
        else:
            thumb, still = data_uri_png(png_bytes(image, THUMBNAIL_PX)), ""
        row["tiles"].append(Tile(name, thumb, str(sample.image), heatmap, caption, ", ".join(flags), still))
    return row


def _worst(result: RunResult) -> list[dict[str, Any]]:
    """Per configuration and per-sample metric, the worst samples (prompt, seed, value)."""
    rows = []
    for config in result.configs:
        if config.status != STATUS_OK:
            continue
        for summary in config.summaries:
            if summary.scope == "set":
                continue
            scored = [(s.metrics[summary.metric], s) for s in config.samples if summary.metric in s.metrics]
            scored = [(v, s) for v, s in scored if math.isfinite(v)]
            scored.sort(key=lambda item: item[0], reverse=not summary.higher_is_better)
            for value, sample in scored[:WORST_SHOWN]:
                rows.append(
                    {
                        "config": config.name,
                        "metric": summary.metric,
                        "value": value,
                        "text": fmt(value),
                        "key": sample.key,
                        "prompt": sample.prompt,
                        "seed": sample.seed,
                    }
                )
    return rows


def _per_prompt(result: RunResult) -> dict[str, Any]:
    """Rows of prompts, columns of configurations: the primary metric's mean over seeds and the worst seed."""
    metric = primary_metric(result)
    configs = [c for c in result.configs if c.status == STATUS_OK and c.summary(metric or "") is not None]
    if metric is None or not configs:
        return {"metric": None, "configs": [], "rows": []}
    higher = higher_is_better(result, metric)
    prompts: dict[int, str] = {}
    cells: dict[tuple[int, str], list[tuple[float, int]]] = {}
    for config in configs:
        for sample in config.samples:
            value = sample.metrics.get(metric)
            if value is None or not math.isfinite(value):
                continue
            prompts[sample.prompt_index] = sample.prompt
            cells.setdefault((sample.prompt_index, config.name), []).append((value, sample.seed))
    rows = []
    for index in sorted(prompts):
        row_cells: list[dict[str, Any] | None] = []
        for config in configs:
            values = cells.get((index, config.name), [])
            if not values:
                row_cells.append(None)
                continue
            mean = sum(v for v, _ in values) / len(values)
            worst_value, worst_seed = (min if higher else max)(values)
            row_cells.append(
                {"mean": mean, "text": fmt(mean), "worst": fmt(worst_value), "seed": worst_seed, "n": len(values)}
            )
        rows.append({"index": index, "prompt": prompts[index], "cells": row_cells})
    return {"metric": metric, "configs": [c.name for c in configs], "rows": rows}


def render_html(result: RunResult, run_dir: Path, blames: Sequence[Mapping[str, Any]] = ()) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["fmt"] = fmt
    charts = {
        **quality_vs_cost(result),
        **quality_vs_size(result),
        **quality_vs_speedup(result),
        **distributions(result),
        **frame_chart(result, run_dir),
    }
    rows = config_rows(result)
    verdicts = {row.name: row.verdict for row in rows}
    controls = {name for name, verdict in verdicts.items() if verdict == "xfail"}
    shown, total_samples = gallery_keys(result, primary_metric(result), controls)
    colorbar, ticks = heatmap_colorbar()
    template = env.get_template("report.html.j2")
    return template.render(
        failures=failing_checks(result),
        caught=[(row.name, n) for row in rows if (n := sum(c.status == XFAIL for c in row.checks))],
        verdicts=verdicts,
        words=STATUS_MARK,
        colorbar=data_uri_png(png_bytes(np.repeat(colorbar, 12, axis=0))),
        colorbar_ticks=ticks,
        result=result,
        suite=result.suite,
        headline=headline(result),
        sequential=sequential_headline(result),
        phases_text=describe_phases(result.phases),
        references_text=references_line(result.references),
        cpu_half_text=cpu_half_line(result.environment),
        passed=result.exit_code == 0,
        rows=rows,
        metrics=metric_names(result),
        checks=result.checks,
        charts={name: data_uri_png(data) for name, data in charts.items()},
        gallery=_gallery(result, run_dir, verdicts, shown),
        gallery_total=total_samples,
        worst=_worst(result),
        per_prompt=_per_prompt(result),
        configs=result.configs,
        environment=result.environment,
        comparison=result.comparison or None,
        speed=speed_rows(result),
        blames=[
            {
                "title": title(dict(b)),
                "rows": blame_rows(dict(b))[0][1],
                "chart": data_uri_png(blame_chart(dict(b))),
                "recipe": b.get("recipe"),
            }
            for b in blames
        ],
        speed_metrics=gated_metrics(result),
    )
