"""The motion_adherence metric: clips stacked top to bottom, cut at the suite's frame count, scored by the oracle."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import InputError, Where
from harness.world.motion import FRAMES, held_out_motion_captions, moving_from_caption, render_clips
from harness.world.motion_adherence import MotionAdherence
from harness.world.motion_oracle import motion_adherence


def _stacked(captions: list[str]) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    clips = render_clips([moving_from_caption(c, rng) for c in captions])
    return [clip.reshape(FRAMES * 64, 64, 3) for clip in clips]


def test_scores_each_stacked_clip_as_the_oracle_scores_its_frames():
    captions = held_out_motion_captions(4)
    stacked = _stacked(captions)
    reversed_clip = np.concatenate(np.split(stacked[1], FRAMES)[::-1])
    metric = MotionAdherence({"frames": FRAMES})
    values = metric.score_images([stacked[0], reversed_clip, stacked[2]], [captions[0], captions[1], captions[2]])
    frames = np.split(reversed_clip, FRAMES)
    assert values == [1.0, motion_adherence(frames, captions[1]), 1.0] == [1.0, 0.0, 1.0]


def test_a_wrong_frame_count_is_an_error_not_a_score():
    with pytest.raises(ValueError, match="does not hold 5 frames"):
        MotionAdherence({"frames": 5}).score_images(_stacked(held_out_motion_captions(1)), held_out_motion_captions(1))


def test_prompts_outside_the_grammar_are_refused_naming_the_key():
    with pytest.raises(InputError, match="metrics.motion_adherence") as raised:
        MotionAdherence.check_prompts(["a red circle moving left", "a cat walking"], Where("suite.toml"))
    assert "prompt 1" in str(raised.value)


def test_cached_values_are_keyed_by_the_frame_count():
    assert MotionAdherence({"frames": 9}).values_id() != MotionAdherence({"frames": 5}).values_id()
