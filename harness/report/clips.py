"""Clips in the report: an animated preview a browser plays, the first, middle and last frames, and per-frame
metric curves. A clip is stored as its frames stacked top to bottom (``harness.pipelines.family.VideoFamily``)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.metrics.psnr import psnr_batch
from harness.metrics.video import split_frames
from harness.results import STATUS_OK, RunResult
from harness.samples import load_png

PREVIEW_PX = 96  # frames are scaled (nearest) to this width: 32 px clips stay visible
FRAME_MS = 125  # 8 frames a second
CURVE_SAMPLES = 48  # clips per configuration read for the per-frame curves


def clip_frames_of(result: RunResult) -> int:
    """The suite's frames per sample (1: an image suite)."""
    return int(result.suite.get("generation", {}).get("frames", 1) or 1)


def _scaled(frame: np.ndarray, width: int) -> Any:
    from PIL import Image

    picture = Image.fromarray(frame)
    if picture.width < width:
        scale = max(1, width // picture.width)
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    return picture


def animated_preview(clip: np.ndarray, frames: int, width: int = PREVIEW_PX) -> str:
    """The clip as a looping animated GIF data URI (each frame its own adaptive palette, no dithering)."""
    from PIL import Image

    # an adaptive palette per frame (the web palette merges nearby shades, and identical frames merge in a GIF)
    pictures = [
        _scaled(frame, width).convert("P", palette=Image.Palette.ADAPTIVE, colors=256, dither=Image.Dither.NONE)
        for frame in split_frames(clip, frames)
    ]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=FRAME_MS, loop=0)
    return "data:image/gif;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def key_frames(clip: np.ndarray, frames: int) -> np.ndarray:
    """The first, middle and last frames side by side."""
    parts = split_frames(clip, frames)
    chosen = [parts[0], parts[len(parts) // 2], parts[-1]] if len(parts) > 2 else parts
    gap = np.full((parts[0].shape[0], 2, 3), 255, dtype=np.uint8)
    row: list[np.ndarray] = []
    for index, frame in enumerate(chosen):
        row.extend([gap, frame] if index else [frame])
    return np.concatenate(row, axis=1)


def per_frame_curves(result: RunResult, run_dir: Path) -> Mapping[str, np.ndarray]:
    """Per configuration, PSNR of each frame against the reference clip's, mean over (at most ``CURVE_SAMPLES``)
    clips."""
    frames = clip_frames_of(result)
    curves: dict[str, np.ndarray] = {}
    for config in result.configs:
        if config.status != STATUS_OK:
            continue
        rows = []
        for sample in [s for s in config.samples if s.image][:CURVE_SAMPLES]:
            reference = run_dir / "images" / "reference" / f"{sample.key}.png"
            if not reference.is_file():
                continue
            clip, ref = load_png(run_dir / str(sample.image)), load_png(reference)
            if clip.shape != ref.shape:
                continue
            rows.append(psnr_batch(split_frames(clip, frames), split_frames(ref, frames)))
        if rows:
            curves[config.name] = np.asarray(rows).mean(axis=0)
    return curves


def frame_chart(result: RunResult, run_dir: Path) -> dict[str, bytes]:
    """A line per configuration: PSNR of each frame (mean over clips); empty for image suites."""
    if clip_frames_of(result) < 2:
        return {}
    from harness.report.plots import _figure, _png

    curves = per_frame_curves(result, run_dir)
    if not curves:
        return {}
    figure, axes = _figure(6.4, 3.6)
    for name, curve in curves.items():
        if np.all(curve >= 100):  # identical to the reference (the reference itself, a bit-exact offload)
            continue
        axes.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, label=name)
    axes.set_xlabel("frame")
    axes.set_ylabel("PSNR vs reference frame (dB)")
    axes.set_title("PSNR per frame, mean over clips (identical configurations left out)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    return {"psnr per frame": _png(figure)}
