"""The motion oracle: real clips pass; still, reversed, sideways, vanishing or recoloured shapes fail."""

from __future__ import annotations

import numpy as np
import pytest

from harness.world.motion import FRAMES, held_out_motion_captions, moving_from_caption, render_clips
from harness.world.motion_oracle import MIN_TRAVEL, check_motion, motion_adherence
from harness.world.scene import BACKGROUND


def _clip(caption: str, seed: int = 0) -> list[np.ndarray]:
    return list(render_clips([moving_from_caption(caption, np.random.default_rng(seed))])[0])


@pytest.mark.parametrize("caption", held_out_motion_captions())
def test_real_clips_pass(caption):
    check = check_motion(_clip(caption), caption)
    assert check.moved and check.along is not None and check.along > 2 * MIN_TRAVEL
    assert motion_adherence(_clip(caption), caption) == 1.0


def test_a_still_a_reversed_and_a_sideways_clip_fail():
    frames = _clip("a red circle moving left")
    assert motion_adherence([frames[FRAMES // 2]] * FRAMES, "a red circle moving left") == 0.0
    assert motion_adherence(frames[::-1], "a red circle moving left") == 0.0
    assert motion_adherence(frames, "a red circle moving up") == 0.0


def test_a_shape_that_vanishes_for_one_frame_or_has_another_colour_fails():
    frames = _clip("a green star moving down")
    gone = [frame.copy() for frame in frames]
    gone[3][:] = BACKGROUND
    assert motion_adherence(gone, "a green star moving down") == 0.0
    assert motion_adherence(frames, "a purple star moving down") == 0.0


def test_other_text_is_refused():
    with pytest.raises(ValueError, match="not a motion caption"):
        check_motion(_clip("a red circle moving left"), "a red circle on the left")
