"""Stable Diffusion 3 / 3.5: ``StableDiffusion3Pipeline`` (MM-DiT, two CLIPs + T5, CFG) and its tiny model."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.pipelines.family import Builtin, LatentFamily


class SD3Family(LatentFamily):
    """SD3 and SD3.5: latents (N, 16, H/8, W/8), classifier-free guidance.

    The pipeline casts the given latents to the transformer's dtype itself.
    """

    name: ClassVar[str] = "sd3"
    pipeline_class: ClassVar[str] = "StableDiffusion3Pipeline"
    denoiser: ClassVar[str] = "transformer"
    single_file: ClassVar[bool] = True

    def call_kwargs(self) -> dict[str, Any]:
        return {"max_sequence_length": 64}


# The released SD3.5 Large transformer's configuration (38 MM-DiT blocks, 38 heads of 64 = 2432 wide), for
# full-width layout tests and benchmarks on the meta device or with random weights; real models load their own.
SD35_LARGE_TRANSFORMER: dict[str, Any] = {
    "sample_size": 128,
    "patch_size": 2,
    "in_channels": 16,
    "num_layers": 38,
    "attention_head_dim": 64,
    "num_attention_heads": 38,
    "joint_attention_dim": 4096,
    "caption_projection_dim": 2432,
    "pooled_projection_dim": 2048,
    "out_channels": 16,
    "pos_embed_max_size": 192,
    "qk_norm": "rms_norm",
}


def without_t5(pipe: Any) -> Any:
    """SD3 run without its T5 encoder (``text_encoder_3=None``), the documented memory saver.

    Use as ``transform = "harness.pipelines.sd3:without_t5"``; the T5 tokens become zeros.
    """
    pipe.register_modules(text_encoder_3=None, tokenizer_3=None)
    return pipe


def build_tiny_sd3() -> Any:
    """A deterministic tiny SD3.5-shaped pipeline (64 px images -> 16x32x32 latents in 2x2 patches: 256 tokens of width 256)."""
    import torch
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextModelWithProjection, T5EncoderModel

    from harness.pipelines.components import tiny_clip, tiny_t5, tiny_vae

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=16,
        num_layers=2,
        attention_head_dim=64,
        num_attention_heads=4,
        caption_projection_dim=256,
        joint_attention_dim=64,
        pooled_projection_dim=64,
        out_channels=16,
        qk_norm="rms_norm",
    )
    vae = tiny_vae(16, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035)
    return StableDiffusion3Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        transformer=transformer,
        **tiny_clip("text_encoder", "tokenizer", CLIPTextModelWithProjection),
        **tiny_clip("text_encoder_2", "tokenizer_2", CLIPTextModelWithProjection),
        **tiny_t5("text_encoder_3", "tokenizer_3", T5EncoderModel, d_model=64),
    )


FAMILY = SD3Family
BUILTINS = (
    Builtin(
        "tiny-sd3",
        "random tiny SD3.5 (MM-DiT 2 blocks of width 256, two CLIPs 32 + T5 64, 16-channel VAE, 64 px)",
        SD3Family,
        build_tiny_sd3,
    ),
)
