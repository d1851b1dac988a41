"""The moving shapes world as Wan 2.1: a 3D DiT with qk RMS-norm and cross-attention to UMT5, on a causal video VAE's
16-channel latents (per-channel mean and std, as Wan's VAE config carries them), flow matching sampled by UniPC with
``flow_shift`` 3 (Wan 2.1 at 480p), classifier-free guidance against the empty prompt.

Clips are :mod:`harness.world.motion`'s: 9 frames of 64 px, which the VAE (factor 4 in
space and in time, the first frame on its own) turns into 3 latent frames of 16x16.
What WanPipeline does to a prompt is what training does: ``encode_prompt`` keeps the
prompt's tokens and zeroes the padding after them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from harness.world.families.base import WorldArch, logit_normal_sigmas, noised, shapes_t5
from harness.world.models import EMBED_DIM
from harness.world.motion import FRAMES

SEQUENCE = 16  # the world's max_sequence_length (a motion caption is 5 words and its end token)
SHIFT = 3.0  # Wan2.1-T2V-1.3B's scheduler flow_shift (480p)
# Wan2.1-T2V-1.3B-Diffusers' scheduler_config.json, less its defaults
SCHEDULER = {
    "flow_shift": SHIFT,
    "num_train_timesteps": 1000,
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "solver_order": 2,
}
LATENT_CHANNELS = 16


def motion_tokenizer() -> Any:
    """The world's T5 tokenizer with the motion words (``moving``, the directions) as single pieces."""
    from harness.world.motion import WORDS
    from harness.world.scene import WORDS as STILL_WORDS
    from harness.world.tokenizer import shapes_t5_tokenizer

    return shapes_t5_tokenizer(SEQUENCE, sorted({*STILL_WORDS, *WORDS}))


def build_wan_vae(seed: int) -> Any:
    """Wan's causal 3D VAE at world size: factor 4 in space (64 px -> 16x16) and in time (9 frames -> 3), 16 channels."""
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    return AutoencoderKLWan(
        base_dim=16,
        z_dim=LATENT_CHANNELS,
        dim_mult=[1, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[True, True],
        latents_mean=[0.0] * LATENT_CHANNELS,
        latents_std=[1.0] * LATENT_CHANNELS,
        scale_factor_spatial=4,
        scale_factor_temporal=4,
    )


class WanWorld(WorldArch):
    name: ClassVar[str] = "wan"
    pipeline_class: ClassVar[str] = "WanPipeline"
    vae: ClassVar[str] = "wan_vae"
    frames: ClassVar[int] = FRAMES
    guidance: ClassVar[float] = 5.0  # WanPipeline's default

    def build(self, vae: Any, seed: int, clip: Any = None) -> Any:
        import torch
        from diffusers import UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

        tokenizer = motion_tokenizer()
        torch.manual_seed(seed)
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=4,
            attention_head_dim=32,
            in_channels=LATENT_CHANNELS,
            out_channels=LATENT_CHANNELS,
            text_dim=EMBED_DIM,
            freq_dim=256,
            ffn_dim=4 * EMBED_DIM,
            num_layers=4,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=64,
        )
        return WanPipeline(
            tokenizer=tokenizer,
            text_encoder=shapes_t5(EMBED_DIM, seed + 1, tokenizer, umt5=True),
            vae=vae,
            transformer=transformer,
            scheduler=UniPCMultistepScheduler(**SCHEDULER),
        )

    def normalise(self, vae: Any, latents: Any) -> Any:
        """(z - mean) / std per channel: what WanPipeline undoes before decoding."""
        import torch

        shape = (1, LATENT_CHANNELS, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean, device=latents.device).reshape(shape)
        std = torch.tensor(vae.config.latents_std, device=latents.device).reshape(shape)
        return (latents - mean) / std

    def sample_kwargs(self) -> dict[str, Any]:
        return {"max_sequence_length": SEQUENCE, "num_frames": FRAMES}

    def conditioning(self, pipe: Any, captions: list[str], drop: Any, device: Any) -> tuple[Any]:
        """Embeddings as WanPipeline computes them; dropped captions get its unconditional input (the empty prompt)."""
        import torch

        embeds, empty = pipe.encode_prompt(
            captions, negative_prompt="", do_classifier_free_guidance=True, max_sequence_length=SEQUENCE, device=device
        )
        return (torch.where(drop.reshape(-1, 1, 1), empty, embeds),)

    def conditioned_loss(self, pipe: Any, x0: Any, condition: tuple[Any, ...], generator: Any) -> Any:
        import torch

        (embeds,) = condition
        sigma = logit_normal_sigmas(len(x0), SHIFT, generator, x0.device)
        xt, velocity = noised(x0, sigma, generator)
        prediction = pipe.transformer(
            hidden_states=xt, timestep=sigma * 1000, encoder_hidden_states=embeds, return_dict=False
        )[0].float()
        return torch.nn.functional.mse_loss(prediction, velocity)
