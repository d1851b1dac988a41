"""Temporal error: how much a clip's error against the reference clip changes from frame to frame.

With ``e_t = clip_t - reference_t`` (8-bit levels), the metric is the RMS of ``e_{t+1} - e_t`` over frames and
pixels, which equals the RMS of the difference between the two clips' frame-to-frame changes. An error that stays
put (a colour shift, a blur) scores 0 however large; flicker scores high even where every frame on its own is
close to its reference, which per-frame PSNR/SSIM averaged over frames cannot see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from harness.metrics.base import PairMetric
from harness.metrics.tensors import Pairs
from harness.metrics.video import FRAMES_KEY, split_frames


def temporal_error(clip: np.ndarray, reference: np.ndarray, frames: int) -> float:
    """RMS change of the error from one frame to the next, in 8-bit levels (0 for a single frame)."""
    if frames < 2:
        return 0.0
    error = np.stack(split_frames(clip, frames)).astype(np.float64) - np.stack(split_frames(reference, frames))
    return float(np.sqrt(np.mean(np.square(np.diff(error, axis=0)))))


class TemporalError(PairMetric):
    name: ClassVar[str] = "temporal_error"
    unit: ClassVar[str] = "levels"
    higher_is_better: ClassVar[bool] = False
    option_keys: ClassVar[Mapping[str, str]] = FRAMES_KEY
    default_tolerance: ClassVar[Mapping[str, float] | None] = {"max_rise": 0.5}  # half an 8-bit level, RMS
    summary: ClassVar[str] = "clips: RMS frame-to-frame change of the error vs the reference clip (flicker)"
    clips: ClassVar[bool] = True

    def score_chunk(self, pairs: Pairs) -> list[float]:
        frames = int(self.options.get("frames", 1))
        return [temporal_error(clip, ref, frames) for clip, ref in zip(pairs.images, pairs.references, strict=True)]
