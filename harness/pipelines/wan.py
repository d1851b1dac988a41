"""Wan 2.x text-to-video: ``WanPipeline`` (3D DiT with qk RMS-norm + UMT5 + the causal Wan VAE) and its built-in tiny
model."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.pipelines.family import Builtin, VideoFamily


class WanFamily(VideoFamily):
    """Wan draws its latents (N, 16, (F - 1) / 4 + 1, H / 8, W / 8) in float32 from the per-sample generators; clips
    have 4k + 1 frames (the VAE compresses time by 4)."""

    name: ClassVar[str] = "wan"
    pipeline_class: ClassVar[str] = "WanPipeline"
    denoiser: ClassVar[str] = "transformer"


class TinyWanFamily(WanFamily):
    """The built-in tiny Wan: a short text sequence (its encoder is random; real Wan pads to 512 tokens)."""

    def call_kwargs(self) -> dict[str, Any]:
        return {"max_sequence_length": 32}


def build_tiny_wan() -> Any:
    """A deterministic tiny Wan 2.1 pipeline (2 blocks of width 64, 16-channel causal VAE, T5 32): 32 px clips of
    4k + 1 frames in a fraction of a second on a CPU. Width 64: attention and FFN weights have more than 1024
    elements and rows of 32-element blocks, so GGUF's legacy types quantize them (the community's rules leave
    smaller tensors in float)."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import T5EncoderModel

    from harness.pipelines.components import tiny_t5

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=4,
        attention_head_dim=16,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=128,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    return WanPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        **tiny_t5("text_encoder", "tokenizer", T5EncoderModel),
    )


FAMILY = WanFamily
BUILTINS = (
    Builtin(
        "tiny-wan",
        "random tiny Wan 2.1 text-to-video (3D DiT 2 blocks of width 64, 16-channel causal VAE, T5 32; 4k+1 frames)",
        TinyWanFamily,
        build_tiny_wan,
    ),
)
