"""Frame metrics and temporal error on clips, against independent per-frame computations (scikit-image, numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from harness.metrics.temporal import temporal_error
from harness.metrics.video import FramePSNR, FramePSNRWorst, FrameSSIM, FrameSSIMWorst, split_frames
from harness.registry import build_registry


def clip_pair(frames: int = 5, height: int = 16, width: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 256, (frames * height, width, 3), dtype=np.uint8)
    noise = np.concatenate(
        [rng.integers(-k, k + 1, (height, width, 3)) for k in range(2, 2 + 3 * frames, 3)]
    )  # each frame noisier than the last: the worst frame is the last
    clip = np.clip(reference.astype(int) + noise, 0, 255).astype(np.uint8)
    return clip, reference


def test_split_frames_cuts_a_stacked_clip_and_refuses_a_bad_count():
    clip, _ = clip_pair()
    frames = split_frames(clip, 5)
    assert len(frames) == 5 and all(f.shape == (16, 12, 3) for f in frames)
    np.testing.assert_array_equal(np.concatenate(frames), clip)
    with pytest.raises(ValueError, match="does not hold 3 frames"):
        split_frames(clip, 3)


def test_frame_psnr_is_the_mean_and_worst_of_per_frame_psnr():
    clip, reference = clip_pair()
    per_frame = [
        peak_signal_noise_ratio(r, c, data_range=255) for c, r in zip(split_frames(clip, 5), split_frames(reference, 5))
    ]
    mean = FramePSNR({"frames": 5}).score_pairs([clip], [reference])
    worst = FramePSNRWorst({"frames": 5}).score_pairs([clip], [reference])
    np.testing.assert_allclose(mean, [np.mean(per_frame)], rtol=1e-5)
    np.testing.assert_allclose(worst, [min(per_frame)], rtol=1e-5)
    assert worst[0] < mean[0]


def test_frame_ssim_matches_scikit_image_per_frame():
    clip, reference = clip_pair(height=24, width=24, seed=3)
    per_frame = [
        structural_similarity(
            r, c, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        for c, r in zip(split_frames(clip, 5), split_frames(reference, 5))
    ]
    np.testing.assert_allclose(
        FrameSSIM({"frames": 5}).score_pairs([clip], [reference]), [np.mean(per_frame)], atol=2e-3
    )
    np.testing.assert_allclose(
        FrameSSIMWorst({"frames": 5}).score_pairs([clip], [reference]), [min(per_frame)], atol=2e-3
    )


def test_one_frame_clips_are_images():
    from harness.metrics.psnr import psnr_batch

    clip, reference = clip_pair(frames=1)
    assert FramePSNR({"frames": 1}).score_pairs([clip], [reference]) == psnr_batch([clip], [reference])
    assert temporal_error(clip, reference, 1) == 0.0


def test_a_suite_gives_clip_metrics_its_frames(write_suite):
    from harness.plan.suite import load_suite

    body = (
        'name = "v"\npipeline = "builtin:tiny-wan"\nreference = "fp32"\nprompts = ["a"]\nseeds = [0]\nframes = 9\n'
        "[metrics]\nframe_psnr = {}\ntemporal_error = {}\nframe_ssim_worst = { frames = 3 }\npsnr = {}\n"
        "[configs.fp32]\n"
    )
    suite = load_suite(write_suite(body, name="v"), build_registry())
    options = {m.name: m.options for m in suite.metrics}
    assert options["frame_psnr"]["frames"] == 9 and options["temporal_error"]["frames"] == 9
    assert options["frame_ssim_worst"]["frames"] == 3  # given in the suite: kept
    assert "frames" not in options["psnr"]
