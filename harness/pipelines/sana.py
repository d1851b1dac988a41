"""Sana: ``SanaPipeline`` (linear-attention DiT + DC-AE + Gemma 2) and its built-in tiny model."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.pipelines.family import Builtin, LatentFamily
from harness.pipelines.tokenizers import byte_gemma_tokenizer


class SanaFamily(LatentFamily):
    """Sana draws latents in float32 and casts at its own component boundaries.

    ``use_resolution_binning=False`` keeps the requested size: with binning on, a
    32-px sample size bins a 64-px request up to 1024 px.
    """

    name: ClassVar[str] = "sana"
    pipeline_class: ClassVar[str] = "SanaPipeline"
    denoiser: ClassVar[str] = "transformer"
    latents_follow_denoiser_dtype: ClassVar[bool] = False

    def call_kwargs(self) -> dict[str, Any]:
        return {"use_resolution_binning": False}


class TinySanaFamily(SanaFamily):
    """The built-in tiny Sana: no prompt enhancement preamble (its text encoder is random)."""

    def call_kwargs(self) -> dict[str, Any]:
        return {"use_resolution_binning": False, "complex_human_instruction": None, "max_sequence_length": 64}


def build_tiny_sana() -> Any:
    """A deterministic tiny Sana pipeline (64 px images -> 4x32x32 latents)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    tokenizer = byte_gemma_tokenizer()
    torch.manual_seed(0)
    transformer = SanaTransformer2DModel(
        patch_size=1,
        in_channels=4,
        out_channels=4,
        num_layers=2,
        num_attention_heads=2,
        attention_head_dim=16,
        num_cross_attention_heads=2,
        cross_attention_head_dim=16,
        cross_attention_dim=32,
        caption_channels=32,
        sample_size=32,
    )
    vae = _tiny_dc_ae()
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    torch.manual_seed(0)
    text_config = Gemma2Config(  # type: ignore[call-arg]
        head_dim=16,
        hidden_size=32,
        initializer_range=0.02,
        intermediate_size=64,
        max_position_embeddings=512,
        num_attention_heads=2,
        num_hidden_layers=2,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        attn_implementation="eager",
    )
    text_encoder = Gemma2Model(text_config)
    return SanaPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )


def _tiny_dc_ae() -> Any:
    """The tiny DC-AE (deep-compression autoencoder, factor 2 here), built from seed 0."""
    import torch
    from diffusers import AutoencoderDC

    torch.manual_seed(0)
    vae = AutoencoderDC(
        in_channels=3,
        latent_channels=4,
        attention_head_dim=8,
        encoder_block_types=("ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(16, 32),
        decoder_block_out_channels=(16, 32),
        encoder_qkv_multiscales=((), (5,)),
        decoder_qkv_multiscales=((), (5,)),
        encoder_layers_per_block=(1, 1),
        decoder_layers_per_block=[1, 1],
        downsample_block_type="conv",
        upsample_block_type="interpolate",
        decoder_norm_types="rms_norm",
        decoder_act_fns="silu",
        scaling_factor=0.41407,
    )
    return vae


FAMILY = SanaFamily
BUILTINS = (
    Builtin("tiny-sana", "random tiny Sana (DiT 2x16 heads, DC-AE, Gemma2 32, 64 px)", TinySanaFamily, build_tiny_sana),
)
