"""The shapes world as SD3.5: MM-DiT with qk RMS-norm on 16-channel latents in 2x2 patches, two CLIPs + T5,
flow matching with shift 3.0, classifier-free guidance."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.world.families.base import (
    T5_LENGTH,
    WorldArch,
    dropped,
    logit_normal_sigmas,
    noised,
    shapes_clip,
    shapes_t5,
)
from harness.world.models import EMBED_DIM

SHIFT = 3.0  # SD3.5's scheduler_config.json


class SD3World(WorldArch):
    name: ClassVar[str] = "sd3"
    pipeline_class: ClassVar[str] = "StableDiffusion3Pipeline"

    def build(self, vae: Any, seed: int, clip: Any = None) -> Any:
        import torch
        from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
        from transformers import CLIPTextModelWithProjection

        from harness.world.models import IMAGE_PX
        from harness.world.tokenizer import shapes_t5_tokenizer, shapes_tokenizer

        torch.manual_seed(seed)
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        width = 2 * EMBED_DIM  # the two CLIPs side by side; T5 is as wide, as SD3's pipeline requires
        transformer = SD3Transformer2DModel(
            sample_size=IMAGE_PX // factor,
            patch_size=2,
            in_channels=int(vae.config.latent_channels),
            out_channels=int(vae.config.latent_channels),
            num_layers=3,
            attention_head_dim=64,
            num_attention_heads=4,
            joint_attention_dim=width,
            caption_projection_dim=256,
            pooled_projection_dim=width,
            pos_embed_max_size=IMAGE_PX // factor,
            qk_norm="rms_norm",
        )
        return StableDiffusion3Pipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(shift=SHIFT),
            vae=vae,
            transformer=transformer,
            text_encoder=shapes_clip(CLIPTextModelWithProjection, seed + 1, clip),
            tokenizer=shapes_tokenizer(),
            text_encoder_2=shapes_clip(CLIPTextModelWithProjection, seed + 2),
            tokenizer_2=shapes_tokenizer(),
            text_encoder_3=shapes_t5(width, seed + 3),
            tokenizer_3=shapes_t5_tokenizer(T5_LENGTH),
        )

    def sample_kwargs(self) -> dict[str, Any]:
        return {"max_sequence_length": T5_LENGTH}

    def loss(self, pipe: Any, x0: Any, captions: list[str], drop: Any, generator: Any) -> Any:
        import torch

        sigma = logit_normal_sigmas(len(captions), pipe.scheduler.config.shift, generator, x0.device)
        xt, velocity = noised(x0, sigma, generator)
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt=dropped(captions, drop),
            prompt_2=None,
            prompt_3=None,
            device=x0.device,
            do_classifier_free_guidance=False,
            max_sequence_length=T5_LENGTH,
        )
        prediction = pipe.transformer(
            hidden_states=xt,
            timestep=sigma * pipe.scheduler.config.num_train_timesteps,
            encoder_hidden_states=embeds,
            pooled_projections=pooled,
            return_dict=False,
        )[0].float()
        return torch.nn.functional.mse_loss(prediction, velocity)
