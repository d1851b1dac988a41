"""Clips in the report: animated previews, key frames, per-frame curves."""

from __future__ import annotations

import base64
import io

import numpy as np

from harness.report.clips import animated_preview, key_frames


def test_the_preview_is_an_animated_gif_with_every_frame():
    from PIL import Image

    clip = np.concatenate([np.full((8, 8, 3), 30 * k, dtype=np.uint8) for k in range(5)])
    uri = animated_preview(clip, 5, width=32)
    assert uri.startswith("data:image/gif;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as gif:
        assert gif.n_frames == 5 and gif.size == (32, 32) and gif.info["loop"] == 0
        gif.seek(4)
        assert np.asarray(gif.convert("RGB"))[0, 0, 0] == 120


def test_key_frames_are_first_middle_last():
    clip = np.concatenate([np.full((4, 6, 3), k, dtype=np.uint8) for k in range(9)])
    row = key_frames(clip, 9)
    assert row.shape == (4, 3 * 6 + 2 * 2, 3)
    assert [row[0, 0, 0], row[0, 8, 0], row[0, 16, 0]] == [0, 4, 8]


def test_a_video_run_reports_clips(write_suite, tmp_path):
    from tests.helpers import bless_and_run, suite_head

    body = (
        suite_head("v", pipeline="builtin:tiny-wan", prompts=["a red ball", "waves"])
        + """frames = 5
[metrics]
frame_psnr = {}
temporal_error = {}
[thresholds]
temporal_error = { max = 3 }
[configs.fp32]
[configs.bf16]
dtype = "bfloat16"
[configs.flicker]
transform = "harness.controls:frame_flicker"
expect = "fail"
"""
    )
    code, results = bless_and_run(write_suite(body, name="v"), tmp_path / "run", "--device", "cpu")
    assert code == 0, results["checks"]
    html = (tmp_path / "run" / "report.html").read_text()
    assert html.count("data:image/gif;base64,") == 2 * 4  # 2 clips x (reference, fp32, bf16, flicker)
    assert 'alt="psnr per frame"' in html and 'alt="first, middle, last frames"' in html
    flicker = next(c for c in results["configs"] if c["name"] == "flicker")
    assert next(s["mean"] for s in flicker["summaries"] if s["metric"] == "temporal_error") > 3
