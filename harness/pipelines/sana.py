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
    text_encoder = gemma2_encoder(
        tokenizer, width=32, layers=2, heads=2, kv_heads=2, head_dim=16, intermediate=64, seed=0
    )
    return SanaPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )


def gemma2_encoder(
    tokenizer: Any,
    *,
    width: int,
    layers: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    intermediate: int,
    seed: int,
    **options: Any,
) -> Any:
    """A Gemma 2 decoder of the given sizes (eager attention, the soft-capping Gemma 2 defaults to), built
    from ``seed``, for ``tokenizer``'s vocabulary and special tokens: the tiny Sana's and the world's."""
    import torch
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(seed)
    config = Gemma2Config(  # type: ignore[call-arg]
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        attn_implementation="eager",
        **options,
    )
    return Gemma2Model(config)


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
