"""The shapes world in motion: clips of one coloured shape crossing the frame in a named direction.

Captions follow one grammar, "a red circle moving left": 8 colours x 4 shapes x 4
directions, 128 captions, of which about one in eight (chosen by a hash of the caption)
is held out of training for evaluation. The shape starts on the side it moves away from
and crosses the middle of the frame at the middle frame, so a clip's middle frame is a
still of the shapes world ("a red circle in the center"). Clips are deterministic from
a seed and rendered frame by frame with the still world's renderer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.world.scene import COLORS, SHAPES, Scene, ShapeObject, render_batch

# unit steps in image fractions, y downwards
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
}
FRAMES = 9  # Wan's VAE compresses time by 4: 4k + 1 frames, here 3 latent frames
TRAVEL = 0.5  # how far the centre moves over the clip (image fractions), before jitter
HELD_OUT_EVERY = 8
WORDS = sorted({*SHAPES, *COLORS, *DIRECTIONS, "a", "moving"})

_CAPTION = re.compile(r"a (\w+) (\w+) moving (\w+)")


@dataclass(frozen=True)
class MovingShape:
    shape: str
    color: str
    direction: str
    lane: float = 0.0  # offset across the motion, image fractions
    offset: float = 0.0  # offset of the crossing point along the motion
    travel: float = TRAVEL
    size: float = 0.12  # half-extent, image fractions

    def caption(self) -> str:
        return f"a {self.color} {self.shape} moving {self.direction}"

    def centre(self, frame: int, frames: int) -> tuple[float, float]:
        """The centre at ``frame`` of ``frames``, (x, y) in image fractions."""
        step_x, step_y = DIRECTIONS[self.direction]
        along = self.offset + self.travel * (frame / max(1, frames - 1) - 0.5)
        return 0.5 + step_x * along - step_y * self.lane, 0.5 + step_y * along + step_x * self.lane

    def frame(self, frame: int, frames: int) -> Scene:
        x, y = self.centre(frame, frames)
        return Scene((ShapeObject(self.shape, self.color, "center", x - 0.5, y - 0.5, self.size),))


def parse_motion_caption(caption: str) -> tuple[str, str, str] | None:
    """(colour, shape, direction), or ``None`` if the caption is not in the grammar."""
    match = _CAPTION.fullmatch(caption.strip().lower())
    if not match:
        return None
    color, shape, direction = match.groups()
    if color not in COLORS or shape not in SHAPES or direction not in DIRECTIONS:
        return None
    return color, shape, direction


def all_motion_captions() -> list[str]:
    return [f"a {c} {s} moving {d}" for c in COLORS for s in SHAPES for d in DIRECTIONS]


def is_held_out_motion(caption: str) -> bool:
    return int(hashlib.sha256(caption.encode()).hexdigest()[:8], 16) % HELD_OUT_EVERY == 0


def moving_from_caption(caption: str, rng: np.random.Generator) -> MovingShape:
    parsed = parse_motion_caption(caption)
    if parsed is None:
        raise ValueError(f"not a motion caption: {caption!r}")
    color, shape, direction = parsed
    return MovingShape(
        shape,
        color,
        direction,
        lane=float(rng.uniform(-0.06, 0.06)),
        offset=float(rng.uniform(-0.04, 0.04)),
        travel=float(rng.uniform(0.45, 0.55)),
        size=float(rng.uniform(0.09, 0.13)),
    )


def random_moving(seed: int, held_out: bool = False) -> MovingShape:
    """A clip's shape from a seed, its caption in the training split (or, with ``held_out``, the held-out one)."""
    rng = np.random.default_rng(seed)
    split = [caption for caption in all_motion_captions() if is_held_out_motion(caption) == held_out]
    return moving_from_caption(split[int(rng.integers(0, len(split)))], rng)


def held_out_motion_captions(count: int | None = None) -> list[str]:
    """The held-out captions in a fixed order (all of them, or the first ``count``)."""
    held = [caption for caption in all_motion_captions() if is_held_out_motion(caption)]
    order = np.random.default_rng(12345).permutation(len(held))
    chosen = [held[i] for i in order]
    return chosen if count is None else chosen[:count]


def render_clips(
    shapes: list[MovingShape], frames: int = FRAMES, size: int = 64, device: Any = "cpu", as_tensor: bool = False
) -> Any:
    """Clips of ``shapes``: uint8 (N, F, H, W, 3), or with ``as_tensor`` a float tensor in [-1, 1] (N, 3, F, H, W)."""
    scenes = [shape.frame(index, frames) for shape in shapes for index in range(frames)]
    if as_tensor:
        images = render_batch(scenes, size, device=device, as_tensor=True)
        return images.reshape(len(shapes), frames, 3, size, size).permute(0, 2, 1, 3, 4).contiguous()
    return render_batch(scenes, size, device=device).reshape(len(shapes), frames, size, size, 3)
