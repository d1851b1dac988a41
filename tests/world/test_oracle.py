"""The adherence oracle is right on real renders and catches wrong colours and positions."""

from __future__ import annotations

import numpy as np
import pytest

from harness.world.oracle import adherence, check_objects
from harness.world.scene import BACKGROUND, random_scene, render, scene_from_caption


def test_real_renders_score_one():
    for seed in range(40):
        scene = random_scene(seed, held_out=None)
        assert adherence(render(scene), scene.caption()) == 1.0, scene.caption()


def test_wrong_position_colour_or_blank_lose_credit():
    caption = "a red circle on the left and a blue square at the top"
    moved = scene_from_caption("a red circle on the right and a blue square at the top", np.random.default_rng(0))
    assert adherence(render(moved), caption) == 0.5
    recoloured = scene_from_caption("a green circle on the left and a blue square at the top", np.random.default_rng(0))
    assert adherence(render(recoloured), caption) == 0.5
    blank = np.full((64, 64, 3), BACKGROUND, dtype=np.uint8)
    assert adherence(blank, caption) == 0.0
    checks = check_objects(blank, caption)
    assert [c.pixels for c in checks] == [0, 0]


def test_not_a_world_caption():
    with pytest.raises(ValueError, match="not a shapes-world caption"):
        adherence(np.zeros((64, 64, 3), dtype=np.uint8), "a photo of a cat")


def test_adherence_values_are_cached_under_the_oracles_code():
    from harness.world.adherence import Adherence

    first, second = Adherence({}).values_id(), Adherence({}).values_id()
    assert first == second and first is not None and first.startswith("adherence|")
