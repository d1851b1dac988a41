"""FLUX.1: ``FluxPipeline`` (MM-DiT on packed latents, CLIP + T5, guidance embedding) and its tiny model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from harness.pipelines.components import tiny_clip, tiny_t5, tiny_vae
from harness.pipelines.family import Builtin, Family, seeded_noise

if TYPE_CHECKING:
    import torch


class FluxFamily(Family):
    """FLUX.1 dev/schnell.

    The transformer sees latents packed into 2x2 patches: a sequence of (H/2f)(W/2f)
    tokens of 4C channels. The starting noise is drawn per sample in the unpacked
    (C, H/f, W/f) layout and packed as the pipeline packs it. Guidance is an embedding
    (``guidance_scale``), not classifier-free guidance, so a negative prompt is unused.
    """

    name: ClassVar[str] = "flux"
    pipeline_class: ClassVar[str] = "FluxPipeline"
    denoiser: ClassVar[str] = "transformer"
    single_file: ClassVar[bool] = True

    def initial_latents(self, pipe: Any, seeds: Sequence[int], height: int, width: int) -> torch.Tensor | None:
        channels = int(pipe.transformer.config.in_channels) // 4
        factor = int(pipe.vae_scale_factor) * 2
        rows, cols = height // factor, width // factor
        noise = seeded_noise(seeds, (channels, rows * 2, cols * 2))
        packed = noise.view(len(seeds), channels, rows, 2, cols, 2).permute(0, 2, 4, 1, 3, 5)
        return packed.reshape(len(seeds), rows * cols, channels * 4)

    def call_kwargs(self) -> dict[str, Any]:
        return {"max_sequence_length": 64}


def build_tiny_flux() -> Any:
    """A deterministic tiny FLUX.1-dev-shaped pipeline (64 px images, 256 packed tokens of width 256).

    The transformer's width is 256 (2 heads of 128, as in FLUX.1) so its Linear rows fit
    GGUF's 256-element K-quant super-blocks, like the full-size model's.
    """
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5EncoderModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=2,
        attention_head_dim=128,
        num_attention_heads=2,
        joint_attention_dim=64,
        pooled_projection_dim=32,
        guidance_embeds=True,
        axes_dims_rope=(16, 56, 56),
    )
    vae = tiny_vae(4, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035)
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        transformer=transformer,
        **tiny_clip("text_encoder", "tokenizer", CLIPTextModel),
        **tiny_t5("text_encoder_2", "tokenizer_2", T5EncoderModel, d_model=64),
    )


FAMILY = FluxFamily
BUILTINS = (
    Builtin(
        "tiny-flux",
        "random tiny FLUX.1-dev (1 double + 2 single blocks of width 256, CLIP 32 + T5 64, guidance embedding, 64 px)",
        FluxFamily,
        build_tiny_flux,
    ),
)
