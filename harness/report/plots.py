"""Matplotlib charts for the reports, returned as PNG bytes (embedded, so reports stay self-contained)."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from harness.results import STATUS_OK, ConfigResult, RunResult


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, 1, figsize=(width, height), dpi=100)


def _png(figure: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def primary_metric(result: RunResult) -> str | None:
    """The first per-sample metric the configurations have (the quality axis of the charts)."""
    for config in result.configs:
        for summary in config.summaries:
            if summary.scope in ("pair", "image"):
                return summary.metric
        for summary in config.summaries:
            return summary.metric
    return None


def _cost_axes(result: RunResult) -> list[tuple[str, str]]:
    axes = [("timing", "per_image_s")]
    memory_key = (
        "peak_gpu_allocated_mb" if any("peak_gpu_allocated_mb" in c.memory for c in result.configs) else "peak_rss_mb"
    )
    axes.append(("memory", memory_key))
    return axes


_COST_LABEL = {
    "per_image_s": "generation time per image (s)",
    "peak_rss_mb": "peak process RSS (MB)",
    "peak_gpu_allocated_mb": "peak GPU memory allocated (MB)",
}


def quality_vs_cost(result: RunResult) -> dict[str, bytes]:
    """Quality (mean with 95% CI) against time per image and against peak memory, one point per configuration."""
    metric = primary_metric(result)
    if metric is None:
        return {}
    charts = {}
    configs = [c for c in result.configs if c.status == STATUS_OK and c.summary(metric) is not None]
    for group, key in _cost_axes(result):
        points = []
        for config in configs:
            cost = config.peak_rss_mb if key == "peak_rss_mb" else getattr(config, group).get(key)
            summary = config.summary(metric)
            if cost is None or summary is None or not math.isfinite(summary.mean):
                continue
            low = summary.mean - summary.ci_low if summary.ci_low is not None else 0.0
            high = summary.ci_high - summary.mean if summary.ci_high is not None else 0.0
            points.append((config.name, float(cost), summary.mean, max(0.0, low), max(0.0, high)))
        if not points:
            continue
        figure, axis = _figure(5.2, 3.6)
        for index, (name, cost, mean, low, high) in enumerate(points):
            axis.errorbar([cost], [mean], yerr=[[low], [high]], fmt="o", capsize=3, color=f"C{index % 10}", label=name)
            axis.annotate(name, (cost, mean), textcoords="offset points", xytext=(5, 5), fontsize=8)
        unit, n = _unit_and_n(configs, metric)
        axis.set_xlabel(_COST_LABEL[key])
        axis.set_ylabel(f"{metric} mean {unit}".strip())
        axis.set_title(f"{metric} vs {group} (n={n} per point, 95% CI)")
        axis.grid(alpha=0.3)
        charts[f"quality_vs_{group}"] = _png(figure)
    return charts


def quality_vs_size(result: RunResult) -> dict[str, bytes]:
    """Quality against the stored size of the quantized weights, for configurations that report one."""
    metric = primary_metric(result)
    configs = [
        c for c in result.configs if c.status == STATUS_OK and "weights_mb" in c.notes and c.summary(metric or "")
    ]
    if metric is None or not configs:
        return {}
    figure, axis = _figure(5.2, 3.6)
    for index, config in enumerate(configs):
        summary = config.summary(metric)
        assert summary is not None
        size = float(config.notes["weights_mb"])
        low = summary.mean - summary.ci_low if summary.ci_low is not None else 0.0
        high = summary.ci_high - summary.mean if summary.ci_high is not None else 0.0
        axis.errorbar(
            [size], [summary.mean], yerr=[[max(0.0, low)], [max(0.0, high)]], fmt="o", capsize=3, color=f"C{index % 10}"
        )
        axis.annotate(config.name, (size, summary.mean), textcoords="offset points", xytext=(5, 5), fontsize=8)
    fp16 = [float(c.notes["fp16_weights_mb"]) for c in configs if "fp16_weights_mb" in c.notes]
    if fp16:
        axis.axvline(fp16[0], color="grey", linestyle="--", linewidth=1)
        axis.annotate(
            "fp16 size",
            (fp16[0], axis.get_ylim()[0]),
            textcoords="offset points",
            xytext=(3, 5),
            fontsize=8,
            color="grey",
        )
    unit, n = _unit_and_n(configs, metric)
    axis.set_xlabel("quantized weights (MB)")
    axis.set_ylabel(f"{metric} mean {unit}".strip())
    axis.set_title(f"{metric} vs size (n={n} per point, 95% CI)")
    axis.grid(alpha=0.3)
    return {"quality_vs_size": _png(figure)}


def distributions(result: RunResult) -> dict[str, bytes]:
    """Per metric: a box plot of per-sample values per configuration, with the points over it."""
    charts = {}
    configs = [c for c in result.configs if c.status == STATUS_OK]
    metrics: list[str] = []
    for config in configs:
        for summary in config.summaries:
            if summary.scope != "set" and summary.metric not in metrics:
                metrics.append(summary.metric)
    for metric in metrics:
        data = [(c.name, _values(c, metric)) for c in configs]
        data = [(name, values) for name, values in data if values.size]
        if not data:
            continue
        figure, axis = _figure(max(4.0, 1.1 * len(data) + 2), 3.4)
        axis.boxplot([values for _, values in data], showfliers=False)
        axis.set_xticks(range(1, len(data) + 1), [name for name, _ in data], rotation=20)
        rng = np.random.default_rng(0)
        for position, (_, values) in enumerate(data, start=1):
            axis.scatter(position + rng.uniform(-0.12, 0.12, values.size), values, s=10, alpha=0.6, color="C0")
        unit, _ = _unit_and_n(configs, metric)
        axis.set_ylabel(f"{metric} {unit}".strip())
        axis.set_title(f"{metric} per sample (n={max(v.size for _, v in data)} per configuration)")
        axis.grid(alpha=0.3, axis="y")
        charts[f"distribution_{metric}"] = _png(figure)
    return charts


def _unit_and_n(configs: list[ConfigResult], metric: str) -> tuple[str, int]:
    for config in configs:
        summary = config.summary(metric)
        if summary is not None:
            return (summary.unit if summary.unit.strip("()") else ""), summary.n
    return "", 0


def _values(config: ConfigResult, metric: str) -> np.ndarray:
    values = [s.metrics[metric] for s in config.samples if metric in s.metrics and math.isfinite(s.metrics[metric])]
    return np.asarray(values, dtype=np.float64)


HEATMAP_FULL_SCALE = 64.0  # 8-bit levels shown white-hot
HEATMAP_TICKS = (0, 1, 4, 16, 64)


def heatmap_scale(difference: np.ndarray, full_scale: float = HEATMAP_FULL_SCALE) -> np.ndarray:
    """Levels of difference to [0, 1] on a log scale: one level is already a quarter of the way up."""
    return np.clip(np.log1p(difference) / np.log1p(full_scale), 0.0, 1.0)


def difference_heatmap(image: np.ndarray, reference: np.ndarray, max_side: int | None = None) -> np.ndarray:
    """|image - reference| averaged over channels, as an RGB heatmap (inferno, log scale; see ``heatmap_scale``).

    With ``max_side`` the difference is computed at full size, then averaged down (box
    filter) to at most ``max_side`` pixels a side before it is coloured: what a thumbnail
    of the full-size heatmap shows, at a tenth of the cost for a 512 px image.
    """
    from matplotlib import colormaps

    difference = np.abs(image.astype(np.float32) - reference.astype(np.float32)).mean(axis=2)
    height, width = difference.shape
    if max_side and max(height, width) > max_side:
        from PIL import Image

        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        difference = np.asarray(Image.fromarray(difference, mode="F").resize(size, Image.Resampling.BOX))
    rgba = colormaps["inferno"](heatmap_scale(difference))
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def heatmap_colorbar(width: int = 256) -> tuple[np.ndarray, list[tuple[int, float]]]:
    """The heatmap's colour bar (RGB, 1 px high, left to right) and its ticks as (levels, percent from the left)."""
    from matplotlib import colormaps

    levels = np.expm1(np.linspace(0.0, 1.0, width) * np.log1p(HEATMAP_FULL_SCALE))
    rgba = colormaps["inferno"](heatmap_scale(levels))[None, :, :3]
    ticks = [(tick, round(100.0 * float(heatmap_scale(np.asarray(float(tick)))), 1)) for tick in HEATMAP_TICKS]
    return (rgba * 255).round().astype(np.uint8), ticks


def quality_vs_speedup(result: RunResult) -> dict[str, bytes]:
    """Each gated metric's mean (95% CI) against the speedup (95% CI), with the Pareto front drawn through."""
    from harness.report.speed import gated_metrics, speed_rows

    rows = speed_rows(result)
    charts: dict[str, bytes] = {}
    if len(rows) < 2:
        return charts
    configs = {c.name: c for c in result.configs}
    for metric in gated_metrics(result):
        # the base sits at 1x by definition (drawn as the line there); against the reference it is often at the
        # metric's cap (identical images), which would squash every other point
        points = [row for row in rows if row.speedup is not None and metric in row.means and not row.is_base]
        if len(points) < 2:
            continue
        figure, axis = _figure(5.6, 3.8)
        for index, row in enumerate(points):
            summary = configs[row.name].summary(metric)
            assert summary is not None and row.speedup is not None
            yerr = [
                [max(0.0, summary.mean - (summary.ci_low if summary.ci_low is not None else summary.mean))],
                [max(0.0, (summary.ci_high if summary.ci_high is not None else summary.mean) - summary.mean)],
            ]
            xerr = [
                [max(0.0, row.speedup - (row.low if row.low is not None else row.speedup))],
                [max(0.0, (row.high if row.high is not None else row.speedup) - row.speedup)],
            ]
            marker = "D" if metric in row.front else "x" if row.noop else "o"
            axis.errorbar(
                [row.speedup], [summary.mean], xerr=xerr, yerr=yerr, fmt=marker, capsize=3, color=f"C{index % 10}"
            )
            axis.annotate(row.name, (row.speedup, summary.mean), textcoords="offset points", xytext=(5, 5), fontsize=8)
        front = sorted((row.speedup or 0.0, row.means[metric]) for row in points if metric in row.front)
        if len(front) > 1:
            axis.plot(
                [x for x, _ in front],
                [y for _, y in front],
                color="grey",
                linestyle="--",
                linewidth=1,
                label="Pareto front",
            )
            axis.legend(fontsize=8, loc="best")
        bases = sorted({row.vs for row in points})
        axis.axvline(1.0, color="grey", linewidth=0.8, alpha=0.6)
        unit, n = _unit_and_n([configs[row.name] for row in points], metric)
        axis.set_xlabel(f"speedup over {', '.join(bases)} (x, 95% CI; line: 1x)")
        axis.set_ylabel(f"{metric} mean {unit}".strip())
        axis.set_title(f"{metric} vs speed (n={n} images per point; diamonds: Pareto front, x: no effect)", fontsize=9)
        axis.grid(alpha=0.3)
        charts[f"quality_vs_speedup_{metric}"] = _png(figure)
    return charts
