"""The exact prompt-adherence metric only this world allows.

For each object the caption names: are there at least ``MIN_PIXELS`` pixels of its
colour, and is their centroid within ``MAX_DISTANCE`` (in image fractions) of the named
position? An image scores the fraction of its objects that pass. Real renders score 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.world.scene import COLORS, POSITIONS, parse_caption

MIN_PIXELS = 12
MAX_DISTANCE = 0.15
COLOR_TOLERANCE = 60.0  # Euclidean RGB distance; the closest pair of world colours is about 100 apart


@dataclass(frozen=True)
class ObjectCheck:
    color: str
    shape: str
    position: str
    pixels: int
    distance: float | None

    @property
    def present(self) -> bool:
        return self.pixels >= MIN_PIXELS

    @property
    def placed(self) -> bool:
        return self.present and self.distance is not None and self.distance <= MAX_DISTANCE


def colour_centroid(image: np.ndarray, color: str) -> tuple[int, np.ndarray | None]:
    """How many pixels of ``image`` have the world colour ``color``, and their centroid (x, y in image fractions)."""
    height, width = image.shape[:2]
    pixels = image.reshape(-1, 3).astype(np.float32)
    close = np.linalg.norm(pixels - np.asarray(COLORS[color], dtype=np.float32), axis=1) <= COLOR_TOLERANCE
    count = int(close.sum())
    if not count:
        return 0, None
    ys, xs = np.divmod(np.flatnonzero(close), width)
    return count, np.array([(xs.mean() + 0.5) / width, (ys.mean() + 0.5) / height])


def check_objects(image: np.ndarray, caption: str) -> list[ObjectCheck]:
    """Per named object, its colour's pixel count and the centroid's distance from the named position."""
    checks = []
    for color, shape, position in parse_caption(caption):
        count, centroid = colour_centroid(image, color)
        distance = None if centroid is None else float(np.linalg.norm(centroid - np.asarray(POSITIONS[position])))
        checks.append(ObjectCheck(color, shape, position, count, distance))
    return checks


def adherence(image: np.ndarray, caption: str) -> float:
    """Fraction of the caption's objects present in their colour at their named position."""
    checks = check_objects(image, caption)
    if not checks:
        raise ValueError(f"not a shapes-world caption: {caption!r}")
    return sum(check.placed for check in checks) / len(checks)
