"""A pipeline family: what the harness must know about one kind of diffusers pipeline.

The harness drives every family the same way (one call per batch, per-sample CPU
generators, float images out). A family adds only what differs: extra call
arguments, how starting latents are made, and which module is the denoiser.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

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

    def call_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``pipe(...)``."""
        return {}

    def initial_latents(self, pipe: Any, seeds: Sequence[int], height: int, width: int) -> torch.Tensor | None:
        """Starting noise for a batch, one CPU generator per sample; ``None`` lets the pipeline draw it."""
        return None

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
