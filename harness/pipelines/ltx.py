"""LTX-Video text-to-video: ``LTXPipeline`` (3D DiT + T5 + the LTX video VAE) and its built-in tiny model."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.pipelines.family import Builtin, VideoFamily


class LTXFamily(VideoFamily):
    """LTX-Video draws its latents from the per-sample generators; clips have 8k + 1 frames. The decoder is
    timestep-conditioned in LTX 0.9.1+: ``decode_timestep`` and ``decode_noise_scale`` keep its defaults."""

    name: ClassVar[str] = "ltx"
    pipeline_class: ClassVar[str] = "LTXPipeline"
    denoiser: ClassVar[str] = "transformer"


class TinyLTXFamily(LTXFamily):
    """The built-in tiny LTX-Video: a short text sequence (its encoder is random)."""

    def call_kwargs(self) -> dict[str, Any]:
        return {"max_sequence_length": 32}


def build_tiny_ltx() -> Any:
    """A deterministic tiny LTX-Video pipeline (1 block of width 32, 8-channel VAE, T5 32)."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5EncoderModel

    from harness.pipelines.components import tiny_t5

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    return LTXPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        **tiny_t5("text_encoder", "tokenizer", T5EncoderModel),
    )


FAMILY = LTXFamily
BUILTINS = (
    Builtin(
        "tiny-ltx",
        "random tiny LTX-Video (3D DiT 1 block of width 32, 8-channel video VAE, T5 32; 8k+1 frames)",
        TinyLTXFamily,
        build_tiny_ltx,
    ),
)
