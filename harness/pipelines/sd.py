"""Stable Diffusion (1.x/2.x layout): ``StableDiffusionPipeline`` and its built-in tiny model."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.pipelines.family import Builtin, LatentFamily


class StableDiffusionFamily(LatentFamily):
    """UNet + AutoencoderKL + CLIP text encoder.

    SD's pipeline takes ``latents`` as given (no cast), so they follow the UNet's dtype.
    """

    name: ClassVar[str] = "sd"
    pipeline_class: ClassVar[str] = "StableDiffusionPipeline"
    denoiser: ClassVar[str] = "unet"
    single_file: ClassVar[bool] = True


def build_tiny_sd(time_cond_proj_dim: int | None = None) -> Any:
    """A deterministic tiny SD pipeline (UNet widths 32/64, 64 px images -> 32x32 latents).

    Every Linear layer's input width is a multiple of 32, so GGUF block quantization
    applies to it. ``time_cond_proj_dim`` makes it an LCM-style UNet
    (``time_embedding.cond_proj``), the layer single-file conversions are known to drop.
    """
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    from harness.pipelines.components import TINY_UNET_LAYOUT, tiny_clip, tiny_vae

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        **TINY_UNET_LAYOUT,
        cross_attention_dim=32,
        attention_head_dim=8,
        time_cond_proj_dim=time_cond_proj_dim,
    )
    vae = tiny_vae(4)
    # CLIPTextModel has no projection: projection_dim stays transformers' default, as the config always said.
    text = tiny_clip("text_encoder", "tokenizer", CLIPTextModel, projection_dim=512, layers=4, hidden_act="quick_gelu")
    return assemble_sd({"unet": unet, "vae": vae, **text, "scheduler": sd15_scheduler()})


def build_tiny_sd_lcm() -> Any:
    """tiny-sd with an LCM-style UNet (``time_embedding.cond_proj``)."""
    return build_tiny_sd(time_cond_proj_dim=32)


def sd15_scheduler() -> Any:
    """SD1.x's DDIM schedule (scaled-linear betas, epsilon prediction, "leading" steps)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def assemble_sd(components: dict[str, Any]) -> Any:
    """A StableDiffusionPipeline from unet, vae, text_encoder, tokenizer and scheduler, with no safety checker."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        **components, safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False
    )


FAMILY = StableDiffusionFamily
BUILTINS = (
    Builtin(
        "tiny-sd",
        "random tiny Stable Diffusion (UNet 32/64, CLIP text 32, 64 px)",
        StableDiffusionFamily,
        build_tiny_sd,
    ),
    Builtin(
        "tiny-sd-lcm",
        "tiny-sd with an LCM-style UNet (time_cond_proj_dim=32, has time_embedding.cond_proj)",
        StableDiffusionFamily,
        build_tiny_sd_lcm,
    ),
)
