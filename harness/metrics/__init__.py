"""Metrics, one per module behind :mod:`harness.metrics.base`."""

from __future__ import annotations

from harness.metrics.base import Metric


def default_metrics() -> dict[str, type[Metric]]:
    """A fresh mapping of every metric class by name, the core's and the plug-ins' (pass it where it is needed)."""
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
    from harness.metrics.temporal import TemporalError
    from harness.metrics.video import (
        FrameLPIPS,
        FrameLPIPSWorst,
        FramePSNR,
        FramePSNRWorst,
        FrameSSIM,
        FrameSSIMWorst,
    )

    classes: list[type[Metric]] = [
        PSNR,
        SSIM,
        ClipScore,
        FID,
        KID,
        CMMD,
        LPIPS,
        ClipIQA,
        HPSv2,
        ImageRewardMetric,
        FramePSNR,
        FramePSNRWorst,
        FrameSSIM,
        FrameSSIMWorst,
        FrameLPIPS,
        FrameLPIPSWorst,
        TemporalError,
    ]
    from harness.plugins import plugin_metrics

    return {cls.name: cls for cls in (*classes, *plugin_metrics())}
