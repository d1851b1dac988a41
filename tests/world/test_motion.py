"""The moving shapes world: its caption grammar, held-out split and clips."""

from __future__ import annotations

import numpy as np
import pytest

from harness.world.motion import (
    DIRECTIONS,
    FRAMES,
    all_motion_captions,
    held_out_motion_captions,
    is_held_out_motion,
    moving_from_caption,
    parse_motion_caption,
    random_moving,
    render_clips,
)
from harness.world.scene import BACKGROUND, COLORS, SHAPES


def test_grammar_covers_every_colour_shape_and_direction_once():
    captions = all_motion_captions()
    assert len(captions) == len(set(captions)) == len(COLORS) * len(SHAPES) * len(DIRECTIONS)
    assert {parse_motion_caption(c) for c in captions} == {
        (c, s, d) for c in COLORS for s in SHAPES for d in DIRECTIONS
    }


@pytest.mark.parametrize("text", ["a red circle on the left", "a pink circle moving left", "a red circle moving away"])
def test_text_outside_the_grammar_is_refused(text):
    assert parse_motion_caption(text) is None
    with pytest.raises(ValueError, match="not a motion caption"):
        moving_from_caption(text, np.random.default_rng(0))


def test_training_clips_never_draw_a_held_out_caption():
    held = set(held_out_motion_captions())
    assert held and all(is_held_out_motion(c) for c in held)
    drawn = {random_moving(seed).caption() for seed in range(2000)}
    assert not drawn & held
    assert len(drawn) == len(all_motion_captions()) - len(held)  # every training caption is reachable
    assert {random_moving(seed, held_out=True).caption() for seed in range(500)} == held


def _centroid(frame: np.ndarray) -> np.ndarray:
    """Centroid of the non-background pixels (x, y in image fractions), found without the oracle."""
    mask = np.abs(frame.astype(int) - np.array(BACKGROUND)).max(axis=-1) > 40
    ys, xs = np.nonzero(mask)
    return np.array([(xs.mean() + 0.5) / frame.shape[1], (ys.mean() + 0.5) / frame.shape[0]])


@pytest.mark.parametrize("direction", sorted(DIRECTIONS))
def test_a_clip_crosses_the_centre_at_its_middle_frame_moving_the_named_way(direction):
    shape = moving_from_caption(f"a blue square moving {direction}", np.random.default_rng(1))
    clip = render_clips([shape])[0]
    assert clip.shape == (FRAMES, 64, 64, 3)
    centres = np.stack([_centroid(frame) for frame in clip])
    step = np.asarray(DIRECTIONS[direction])
    travel = (centres[1:] - centres[:-1]) @ step
    assert (travel > 0).all() and abs((centres[-1] - centres[0]) @ step - shape.travel) < 0.03
    assert np.abs(centres[FRAMES // 2] - 0.5).max() < 0.1
    expected = np.array(shape.centre(0, FRAMES))
    assert np.abs(centres[0] - expected).max() < 0.02


def test_tensor_clips_are_the_uint8_clips_in_channel_first_layout():
    shapes = [random_moving(seed) for seed in range(3)]
    images = render_clips(shapes)
    tensor = render_clips(shapes, as_tensor=True)
    assert tuple(tensor.shape) == (3, 3, FRAMES, 64, 64)
    again = ((tensor.permute(0, 2, 3, 4, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    assert np.abs(again.astype(int) - images).max() <= 1
