"""The shapes world: deterministic renders, a complete caption grammar, a held-out split."""

from __future__ import annotations

import numpy as np

from harness.world.scene import (
    COLORS,
    POSITIONS,
    all_captions,
    is_held_out,
    parse_caption,
    random_scene,
    render,
    render_batch,
)


def test_renderer_is_deterministic_from_the_seed():
    first = render(random_scene(7))
    again = render(random_scene(7))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, render(random_scene(8)))
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8


def test_batch_render_equals_single_renders():
    scenes = [random_scene(i) for i in range(5)]
    batch = render_batch(scenes)
    for index, scene in enumerate(scenes):
        np.testing.assert_array_equal(batch[index], render(scene))


def test_objects_are_drawn_in_their_colour_where_named():
    scene = random_scene(3)
    image = render(scene).astype(int)
    for obj in scene.objects:
        x, y = POSITIONS[obj.position]
        cx, cy = int((x + obj.dx) * 64), int((y + obj.dy) * 64)
        assert np.abs(image[cy, cx] - np.array(COLORS[obj.color])).max() < 10


def test_grammar_and_held_out_split():
    captions = all_captions()
    assert len(captions) == len(set(captions)) == 18080
    assert sum(" and " not in c for c in captions) == 160
    held = [c for c in captions if is_held_out(c)]
    assert 0.1 < len(held) / 17920 < 0.15 and not any(" and " not in c for c in held)
    for seed in range(200):
        caption = random_scene(seed, held_out=False).caption()
        assert not is_held_out(caption)
    assert parse_caption("a red circle on the left and a blue square at the top") == [
        ("red", "circle", "left"),
        ("blue", "square", "top"),
    ]
    assert parse_caption("a photo of a cat") == []
