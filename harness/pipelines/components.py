"""Tiny components shared by the built-in pipelines: CLIP and T5 text encoders (with tokenizers built from no
files) and the AutoencoderKL."""

from __future__ import annotations

from typing import Any

from harness.pipelines.tokenizers import byte_clip_tokenizer, byte_t5_tokenizer

# The tiny SD-style UNets' layout (SD1.x and SDXL built-ins): two levels, 32 and 64 channels, 32x32 latents.
TINY_UNET_LAYOUT: dict[str, Any] = {
    "block_out_channels": (32, 64),
    "layers_per_block": 2,
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "norm_num_groups": 32,
}


def tiny_clip(
    encoder: str,
    tokenizer_name: str,
    model_class: Any,
    projection_dim: int = 32,
    layers: int = 2,
    hidden_act: str = "gelu",
) -> dict[str, Any]:
    """A tiny CLIP text encoder (width 32, ``layers`` layers) and its byte tokenizer, under the given component
    names."""
    import torch
    from transformers import CLIPTextConfig

    tokenizer = byte_clip_tokenizer(model_max_length=77)
    torch.manual_seed(0)
    config = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        num_hidden_layers=layers,
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
        projection_dim=projection_dim,
        hidden_act=hidden_act,
    )
    return {encoder: model_class(config), tokenizer_name: tokenizer}


def tiny_t5(encoder: str, tokenizer_name: str, model_class: Any, d_model: int = 32) -> dict[str, Any]:
    """A tiny T5 encoder (2 layers) and its character tokenizer, under the given component names."""
    import torch
    from transformers import T5Config

    tokenizer = byte_t5_tokenizer()
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=16,
        d_ff=2 * d_model,
        num_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return {encoder: model_class(config), tokenizer_name: tokenizer}


def tiny_vae(latent_channels: int = 4, **config: Any) -> Any:
    """A tiny AutoencoderKL (widths 32/64: a scale factor of 2, 64 px images), seeded; ``config`` adds to it."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        block_out_channels=[32, 64],
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=32,
        sample_size=64,
        **config,
    )
