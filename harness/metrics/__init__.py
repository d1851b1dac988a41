"""Metrics, one per module behind :mod:`harness.metrics.base`."""

from __future__ import annotations

from harness.metrics.base import Metric


def default_metrics() -> dict[str, type[Metric]]:
    """A fresh mapping of every metric class by name (pass it where it is needed)."""
    from harness.metrics.adherence import Adherence
    from harness.metrics.clip_iqa import ClipIQA
    from harness.metrics.clip_score import ClipScore
    from harness.metrics.cmmd import CMMD
    from harness.metrics.fid import FID
    from harness.metrics.hpsv2 import HPSv2
    from harness.metrics.image_reward import ImageRewardMetric
    from harness.metrics.kid import KID
    from harness.metrics.lpips import LPIPS
    from harness.metrics.psnr import PSNR
    from harness.metrics.ssim import SSIM

    classes: list[type[Metric]] = [
        PSNR,
        SSIM,
        ClipScore,
        FID,
        KID,
        CMMD,
        LPIPS,
        Adherence,
        ClipIQA,
        HPSv2,
        ImageRewardMetric,
    ]
    return {cls.name: cls for cls in classes}
