"""Sample identity and image files.

A sample is one (configuration, prompt, seed). Generators return float RGB images in
[0, 1] (possibly with NaN/Inf, which the harness detects before anything else); the
harness stores them as 8-bit PNGs, which is what metrics and people look at.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class SampleJob:
    """One image to generate."""

    config: str
    prompt_index: int
    prompt: str
    seed: int

    @property
    def key(self) -> str:
        """The sample's name within a configuration, e.g. ``p003-s1``."""
        return sample_key(self.prompt_index, self.seed)


def sample_key(prompt_index: int, seed: int) -> str:
    return f"p{prompt_index:03d}-s{seed}"


@dataclass(frozen=True)
class ImageHealth:
    """What is wrong with a generated image before any comparison."""

    nonfinite_fraction: float
    blank: bool

    @property
    def ok(self) -> bool:
        return self.nonfinite_fraction == 0.0 and not self.blank


BLANK_STD = 1.0 / 255.0


def inspect_float_image(image: np.ndarray) -> ImageHealth:
    """NaN/Inf fraction and blankness (every pixel within about one 8-bit level of the mean)."""
    finite = np.isfinite(image)
    nonfinite = float(1.0 - finite.mean()) if image.size else 1.0
    values = np.where(finite, image, 0.0)
    blank = bool(values.std() < BLANK_STD)
    return ImageHealth(nonfinite_fraction=nonfinite, blank=blank)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] HxWx3 to uint8 the way diffusers' ``numpy_to_pil`` does; NaN becomes 0."""
    clean = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(clean, 0.0, 1.0) * 255).round().astype(np.uint8)


def save_png(image: np.ndarray, path: Path) -> str:
    """Write a uint8 HxWx3 image as PNG and return its sha256."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")
    return sha256_file(path)


def load_png(path: Path) -> np.ndarray:
    """Read an image file as uint8 HxWx3 (alpha dropped, greyscale expanded)."""
    from PIL import Image

    with Image.open(path) as handle:
        return np.asarray(handle.convert("RGB"), dtype=np.uint8)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
