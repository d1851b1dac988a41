"""The shapes world as PixArt-Σ: a DiT with adaLN-single and cross-attention to a T5 encoder, on the shapes
world's 4-channel latents in 2x2 patches; epsilon prediction with a learned variance on the linear DDPM
schedule, sampled by DPM-Solver++, classifier-free guidance.

PixArt trains the learned-variance half of its output (8 channels) with improved DDPM's
hybrid loss; the world does not: the pipeline discards that half, so only the noise half
is trained (with min-SNR-5 weights, as the shapes world is).
"""

from __future__ import annotations

from typing import Any, ClassVar

from harness.world.families.base import T5_LENGTH, WorldArch, dropped, shapes_t5
from harness.world.models import EMBED_DIM, IMAGE_PX

# PixArt-Sigma-XL-2-1024-MS's scheduler_config.json
SCHEDULER = {
    "algorithm_type": "dpmsolver++",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "solver_order": 2,
    "solver_type": "midpoint",
    "timestep_spacing": "linspace",
}


class PixArtWorld(WorldArch):
    name: ClassVar[str] = "pixart"
    pipeline_class: ClassVar[str] = "PixArtSigmaPipeline"
    vae: ClassVar[str] = "shapes"  # PixArt-Σ decodes with SDXL's 4-channel VAE: the world's is the shapes one
    guidance: ClassVar[float] = 4.5
    bf16_autocast: ClassVar[bool] = False  # float32 with TF32 products: FLUX's world went NaN under bf16 autocast

    def build(self, vae: Any, seed: int, clip: Any = None) -> Any:
        import torch
        from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

        from harness.pipelines.pixart import SIGMA_BLOCKS
        from harness.world.tokenizer import shapes_t5_tokenizer

        torch.manual_seed(seed)
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        transformer = PixArtTransformer2DModel(
            sample_size=IMAGE_PX // factor,
            num_layers=4,
            patch_size=2,
            attention_head_dim=32,
            num_attention_heads=4,
            caption_channels=EMBED_DIM,
            in_channels=int(vae.config.latent_channels),
            out_channels=2 * int(vae.config.latent_channels),
            cross_attention_dim=EMBED_DIM,
            **SIGMA_BLOCKS,
            interpolation_scale=1,
        )
        return PixArtSigmaPipeline(
            vae=vae,
            transformer=transformer,
            scheduler=DPMSolverMultistepScheduler(**SCHEDULER),
            text_encoder=shapes_t5(EMBED_DIM, seed + 1),
            tokenizer=shapes_t5_tokenizer(T5_LENGTH),
        )

    def sample_kwargs(self) -> dict[str, Any]:
        return {"max_sequence_length": T5_LENGTH, "use_resolution_binning": False, "clean_caption": False}

    def conditioning(self, pipe: Any, captions: list[str], drop: Any, device: Any) -> tuple[Any, ...]:
        embeds, mask, _, _ = pipe.encode_prompt(
            dropped(captions, drop),
            do_classifier_free_guidance=False,
            device=device,
            clean_caption=False,
            max_sequence_length=T5_LENGTH,
        )
        return embeds, mask

    def conditioned_loss(self, pipe: Any, x0: Any, condition: tuple[Any, ...], generator: Any) -> Any:
        import torch

        embeds, mask = condition
        alphas = pipe.scheduler.alphas_cumprod.to(x0.device)
        t = torch.randint(0, len(alphas), (len(x0),), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        a = alphas[t].reshape(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        prediction = pipe.transformer(
            xt,
            encoder_hidden_states=embeds,
            encoder_attention_mask=mask,
            timestep=t,
            added_cond_kwargs={"resolution": None, "aspect_ratio": None},
            return_dict=False,
        )[0].float()
        eps = prediction[:, : x0.shape[1]]
        # min-SNR-5 weights, as the shapes world trains (the uniform epsilon loss spends itself on low noise)
        snr = a / (1 - a)
        weight = torch.clamp(snr, max=5.0) / snr
        return (weight * (eps - noise) ** 2).mean()
