"""Temporal error against an independent numpy computation: flicker seen, a static error not."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.temporal import TemporalError, temporal_error
from harness.metrics.video import FramePSNR, split_frames


def test_temporal_error_sees_flicker_and_not_a_static_error():
    reference = np.random.default_rng(1).integers(20, 236, (6 * 16, 12, 3), dtype=np.uint8)  # no clipping at 0/255
    static = np.clip(reference.astype(int) + 10, 0, 255).astype(np.uint8)
    signs = np.repeat(np.array([1, -1, 1, -1, 1, -1]), 16)[:, None, None]
    flicker = np.clip(reference.astype(int) + 3 * signs, 0, 255).astype(np.uint8)
    # the static error is far larger per frame, yet has no temporal error
    frame_psnr = FramePSNR({"frames": 6})
    assert frame_psnr.score_pairs([static], [reference])[0] < frame_psnr.score_pairs([flicker], [reference])[0]
    assert temporal_error(static, reference, 6) == 0.0 and temporal_error(flicker, reference, 6) == pytest.approx(6.0)
    # independent: the RMS of the difference between the two clips' frame-to-frame changes
    ours, theirs = np.stack(split_frames(flicker, 6)).astype(float), np.stack(split_frames(reference, 6)).astype(float)
    expected = np.sqrt(np.mean((np.diff(ours, axis=0) - np.diff(theirs, axis=0)) ** 2))
    assert temporal_error(flicker, reference, 6) == pytest.approx(expected)
    assert TemporalError({"frames": 6}).score_pairs([flicker, reference], [reference, reference]) == [
        pytest.approx(expected),
        0.0,
    ]
