"""The shapes world: scenes of 1-2 coloured shapes at named positions, their captions, and a renderer.

Scenes are deterministic from a seed. Captions follow one grammar,
"a red circle on the left and a blue square at the top"; two objects always differ in
colour and position. About one in eight two-object captions (chosen by a hash of the
caption) is held out of training, for evaluation.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

SHAPES = ("circle", "square", "triangle", "star")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 70, 220),
    "yellow": (235, 215, 40),
    "purple": (150, 50, 190),
    "orange": (245, 140, 30),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
BACKGROUND = (128, 128, 128)
# Normalised (x, y) centres, y downwards.
POSITIONS: dict[str, tuple[float, float]] = {
    "left": (0.25, 0.5),
    "right": (0.75, 0.5),
    "top": (0.5, 0.25),
    "bottom": (0.5, 0.75),
    "center": (0.5, 0.5),
}
PHRASES = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
HELD_OUT_EVERY = 8
WORDS = sorted({*SHAPES, *COLORS, *POSITIONS, "a", "on", "the", "at", "in", "and"})


@dataclass(frozen=True)
class ShapeObject:
    shape: str
    color: str
    position: str
    dx: float = 0.0  # jitter of the centre, in image fractions
    dy: float = 0.0
    size: float = 0.12  # half-extent, in image fractions

    def phrase(self) -> str:
        return f"a {self.color} {self.shape} {PHRASES[self.position]}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[ShapeObject, ...]

    def caption(self) -> str:
        return " and ".join(obj.phrase() for obj in self.objects)


_PHRASE = re.compile(r"a (\w+) (\w+) (on the left|on the right|at the top|at the bottom|in the center)")


def parse_caption(caption: str) -> list[tuple[str, str, str]]:
    """(colour, shape, position) per object; an empty list if the caption is not in the grammar."""
    by_phrase = {phrase: position for position, phrase in PHRASES.items()}
    parts = caption.strip().lower().split(" and ")
    objects = []
    for part in parts:
        match = _PHRASE.fullmatch(part.strip())
        if not match or match.group(1) not in COLORS or match.group(2) not in SHAPES:
            return []
        objects.append((match.group(1), match.group(2), by_phrase[match.group(3)]))
    return objects


def is_held_out(caption: str) -> bool:
    """Held-out two-object captions, never used in training."""
    if " and " not in caption:
        return False
    return int(hashlib.sha256(caption.encode()).hexdigest()[:8], 16) % HELD_OUT_EVERY == 0


def all_captions() -> list[str]:
    """Every caption of the grammar: 160 one-object and 18,080 two-object ones."""
    singles = [f"a {c} {s} {PHRASES[p]}" for c in COLORS for s in SHAPES for p in POSITIONS]
    pairs = []
    for (c1, s1, p1), (c2, s2, p2) in itertools.permutations(itertools.product(COLORS, SHAPES, POSITIONS), 2):
        if c1 != c2 and p1 != p2:
            pairs.append(f"a {c1} {s1} {PHRASES[p1]} and a {c2} {s2} {PHRASES[p2]}")
    return singles + pairs


def scene_from_caption(caption: str, rng: np.random.Generator, jitter: float = 0.05) -> Scene:
    objects = []
    for color, shape, position in parse_caption(caption):
        objects.append(
            ShapeObject(
                shape,
                color,
                position,
                float(rng.uniform(-jitter, jitter)),
                float(rng.uniform(-jitter, jitter)),
                float(rng.uniform(0.09, 0.14)),
            )
        )
    return Scene(tuple(objects))


def random_scene(seed: int, held_out: bool | None = False) -> Scene:
    """A scene from a seed; ``held_out`` True/False restricts two-object captions to that split, None allows both."""
    rng = np.random.default_rng(seed)
    while True:
        count = 1 if rng.random() < 0.2 else 2
        colors = rng.choice(list(COLORS), size=count, replace=False)
        positions = rng.choice(list(POSITIONS), size=count, replace=False)
        shapes = rng.choice(list(SHAPES), size=count)
        caption = " and ".join(f"a {c} {s} {PHRASES[p]}" for c, s, p in zip(colors, shapes, positions, strict=True))
        if held_out is None or count == 1 or is_held_out(caption) == held_out:
            return scene_from_caption(caption, rng)


SHAPE_INDEX = {shape: index for index, shape in enumerate(SHAPES)}
MAX_OBJECTS = 2
CHUNK = 1024


def _shape_masks(u: Any, v: Any) -> Any:
    """(4, N, H, W) masks of every shape, in object-relative coordinates (u, v in units of the size)."""
    import torch

    circle = u * u + v * v <= 1.0
    square = (u.abs() <= 0.85) & (v.abs() <= 0.85)
    triangle = (v <= 0.8) & (v >= -1.0) & (u.abs() <= (v + 1.0) / 1.8)  # apex up
    angle = torch.atan2(u, -v)
    phase = torch.remainder(angle, 2 * np.pi / 5) / (2 * np.pi / 5)
    star = torch.sqrt(u * u + v * v) <= 0.45 + 0.55 * (1 - 2 * (phase - 0.5).abs())  # five points
    return torch.stack([circle, square, triangle, star])


def _render_chunk(scenes: list[Scene], big: int, device: Any) -> Any:
    import torch

    count = len(scenes)
    coords = (torch.arange(big, device=device, dtype=torch.float32) + 0.5) / big
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    canvas = torch.tensor(BACKGROUND, device=device, dtype=torch.float32).reshape(1, 3, 1, 1).repeat(count, 1, big, big)
    for slot in range(MAX_OBJECTS):
        objects = [scene.objects[slot] if slot < len(scene.objects) else None for scene in scenes]
        present = torch.tensor([obj is not None for obj in objects], device=device)
        if not bool(present.any()):
            continue
        filler = ShapeObject("circle", "red", "center")
        chosen = [obj or filler for obj in objects]
        cx = torch.tensor([POSITIONS[o.position][0] + o.dx for o in chosen], device=device).reshape(-1, 1, 1)
        cy = torch.tensor([POSITIONS[o.position][1] + o.dy for o in chosen], device=device).reshape(-1, 1, 1)
        r = torch.tensor([o.size for o in chosen], device=device).reshape(-1, 1, 1)
        shape = torch.tensor([SHAPE_INDEX[o.shape] for o in chosen], device=device)
        color = torch.tensor([COLORS[o.color] for o in chosen], device=device, dtype=torch.float32).reshape(-1, 3, 1, 1)
        masks = _shape_masks((x - cx) / r, (y - cy) / r)
        mask = masks[shape, torch.arange(count, device=device)] & present.reshape(-1, 1, 1)
        canvas = torch.where(mask.unsqueeze(1), color, canvas)
    return canvas


def render(scene: Scene, size: int = 64, supersample: int = 2, device: Any = "cpu") -> np.ndarray:
    """uint8 HxWx3: the scene on mid-grey, anti-aliased by supersampling."""
    return render_batch([scene], size, supersample, device)[0]


def render_batch(
    scenes: list[Scene], size: int = 64, supersample: int = 2, device: Any = "cpu", as_tensor: bool = False
) -> Any:
    """Render scenes (vectorised over the batch); as a float tensor in [-1, 1] (N, 3, H, W) with ``as_tensor``."""
    import torch
    import torch.nn.functional as F

    parts = []
    for first in range(0, len(scenes), CHUNK):
        canvas = _render_chunk(scenes[first : first + CHUNK], size * supersample, device)
        parts.append(F.avg_pool2d(canvas, supersample) if supersample > 1 else canvas)
    images = torch.cat(parts)
    if as_tensor:
        return images / 127.5 - 1.0
    return images.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
