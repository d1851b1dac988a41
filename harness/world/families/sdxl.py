"""The shapes world as SDXL: a UNet with text-time micro-conditioning, two CLIPs (penultimate states side by
side, the second's pooled projection), zeroed unconditional embeddings, and a VAE that overflows float16.

The sampler is SDXL's Euler, with the schedule the shapes world needs to learn positions
(v-prediction, zero terminal SNR, trailing timesteps: MICRO_WORLD.md). The VAE is the
shapes world's, given SDXL's float16 overflow after training
(:func:`harness.pipelines.sdxl.make_vae_overflow_fp16`), so its float16 decode is right
only through the pipeline's upcast.
"""

from __future__ import annotations

from typing import Any, ClassVar

from harness.world.families.base import WorldArch, shapes_clip
from harness.world.models import EMBED_DIM, IMAGE_PX, scheduler_config

TIME_EMBED = 32
MIN_SNR = 5.0


class SDXLWorld(WorldArch):
    name: ClassVar[str] = "sdxl"
    pipeline_class: ClassVar[str] = "StableDiffusionXLPipeline"
    vae: ClassVar[str] = "shapes"
    # the fp16 overflow gain is 1e5, on weights float16 cannot always hold: this VAE is stored in float32
    stored_float32: ClassVar[tuple[str, ...]] = ("vae",)

    def build(self, vae: Any, seed: int, clip: Any = None) -> Any:
        import torch
        from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTextModelWithProjection

        from harness.world.tokenizer import shapes_tokenizer

        torch.manual_seed(seed)
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        unet = UNet2DConditionModel(
            sample_size=IMAGE_PX // factor,
            in_channels=int(vae.config.latent_channels),
            out_channels=int(vae.config.latent_channels),
            block_out_channels=(32, 64, 128),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 1, 2),
            attention_head_dim=(2, 4, 8),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=TIME_EMBED,
            projection_class_embeddings_input_dim=6 * TIME_EMBED + EMBED_DIM,
            cross_attention_dim=2 * EMBED_DIM,
            norm_num_groups=32,
        )
        config = {
            k: v for k, v in scheduler_config("vpred_zsnr").items() if k not in ("set_alpha_to_one", "clip_sample")
        }
        return StableDiffusionXLPipeline(
            unet=unet,
            vae=vae,
            scheduler=EulerDiscreteScheduler(**config),
            text_encoder=shapes_clip(CLIPTextModel, seed + 1, clip),
            tokenizer=shapes_tokenizer(),
            text_encoder_2=shapes_clip(CLIPTextModelWithProjection, seed + 2),
            tokenizer_2=shapes_tokenizer(),
        )

    def loss(self, pipe: Any, x0: Any, captions: list[str], drop: Any, generator: Any) -> Any:
        import torch
        from diffusers import DDPMScheduler

        training = DDPMScheduler.from_config(pipe.scheduler.config)
        alphas = training.alphas_cumprod.to(x0.device)
        count = len(captions)
        t = torch.randint(0, training.config.num_train_timesteps, (count,), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt=captions, device=x0.device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        # SDXL's unconditional input is zeros (force_zeros_for_empty_prompt), so dropped captions are zeros too
        keep = (~drop).to(embeds.dtype)
        embeds, pooled = embeds * keep.reshape(-1, 1, 1), pooled * keep.reshape(-1, 1)
        time_ids = torch.tensor([[IMAGE_PX, IMAGE_PX, 0, 0, IMAGE_PX, IMAGE_PX]], device=x0.device).repeat(count, 1)
        prediction = pipe.unet(
            training.add_noise(x0, noise, t),
            t,
            encoder_hidden_states=embeds,
            added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids.to(embeds.dtype)},
            return_dict=False,
        )[0].float()
        target = training.get_velocity(x0, noise, t)
        snr = alphas[t] / (1 - alphas[t]).clamp(min=1e-8)
        weight = (snr.clamp(max=MIN_SNR) + 1.0) / (snr + 1.0)
        return (weight * ((prediction - target) ** 2).mean(dim=(1, 2, 3))).mean()
