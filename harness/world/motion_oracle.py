"""The exact motion-adherence check of the moving shapes world (:mod:`harness.world.motion`).

A clip passes when the named colour is present (at least ``MIN_PIXELS`` pixels) in every
frame and its centroid moves, from the first frame to the last, at least ``MIN_TRAVEL``
of the image along the named direction while drifting at most ``MAX_DRIFT`` across it.
Real renders travel 0.45-0.55 with a drift of 0; a shape that stands still, moves the
wrong way, vanishes for a frame or changes colour fails. Colours are matched as the
still oracle matches them (:func:`harness.world.oracle.colour_centroid`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.world.motion import DIRECTIONS, parse_motion_caption
from harness.world.oracle import MIN_PIXELS, colour_centroid

MIN_TRAVEL = 0.2
MAX_DRIFT = 0.15


@dataclass(frozen=True)
class MotionCheck:
    color: str
    direction: str
    pixels: tuple[int, ...]  # the colour's pixel count in each frame
    along: float | None  # the centroid's displacement along the named direction, first to last frame
    across: float | None

    @property
    def present(self) -> bool:
        return min(self.pixels) >= MIN_PIXELS

    @property
    def moved(self) -> bool:
        return (
            self.present
            and self.along is not None
            and self.across is not None
            and self.along >= MIN_TRAVEL
            and abs(self.across) <= MAX_DRIFT
        )


def check_motion(frames: list[np.ndarray], caption: str) -> MotionCheck:
    """The named shape's presence in each of ``frames`` (uint8 HxWx3) and its displacement from first to last."""
    parsed = parse_motion_caption(caption)
    if parsed is None:
        raise ValueError(f"not a motion caption: {caption!r}")
    color, _, direction = parsed
    found = [colour_centroid(frame, color) for frame in frames]
    first, last = found[0][1], found[-1][1]
    along = across = None
    if first is not None and last is not None:
        step = np.asarray(DIRECTIONS[direction])
        delta = last - first
        along = float(delta @ step)
        across = float(delta @ np.array([-step[1], step[0]]))
    return MotionCheck(color, direction, tuple(count for count, _ in found), along, across)


def motion_adherence(frames: list[np.ndarray], caption: str) -> float:
    """1.0 if the clip shows the named colour moving the named way throughout, else 0.0."""
    return float(check_motion(frames, caption).moved)
