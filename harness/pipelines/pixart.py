"""PixArt-Σ: ``PixArtSigmaPipeline`` (DiT with adaLN-single, T5 text encoder) and its tiny model."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.pipelines.family import Builtin, LatentFamily


class PixArtFamily(LatentFamily):
    """PixArt-Σ: latents (N, 4, H/8, W/8), CFG, a learned-sigma transformer (8 output channels).

    ``use_resolution_binning=False`` keeps the requested size (binning maps it to the
    nearest aspect-ratio bucket of the model's native resolution); ``clean_caption=False``
    passes prompts as written (cleaning needs beautifulsoup4 and ftfy, and changes them).
    """

    name: ClassVar[str] = "pixart"
    pipeline_class: ClassVar[str] = "PixArtSigmaPipeline"
    denoiser: ClassVar[str] = "transformer"

    def call_kwargs(self) -> dict[str, Any]:
        return {"use_resolution_binning": False, "max_sequence_length": 64, "clean_caption": False}


# what every PixArt-Σ transformer's blocks are, whatever its size (PixArt-Sigma-XL-2's transformer config)
SIGMA_BLOCKS: dict[str, Any] = {
    "attention_bias": True,
    "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000,
    "norm_type": "ada_norm_single",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
}


def build_tiny_pixart() -> Any:
    """A deterministic tiny PixArt-Σ pipeline (64 px images -> 4x32x32 latents in 2x2 patches, width 256)."""
    import torch
    from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel
    from transformers import T5EncoderModel

    from harness.pipelines.components import tiny_t5, tiny_vae

    torch.manual_seed(0)
    transformer = PixArtTransformer2DModel(
        sample_size=32,
        num_layers=2,
        patch_size=2,
        attention_head_dim=64,
        num_attention_heads=4,
        caption_channels=64,
        in_channels=4,
        cross_attention_dim=256,
        out_channels=8,
        **SIGMA_BLOCKS,
    )
    vae = tiny_vae(4)
    return PixArtSigmaPipeline(
        vae=vae,
        transformer=transformer,
        scheduler=DPMSolverMultistepScheduler(),
        **tiny_t5("text_encoder", "tokenizer", T5EncoderModel, d_model=64),
    )


FAMILY = PixArtFamily
BUILTINS = (
    Builtin(
        "tiny-pixart",
        "random tiny PixArt-Sigma (DiT 2 blocks of width 256, adaLN-single, T5 64, 64 px)",
        PixArtFamily,
        build_tiny_pixart,
    ),
)
