"""The shapes world's models: a tiny SD-layout generator and a tiny open_clip evaluator.

Sizes follow the measured recipe (MICRO_WORLD.md): UNet channels (32, 64, 128) with
cross-attention at 16x16 and 8x8, a 4-layer width-128 CLIP text encoder, a factor-2 VAE
(4x32x32 latents), and a 64-px ViT/4-layer text open_clip model with 128-d embeddings.

The schedule is what makes positions learnable: v-prediction with zero-terminal SNR
and trailing timesteps. The SD1.5 recipe (epsilon, "leading") leaks layout from the
noise at the first step and ignores positions; it is kept as ``schedule = "sd15"`` for
the deliberately flawed model.
"""

from __future__ import annotations

from typing import Any

SCHEDULES = ("vpred_zsnr", "sd15")
EMBED_DIM = 128
IMAGE_PX = 64


def scheduler_config(schedule: str) -> dict[str, Any]:
    common = {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "clip_sample": False,
        "num_train_timesteps": 1000,
        "steps_offset": 1,
    }
    if schedule == "vpred_zsnr":
        return {
            **common,
            "prediction_type": "v_prediction",
            "rescale_betas_zero_snr": True,
            "timestep_spacing": "trailing",
            "set_alpha_to_one": True,
        }
    return {
        **common,
        "prediction_type": "epsilon",
        "timestep_spacing": "leading",
        "steps_offset": 1,
        "set_alpha_to_one": False,
    }


def build_generator(tokenizer: Any, schedule: str = "vpred_zsnr", seed: int = 0) -> dict[str, Any]:
    """Freshly initialised generator components (seeded)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=IMAGE_PX,
    )
    unet = UNet2DConditionModel(
        sample_size=IMAGE_PX // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=EMBED_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    text_encoder = CLIPTextModel(clip_text_config(tokenizer))
    scheduler = DDIMScheduler(**scheduler_config(schedule))
    return {"vae": vae, "unet": unet, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler}


def clip_text_config(tokenizer: Any, projection_dim: int = EMBED_DIM) -> Any:
    """The world's CLIP text encoder: width 128, 4 layers, over the world tokenizer's vocabulary and context."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=EMBED_DIM,
        intermediate_size=4 * EMBED_DIM,
        num_hidden_layers=4,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=projection_dim,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def assemble_pipeline(components: dict[str, Any]) -> Any:
    from harness.pipelines.sd import assemble_sd

    return assemble_sd(components)


def evaluator_config(vocab_size: int, context_length: int) -> dict[str, Any]:
    """open_clip ``model_cfg`` of the evaluator (as written to open_clip_config.json)."""
    return {
        "embed_dim": EMBED_DIM,
        "vision_cfg": {
            "image_size": IMAGE_PX,
            "patch_size": 8,
            "width": 128,
            "layers": 4,
            "head_width": 32,
            "mlp_ratio": 4.0,
        },
        "text_cfg": {
            "context_length": context_length,
            "vocab_size": vocab_size,
            "width": 128,
            "heads": 4,
            "layers": 4,
            "hf_tokenizer_name": "shapes-world",
            "pool_type": "argmax",
        },
    }


def build_evaluator(tokenizer: Any, seed: int = 0) -> Any:
    import open_clip
    import torch

    torch.manual_seed(seed)
    config = evaluator_config(len(tokenizer), tokenizer.model_max_length)
    text_cfg = {k: v for k, v in config["text_cfg"].items() if k != "hf_tokenizer_name"}
    return open_clip.CLIP(embed_dim=config["embed_dim"], vision_cfg=config["vision_cfg"], text_cfg=text_cfg)
