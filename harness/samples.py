"""Sample identity and image files.

A sample is one (configuration, prompt, seed). Generators return float RGB images in
[0, 1] (possibly with NaN/Inf, which the harness detects before anything else); the
harness stores them as 8-bit PNGs, which is what metrics and people look at.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.options import option


@dataclass(frozen=True)
class Generation:
    """How each sample is generated. Every field is a top-level suite key (``steps = 8``), read and checked from
    its declaration, and part of every sample's identity (:mod:`harness.identity`): a field added here is both."""

    steps: int = option("denoising steps", default=20, minimum=1)
    width: int = option("image width in pixels", default=512, minimum=8, multiple_of=8)
    height: int = option("image height in pixels", default=512, minimum=8, multiple_of=8)
    guidance: float = option("classifier-free guidance scale", default=7.5)
    negative_prompt: str = option("negative prompt for every sample", default="")
    batch_size: int | None = option("samples per pipeline call (default: automatic)", default=None, minimum=1)
    # > 1: a video suite; each sample is a clip, stored as its frames stacked top to bottom
    frames: int = option(
        "frames per sample; more than 1 needs a video family (each sample is a clip)", default=1, minimum=1
    )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The stored sample's shape: one frame, or a clip's frames stacked vertically (a film strip)."""
        return (self.height * self.frames, self.width, 3)


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
    if not image.size:
        return ImageHealth(nonfinite_fraction=1.0, blank=True)
    if np.isfinite(image.sum()):  # the usual case, one pass: no NaN/Inf anywhere
        return ImageHealth(nonfinite_fraction=0.0, blank=bool(image.std() < BLANK_STD))
    finite = np.isfinite(image)
    values = np.where(finite, image, 0.0)
    return ImageHealth(nonfinite_fraction=float(1.0 - finite.mean()), blank=bool(values.std() < BLANK_STD))


def is_blank(image: np.ndarray) -> bool:
    """A stored uint8 image that is one flat colour: ``inspect_float_image``'s rule on 8-bit levels.

    Computed on the 8-bit values, not a [0, 1] float copy: 2.9 ms instead of 9.4 at 512 px (2 cores).
    """
    return bool(np.asarray(image).std() < BLANK_STD * 255.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] HxWx3 to uint8 the way diffusers' ``numpy_to_pil`` does; NaN becomes 0."""
    clean = np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0).astype(np.float32, copy=False)
    np.clip(clean, 0.0, 1.0, out=clean)
    np.multiply(clean, 255, out=clean)
    return np.rint(clean, out=clean).astype(np.uint8)


def save_png(image: np.ndarray, path: Path) -> str:
    """Write a uint8 HxWx3 image as PNG and return its sha256."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    # zlib level 1: the same pixels (PNG is lossless), 1.5-2.6x faster to write than the default
    # level 6 at 512 px for files about 13% larger (measured in docs/performance.md)
    Image.fromarray(image).save(path, format="PNG", compress_level=1)
    return sha256_file(path)


IO_THREADS = 4  # threads for PNG writing and thumbnails beside other work: zlib releases the GIL
READ_THREADS = 8  # threads reading PNGs for scoring, when nothing else runs (docs/performance.md)


def io_threads(most: int = IO_THREADS) -> int:
    """Threads for file work beside the main one: ``most``, or fewer on a smaller machine."""
    return min(most, os.cpu_count() or 1)


class FileWriter:
    """Runs file writes (PNG encoding, cache copies) on background threads, or inline with ``workers=0``.

    PNG encoding is zlib, which releases the GIL: on a GPU run the CPU is otherwise idle
    while the next batch generates, so writing there hides it (about 70 ms per 512 px
    image). On a CPU run the cores are busy generating, and a writer thread would only
    steal time from the batch being timed, so writes stay inline there.
    """

    def __init__(self, workers: int):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="harness-writer") if workers else None
        self._pending: list[Future[Any]] = []

    def submit(self, write: Callable[..., Any], *args: Any) -> None:
        if self._pool is None:
            write(*args)
        else:
            self._pending.append(self._pool.submit(write, *args))

    def drain(self) -> None:
        """Wait for every write so far; the first failure is raised here."""
        pending, self._pending = self._pending, []
        errors = [error for error in (future.exception() for future in pending) if error is not None]
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Finish what is queued (files already generated are never dropped) and stop the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._pending = []


def read_chunks(loads: Sequence[Sequence[Callable[[], Any]]], workers: int) -> Generator[list[Any], None, None]:
    """Each chunk's loaded values in order, the next chunk read on background threads meanwhile.

    At most three chunks are alive at once (the one being read, the one being scored and,
    briefly, the last one), whatever the number of chunks: scoring 5,000 images holds a
    few chunks of them, not 5,000. PNG decoding is zlib, which releases the
    GIL, so reading the next chunk overlaps with scoring the current one. ``workers=0``
    reads inline. An error raised by a load (a corrupt file) is raised here, in order.
    """
    if workers <= 0:
        for chunk in loads:
            yield [load() for load in chunk]
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="harness-reader") as pool:
        pending = [pool.submit(load) for load in loads[0]] if loads else []
        for index in range(len(loads)):
            current = pending
            pending = [pool.submit(load) for load in loads[index + 1]] if index + 1 < len(loads) else []
            try:
                yield [future.result() for future in current]
            except BaseException:
                for future in pending:
                    future.cancel()
                raise


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
