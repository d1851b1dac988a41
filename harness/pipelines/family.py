"""A pipeline family: what the harness must know about one kind of diffusers pipeline.

The harness drives every family the same way (one call per batch, per-sample CPU
generators, float images out). A family adds only what differs: extra call
arguments, how starting latents are made, and which module is the denoiser.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import torch


class Family:
    """The generic family: any text-to-image ``DiffusionPipeline``.

    It lets the pipeline draw its own starting noise from the per-sample generators.
    """

    name: ClassVar[str] = "generic"
    pipeline_class: ClassVar[str] = "DiffusionPipeline"
    denoiser: ClassVar[str] = "transformer"
    single_file: ClassVar[bool] = False  # whether diffusers loads the whole pipeline from one original checkpoint
    video: ClassVar[bool] = False  # a text-to-video family: each sample is a clip (the suite's ``frames``)

    def call_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``pipe(...)``."""
        return {}

    def initial_latents(self, pipe: Any, seeds: Sequence[int], height: int, width: int) -> torch.Tensor | None:
        """Starting noise for a batch, one CPU generator per sample; ``None`` lets the pipeline draw it."""
        return None

    def frame_kwargs(self, frames: int) -> dict[str, Any]:
        """Call arguments for clips of ``frames`` frames (video families)."""
        return {}

    def images(self, output: Any) -> np.ndarray:
        """The pipeline output as float images, (N, H, W, 3) in [0, 1]."""
        return np.asarray(output.images, dtype=np.float32)

    def denoiser_module(self, pipe: Any) -> Any:
        return getattr(pipe, self.denoiser, None) or getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)


def seeded_noise(seeds: Sequence[int], shape: tuple[int, ...]) -> torch.Tensor:
    """Stack one float32 normal sample per seed, each from its own CPU generator.

    A sample's noise depends only on its seed, never on batch composition or device RNG,
    and every precision starts from the same noise (rounded to its dtype).
    """
    import torch

    samples = []
    for seed in seeds:
        generator = torch.Generator("cpu").manual_seed(int(seed))
        samples.append(torch.randn(shape, generator=generator, dtype=torch.float32))
    return torch.stack(samples)


class LatentFamily(Family):
    """A family whose pipeline accepts ``latents=`` of shape (N, C, H/f, W/f)."""

    latents_follow_denoiser_dtype: ClassVar[bool] = True

    def initial_latents(self, pipe: Any, seeds: Sequence[int], height: int, width: int) -> torch.Tensor | None:
        denoiser = self.denoiser_module(pipe)
        factor = int(pipe.vae_scale_factor)
        shape = (int(denoiser.config.in_channels), height // factor, width // factor)
        noise = seeded_noise(seeds, shape)
        if self.latents_follow_denoiser_dtype:
            noise = noise.to(denoiser.dtype)
        return noise


class VideoFamily(Family):
    """A text-to-video family: the pipeline takes ``num_frames`` and returns ``frames`` (N, F, H, W, 3); each clip is
    kept as its frames stacked top to bottom (N, F x H, W, 3), so caching, health checks and storage treat a clip
    as one image, and the frame metrics (``harness/metrics/video.py``) cut it back into frames."""

    video: ClassVar[bool] = True

    def frame_kwargs(self, frames: int) -> dict[str, Any]:
        return {"num_frames": frames}

    def images(self, output: Any) -> np.ndarray:
        clips = np.asarray(output.frames, dtype=np.float32)
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise RuntimeError(f"a video pipeline returned frames of shape {clips.shape}, expected (N, F, H, W, 3)")
        count, frames, height, width, _ = clips.shape
        return clips.reshape(count, frames * height, width, 3)


@dataclass(frozen=True)
class Builtin:
    """A named pipeline the harness builds offline (``builtin:NAME``): constructed in code, or loaded from weights
    that ship with a plug-in. A family's module lists its own in ``BUILTINS``."""

    name: str
    description: str
    family: type[Family]
    build: Callable[[], Any]
    evaluator: str = "builtin:tiny"  # the CLIP model (and feature space) metrics default to on this pipeline


@dataclass
class LoadedPipeline:
    """A pipeline loaded once per suite (float32, on the CPU); configurations derive copies from it.

    ``fingerprint`` identifies its content, weights and the configuration of its other components (the digest of
    :class:`harness.identity.PipelineIdentity`); ``identity`` is that record."""

    pipe: Any
    family: Family
    source: Any  # harness.plan.source.PipelineSource
    fingerprint: str
    load_seconds: float
    identity: Any = None  # harness.identity.PipelineIdentity


def made(value: Any) -> Any:
    """A pipeline handed over in Python (harness.api): the pipeline itself, or what a function making one returns."""
    return value() if callable(value) and not hasattr(value, "components") else value
