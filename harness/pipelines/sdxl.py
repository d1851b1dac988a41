"""Stable Diffusion XL: ``StableDiffusionXLPipeline`` (UNet with micro-conditioning, two CLIPs) and its tiny model.

SDXL's VAE overflows float16: some decoder activations pass 65504, float16's largest
value, and the image comes out black or NaN. The pipeline therefore decodes in float32
when the VAE's config says ``force_upcast`` (the default of SDXL's own VAE). The tiny
model's VAE overflows the same way (:func:`make_vae_overflow_fp16`), so its float16 runs
are correct only while the upcast happens.
"""

from __future__ import annotations

from typing import Any, ClassVar

from harness.pipelines.family import Builtin, LatentFamily

FP16_MAX = 65504.0


# The released SDXL UNet's configuration (2.6B parameters), for full-width layout tests and benchmarks on the meta
# device or with random weights; real models load their own.
SDXL_UNET: dict[str, Any] = {
    "sample_size": 128,
    "block_out_channels": (320, 640, 1280),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "transformer_layers_per_block": (1, 2, 10),
    "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
}


class SDXLFamily(LatentFamily):
    """SDXL base: latents (N, 4, H/8, W/8) in the UNet's dtype; size conditioning from height and width."""

    name: ClassVar[str] = "sdxl"
    pipeline_class: ClassVar[str] = "StableDiffusionXLPipeline"
    denoiser: ClassVar[str] = "unet"
    single_file: ClassVar[bool] = True


def make_vae_overflow_fp16(vae: Any, gain: float = 1e5) -> Any:
    """Scale the first decoder ResNet's first conv so its activations pass float16's range, as SDXL's VAE's do.

    That conv's output feeds only the block's second GroupNorm, which is invariant to
    scale: in float32 the decoded image changes by rounding alone; in float16 the conv
    overflows to inf and the norm turns it into NaN.
    """
    import torch

    conv = vae.decoder.mid_block.resnets[0].conv1
    with torch.no_grad():
        conv.weight.mul_(gain)
        conv.bias.mul_(gain)
    return vae


def no_vae_upcast(pipe: Any) -> Any:
    """The VAE decodes in the pipeline's dtype even in float16 (``force_upcast`` off): the black/NaN image recipe.

    Use as ``transform = "harness.pipelines.sdxl:no_vae_upcast"``.
    """
    pipe.vae.register_to_config(force_upcast=False)
    return pipe


def build_tiny_sdxl(overflowing_vae: bool = True) -> Any:
    """A deterministic tiny SDXL pipeline (UNet 32/64 with text-time conditioning, 64 px images).

    ``overflowing_vae`` (default) gives the VAE SDXL's float16 overflow: activations past 65504.
    """
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from harness.pipelines.components import TINY_UNET_LAYOUT, tiny_clip, tiny_vae

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        **TINY_UNET_LAYOUT,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 size/crop numbers x 8 + the pooled text embedding (32)
        cross_attention_dim=64,  # both text encoders' widths, concatenated
    )
    vae = tiny_vae(4, scaling_factor=0.13025, force_upcast=True)
    if overflowing_vae:
        make_vae_overflow_fp16(vae)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    return StableDiffusionXLPipeline(
        unet=unet,
        vae=vae,
        scheduler=scheduler,
        **tiny_clip("text_encoder", "tokenizer", CLIPTextModel),
        **tiny_clip("text_encoder_2", "tokenizer_2", CLIPTextModelWithProjection),
    )


FAMILY = SDXLFamily
BUILTINS = (
    Builtin(
        "tiny-sdxl",
        "random tiny SDXL (UNet 32/64 with text-time conditioning, two CLIPs; its VAE overflows float16 like SDXL's)",
        SDXLFamily,
        build_tiny_sdxl,
    ),
)
