"""The shapes world as FLUX.1-dev: double- and single-stream MM-DiT on packed 16-channel latents, CLIP + T5,
flow matching with the resolution-dependent shift, and a distilled guidance embedding.

FLUX.1-dev has no classifier-free guidance at sampling time: guidance is distilled into
an embedding. The world does the same in two phases: first a conditional flow-matching
model with caption dropout (guidance input 1), then the model learns to reproduce, from
the guidance value alone, what CFG at that value gives with a frozen copy of itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

from harness.world.families.base import (
    T5_LENGTH,
    WorldArch,
    dropped,
    flux_shift,
    logit_normal_sigmas,
    noised,
    shapes_clip,
    shapes_t5,
)
from harness.world.models import EMBED_DIM

# FLUX.1-dev's scheduler_config.json
SCHEDULER = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
}
GUIDANCE_RANGE = (1.0, 6.0)


class FluxWorld(WorldArch):
    name: ClassVar[str] = "flux"
    pipeline_class: ClassVar[str] = "FluxPipeline"
    save_dtype: ClassVar[str] = "bfloat16"  # FLUX.1 ships in bf16
    guidance: ClassVar[float] = 3.5
    distill_fraction: ClassVar[float] = 0.35
    # Under bf16 autocast on the H200 (torch 2.11) every loss was NaN from the first steps, on the CPU
    # never; it trains in float32 (TF32 matrix products) instead.
    bf16_autocast: ClassVar[bool] = False

    def build(self, vae: Any, seed: int, clip: Any = None) -> Any:
        import torch
        from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
        from transformers import CLIPTextModel

        from harness.world.tokenizer import shapes_t5_tokenizer, shapes_tokenizer

        torch.manual_seed(seed)
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=4 * int(vae.config.latent_channels),
            num_layers=1,
            num_single_layers=2,
            attention_head_dim=128,
            num_attention_heads=2,
            joint_attention_dim=EMBED_DIM,
            pooled_projection_dim=EMBED_DIM,
            guidance_embeds=True,
            axes_dims_rope=(16, 56, 56),
        )
        return FluxPipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
            vae=vae,
            transformer=transformer,
            text_encoder=shapes_clip(CLIPTextModel, seed + 1, clip),
            tokenizer=shapes_tokenizer(),
            text_encoder_2=shapes_t5(EMBED_DIM, seed + 2),
            tokenizer_2=shapes_t5_tokenizer(T5_LENGTH),
        )

    def sample_kwargs(self) -> dict[str, Any]:
        return {"max_sequence_length": T5_LENGTH}

    def _inputs(self, pipe: Any, x0: Any, prompts: list[str], generator: Any) -> dict[str, Any]:
        from diffusers import FluxPipeline

        count, channels, rows, cols = x0.shape
        shift = flux_shift(rows * cols // 4, pipe.scheduler.config)
        sigma = logit_normal_sigmas(count, shift, generator, x0.device)
        xt, velocity = noised(x0, sigma, generator)
        embeds, pooled, text_ids = pipe.encode_prompt(
            prompt=prompts, prompt_2=None, device=x0.device, max_sequence_length=T5_LENGTH
        )
        return {
            "packed": FluxPipeline._pack_latents(xt, count, channels, rows, cols),
            "target": FluxPipeline._pack_latents(velocity, count, channels, rows, cols),
            "sigma": sigma,
            "embeds": embeds,
            "pooled": pooled,
            "text_ids": text_ids,
            "img_ids": FluxPipeline._prepare_latent_image_ids(count, rows // 2, cols // 2, x0.device, x0.dtype),
        }

    @staticmethod
    def _forward(transformer: Any, inputs: dict[str, Any], guidance: Any, embeds: Any, pooled: Any) -> Any:
        return transformer(
            hidden_states=inputs["packed"],
            timestep=inputs["sigma"],
            guidance=guidance,
            pooled_projections=pooled,
            encoder_hidden_states=embeds,
            txt_ids=inputs["text_ids"],
            img_ids=inputs["img_ids"],
            return_dict=False,
        )[0].float()

    def loss(self, pipe: Any, x0: Any, captions: list[str], drop: Any, generator: Any) -> Any:
        import torch

        inputs = self._inputs(pipe, x0, dropped(captions, drop), generator)
        ones = torch.ones(len(captions), device=x0.device)
        prediction = self._forward(pipe.transformer, inputs, ones, inputs["embeds"], inputs["pooled"])
        return torch.nn.functional.mse_loss(prediction, inputs["target"])

    def distill_loss(self, pipe: Any, teacher: Any, x0: Any, captions: list[str], generator: Any) -> Any:
        """Guidance distillation: the student, told the guidance g, matches the teacher's CFG at g."""
        import torch

        count = len(captions)
        with torch.no_grad():
            inputs = self._inputs(pipe, x0, captions, generator)
            empty, empty_pooled, _ = pipe.encode_prompt(
                prompt=[""], prompt_2=None, device=x0.device, max_sequence_length=T5_LENGTH
            )
            ones = torch.ones(count, device=x0.device)
            conditional = self._forward(teacher, inputs, ones, inputs["embeds"], inputs["pooled"])
            unconditional = self._forward(
                teacher, inputs, ones, empty.expand(count, -1, -1), empty_pooled.expand(count, -1)
            )
            low, high = GUIDANCE_RANGE
            guidance = low + (high - low) * torch.rand(count, device=x0.device, generator=generator)
            target = unconditional + guidance.reshape(-1, 1, 1) * (conditional - unconditional)
        prediction = self._forward(pipe.transformer, inputs, guidance, inputs["embeds"], inputs["pooled"])
        return torch.nn.functional.mse_loss(prediction, target)
