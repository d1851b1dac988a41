"""Frame metrics for clips: a pair metric (PSNR, SSIM, LPIPS) on every frame against the reference clip's frame,
reduced to the clip's mean or its worst frame.

A clip is stored as its frames stacked top to bottom (``harness.pipelines.family.VideoFamily``); ``frames`` (set
from the suite's ``frames`` unless given) says where to cut. The per-frame values come from the image metric's own
code, so ``frame_psnr`` of a one-frame clip is ``psnr``. The six metrics share this module: they are one concept
(an image metric over frames) in two reductions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness import tomlread
from harness.errors import Where
from harness.metrics.base import NO_EVALUATORS, Evaluators, PairMetric
from harness.metrics.lpips import LPIPS
from harness.metrics.psnr import PSNR
from harness.metrics.ssim import SSIM
from harness.metrics.tensors import Pairs

FRAMES_KEY = {"frames": "frames per clip (default: the suite's frames)"}


def split_frames(clip: np.ndarray, frames: int) -> list[np.ndarray]:
    """A stacked clip (F x H, W, 3) as its F frames (H, W, 3)."""
    if frames < 1 or clip.shape[0] % frames:
        raise ValueError(f"a clip of height {clip.shape[0]} does not hold {frames} frames of equal height")
    height = clip.shape[0] // frames
    return [clip[index * height : (index + 1) * height] for index in range(frames)]


def per_frame(metric: PairMetric, clip: np.ndarray, reference: np.ndarray, frames: int) -> list[float]:
    """``metric`` on each frame of ``clip`` against the same frame of ``reference``."""
    return metric.score_pairs(split_frames(clip, frames), split_frames(reference, frames))


class FramewiseMetric(PairMetric):
    """An image pair metric over a clip's frames, reduced to the mean or the worst frame."""

    inner: ClassVar[type[PairMetric]]
    reduce: ClassVar[str] = "mean"  # mean | worst
    option_keys: ClassVar[Mapping[str, str]] = FRAMES_KEY
    clips: ClassVar[bool] = True  # the suite fills in ``frames``

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass naming its ``inner`` metric takes that metric's unit, direction, tolerance and options."""
        super().__init_subclass__(**kwargs)
        if "inner" in cls.__dict__:
            cls.unit, cls.higher_is_better = cls.inner.unit, cls.inner.higher_is_better
            cls.default_tolerance = cls.inner.default_tolerance
            cls.option_keys = {**cls.inner.option_keys, **FRAMES_KEY}

    def __init__(self, options: Mapping[str, Any] | None = None, context: Any = None):
        super().__init__(options, context)
        own = {k: v for k, v in self.options.items() if k != "frames"}
        self.frame_metric = self.inner(own, context)

    @classmethod
    def parse_options(cls, table: Mapping[str, Any], where: Where, suite_dir: Path) -> dict[str, Any]:
        inner_keys = dict(cls.inner.option_keys)
        tomlread.check_keys(table, [*inner_keys, "frames"], where, "option")
        options = cls.inner.parse_options({k: v for k, v in table.items() if k != "frames"}, where, suite_dir)
        frames = tomlread.get(table, "frames", int, where)
        if frames is not None:
            if frames < 1:
                raise where.error("frames", f"must be >= 1, got {frames}")
            options["frames"] = frames
        return options

    @classmethod
    def check_options(cls, options: Mapping[str, Any], where: Where, evaluators: Evaluators = NO_EVALUATORS) -> None:
        cls.inner.check_options({k: v for k, v in options.items() if k != "frames"}, where, evaluators)

    def unavailable(self) -> str | None:
        return self.frame_metric.unavailable()

    @property
    def frames(self) -> int:
        return int(self.options.get("frames", 1))

    def score_chunk(self, pairs: Pairs) -> list[float]:
        worst = min if self.higher_is_better else max
        values = []
        for clip, reference in zip(pairs.images, pairs.references, strict=True):
            scores = per_frame(self.frame_metric, clip, reference, self.frames)
            values.append(float(np.mean(scores)) if self.reduce == "mean" else float(worst(scores)))
        return values


class FramePSNR(FramewiseMetric):
    name: ClassVar[str] = "frame_psnr"
    inner = PSNR
    summary: ClassVar[str] = "clips: PSNR of each frame vs the reference clip's, mean over frames"


class FramePSNRWorst(FramePSNR):
    name: ClassVar[str] = "frame_psnr_worst"
    reduce: ClassVar[str] = "worst"
    summary: ClassVar[str] = "clips: PSNR of the clip's worst frame vs the reference clip's"


class FrameSSIM(FramewiseMetric):
    name: ClassVar[str] = "frame_ssim"
    inner = SSIM
    summary: ClassVar[str] = "clips: SSIM of each frame vs the reference clip's, mean over frames"


class FrameSSIMWorst(FrameSSIM):
    name: ClassVar[str] = "frame_ssim_worst"
    reduce: ClassVar[str] = "worst"
    summary: ClassVar[str] = "clips: SSIM of the clip's worst frame vs the reference clip's"


class FrameLPIPS(FramewiseMetric):
    name: ClassVar[str] = "frame_lpips"
    inner = LPIPS
    summary: ClassVar[str] = (
        "clips: LPIPS of each frame vs the reference clip's, mean over frames (vllm-omni's video gate)"
    )


class FrameLPIPSWorst(FrameLPIPS):
    name: ClassVar[str] = "frame_lpips_worst"
    reduce: ClassVar[str] = "worst"
    summary: ClassVar[str] = "clips: LPIPS of the clip's worst frame vs the reference clip's"


def sequence_values(
    metric: PairMetric, clips: Sequence[np.ndarray], references: Sequence[np.ndarray], frames: int
) -> np.ndarray:
    """Per-frame values of every clip, (clips, frames): what the report plots."""
    return np.asarray([per_frame(metric, clip, ref, frames) for clip, ref in zip(clips, references, strict=True)])
