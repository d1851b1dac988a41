"""Difference heatmaps: small differences stay visible, and the colour bar matches the scale."""

from __future__ import annotations

import numpy as np

from harness.report.plots import HEATMAP_TICKS, difference_heatmap, heatmap_colorbar, heatmap_scale


def test_one_level_of_difference_is_visible_and_large_ones_saturate():
    assert heatmap_scale(np.asarray(0.0)) == 0.0
    assert heatmap_scale(np.asarray(1.0)) > 0.15  # was 1/32 = 0.03 on the old linear scale: black
    assert heatmap_scale(np.asarray(64.0)) == 1.0 and heatmap_scale(np.asarray(200.0)) == 1.0
    reference = np.full((4, 4, 3), 100, dtype=np.uint8)
    same, one_level = difference_heatmap(reference, reference), difference_heatmap(reference + 1, reference)
    assert same.shape == (4, 4, 3) and one_level.astype(int).sum() > same.astype(int).sum() + 4 * 4 * 50


def test_colour_bar_ticks_follow_the_scale():
    bar, ticks = heatmap_colorbar(256)
    assert bar.shape == (1, 256, 3) and bar.dtype == np.uint8
    assert [tick for tick, _ in ticks] == list(HEATMAP_TICKS)
    positions = [left for _, left in ticks]
    assert positions[0] == 0.0 and positions[-1] == 100.0 and positions == sorted(positions)


def test_a_thumbnail_heatmap_averages_the_full_size_difference():
    reference = np.full((8, 12, 3), 100, dtype=np.uint8)
    image = reference.copy()
    image[:4, :6] += 8  # the top-left quarter differs by 8 levels
    image[4:, 6:] += np.tile([[2, 0], [0, 2]], (2, 3))[..., None].astype(np.uint8)  # bottom right: 1 level on average
    small = difference_heatmap(image, reference, max_side=6)
    assert small.shape == (4, 6, 3)  # the aspect ratio is kept, at most 6 pixels a side
    full = difference_heatmap(image, reference)
    np.testing.assert_array_equal(small[0, 0], full[0, 0])  # a uniform region keeps its colour
    np.testing.assert_array_equal(small[0, 5], full[0, 11])  # no difference stays black
    one_level = difference_heatmap(reference + 1, reference)[0, 0]
    np.testing.assert_array_equal(small[3, 5], one_level)  # 2 levels on half the pixels -> the colour of 1 level
    assert difference_heatmap(image, reference, max_side=64).shape == (8, 12, 3)  # never enlarged
