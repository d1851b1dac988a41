"""The shapes world as Sana: a linear-attention DiT with Mix-FFN on a deep-compression autoencoder's 32-channel
latents, a Gemma 2 decoder-only text encoder behind SanaPipeline's chat-style instruction, flow matching with
shift 3 sampled by flow DPM-Solver, classifier-free guidance.

What SanaPipeline does to a prompt is what training does: the default complex human
instruction is prepended, the whole text runs through the causal encoder with its
attention mask, and only the first token and the last ``max_sequence_length - 1``
positions are kept (the prompt, attending to the instruction). The unconditional input
is the empty prompt without the instruction, as the pipeline encodes its negative prompt.

Gemma 2's residual stream is far wider than its output: in float16 the real encoder's
activations overflow (which is why Sana's recipes cast it to bf16). After training, the
world's encoder is given that range by a rescale that leaves its float32 function as it
was (:func:`give_residual_range`); docs/world.md measures the effect.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, ClassVar

from harness.pipelines.sana import gemma2_encoder
from harness.world.families.base import WorldArch, logit_normal_sigmas, noised
from harness.world.models import EMBED_DIM, IMAGE_PX

SEQUENCE = 32  # the world's max_sequence_length (the captions are at most 14 tokens)
SHIFT = 3.0  # Sana 1600M's flow_shift
# Sana_1600M_1024px_diffusers' scheduler_config.json: flow DPM-Solver++ (2nd order, midpoint)
SCHEDULER = {
    "algorithm_type": "dpmsolver++",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "final_sigmas_type": "zero",
    "flow_shift": SHIFT,
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "prediction_type": "flow_prediction",
    "solver_order": 2,
    "solver_type": "midpoint",
    "timestep_spacing": "linspace",
    "use_flow_sigmas": True,
}
# float16's largest finite value, and the residual-stream peak the encoder is given: past float16's range by 2x,
# as the Gemma family's residual streams are reported to be (~1e5 by the middle layers; docs/world.md)
FLOAT16_MAX = 65504.0
RESIDUAL_PEAK = 1.3e5


def complex_human_instruction() -> list[str]:
    """SanaPipeline's default instruction, read from the installed diffusers (not copied)."""
    from diffusers import SanaPipeline

    return list(inspect.signature(SanaPipeline.__call__).parameters["complex_human_instruction"].default)


def instructed_probe(tokenizer: Any, captions: list[str]) -> dict[str, Any]:
    """``captions`` behind SanaPipeline's default instruction, tokenized as one padded batch (the encoder's input)."""
    chi = "\n".join(complex_human_instruction())
    return dict(tokenizer([chi + caption for caption in captions], padding=True, return_tensors="pt"))


def sana_tokenizer() -> Any:
    """The world's tokenizer with the instruction's words as single tokens too (it prefixes every prompt)."""
    from harness.pipelines.tokenizers import byte_clip_tokenizer
    from harness.world.scene import WORDS
    from harness.world.tokenizer import learn_merges

    extra = sorted(set(re.findall(r"[a-z]+", " ".join(complex_human_instruction()).lower())) - set(WORDS))
    merges, symbols = learn_merges([*WORDS, *extra])
    return byte_clip_tokenizer(model_max_length=512, merges=merges, words=symbols)


def build_dcae(seed: int) -> Any:
    """A deep-compression autoencoder at world size: factor 8 (64 px -> 32x8x8), ResBlocks then EfficientViT blocks."""
    import torch
    from diffusers import AutoencoderDC

    torch.manual_seed(seed)
    return AutoencoderDC(
        in_channels=3,
        latent_channels=32,
        attention_head_dim=16,
        encoder_block_types=("ResBlock", "ResBlock", "EfficientViTBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "ResBlock", "EfficientViTBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(32, 64, 128, 128),
        decoder_block_out_channels=(32, 64, 128, 128),
        encoder_qkv_multiscales=((), (), (5,), (5,)),
        decoder_qkv_multiscales=((), (), (5,), (5,)),
        encoder_layers_per_block=(1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        downsample_block_type="conv",
        upsample_block_type="interpolate",
        decoder_norm_types="rms_norm",
        decoder_act_fns="silu",
        scaling_factor=1.0,
    )


def gemma_encoder(tokenizer: Any, seed: int) -> Any:
    """A Gemma 2 decoder (3 layers, width 128) with Gemma 2's soft-capping, alternating local/global attention."""
    return gemma2_encoder(
        tokenizer,
        width=EMBED_DIM,
        layers=3,
        heads=4,
        kv_heads=2,
        head_dim=32,
        intermediate=4 * EMBED_DIM,
        seed=seed,
        sliding_window=128,
    )


def give_residual_range(encoder: Any, peak: float = RESIDUAL_PEAK, probe: Any = None) -> float:
    """Scale the residual stream of a Gemma 2 encoder so its largest activation on ``probe`` reaches ``peak``.

    Every write into the stream is multiplied by one factor k: the token embeddings and
    the gains of the post-attention and post-feed-forward norms. Each layer reads the
    stream through an RMS norm, and the output is RMS-normed, so in float32 the output is
    unchanged (up to the norms' epsilon); only the stream's magnitude grows. Returns k.
    """
    import torch

    peak_now = residual_peak(encoder, probe)
    k = peak / peak_now
    with torch.no_grad():
        encoder.embed_tokens.weight.mul_(k)
        for layer in encoder.layers:
            for norm in (layer.post_attention_layernorm, layer.post_feedforward_layernorm):
                norm.weight.copy_((1.0 + norm.weight) * k - 1.0)  # Gemma's RMS norm scales by (1 + weight)
    return k


def residual_peak(encoder: Any, probe: Any) -> float:
    """The largest |activation| of the residual stream (every decoder layer's output) on the token batch ``probe``.

    Read with hooks, not ``output_hidden_states``: transformers replaces the last layer's
    output there with the final norm's.
    """
    import torch

    peaks: list[float] = []

    def record(module: Any, args: Any, output: Any) -> None:
        peaks.append(float((output[0] if isinstance(output, tuple) else output).abs().max()))

    hooks = [layer.register_forward_hook(record) for layer in encoder.layers]
    try:
        with torch.no_grad():
            encoder(**probe)
    finally:
        for hook in hooks:
            hook.remove()
    return max(peaks)


class SanaWorld(WorldArch):
    name: ClassVar[str] = "sana"
    pipeline_class: ClassVar[str] = "SanaPipeline"
    vae: ClassVar[str] = "dcae"
    guidance: ClassVar[float] = 4.5
    bf16_autocast: ClassVar[bool] = False  # float32 with TF32 products: FLUX's world went NaN under bf16 autocast
    # the rescaled encoder's embeddings and norm gains are large; Gemma 2 ships in float32 and bf16, not float16
    stored_float32: ClassVar[tuple[str, ...]] = ("text_encoder",)

    def build(self, vae: Any, seed: int, clip: Any = None) -> Any:
        import torch
        from diffusers import DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel

        tokenizer = sana_tokenizer()
        torch.manual_seed(seed)
        factor = 2 ** (len(vae.config.encoder_block_out_channels) - 1)
        transformer = SanaTransformer2DModel(
            in_channels=int(vae.config.latent_channels),
            out_channels=int(vae.config.latent_channels),
            num_attention_heads=4,
            attention_head_dim=32,
            num_layers=4,
            num_cross_attention_heads=4,
            cross_attention_head_dim=32,
            cross_attention_dim=EMBED_DIM,
            caption_channels=EMBED_DIM,
            mlp_ratio=2.5,
            sample_size=IMAGE_PX // factor,
            patch_size=1,
            interpolation_scale=1,  # sin-cos positions, as Sana's 2K/4K models use (1024 px is NoPE)
        )
        encoder = gemma_encoder(tokenizer, seed + 1)
        return SanaPipeline(
            tokenizer=tokenizer,
            text_encoder=encoder,
            vae=vae,
            transformer=transformer,
            scheduler=DPMSolverMultistepScheduler(**SCHEDULER),
        )

    def finish(self, pipe: Any) -> dict[str, Any]:
        """Give the trained encoder Gemma 2's residual range; log the float32 output change and float16's overflow."""
        import copy

        import torch

        from harness.world.evaluate import held_out_captions

        probe = instructed_probe(pipe.tokenizer, held_out_captions(16))
        encoder = pipe.text_encoder.float().eval()
        with torch.no_grad():
            before = encoder(**probe).last_hidden_state
            peak_before = residual_peak(encoder, probe)
            k = give_residual_range(encoder, RESIDUAL_PEAK, probe)
            after = encoder(**probe).last_hidden_state
            # a copy: casting the encoder itself there and back would round its float32 weights through float16
            half = copy.deepcopy(encoder).to(torch.float16)(**probe).last_hidden_state
        return {
            "residual_scale": k,
            "residual_peak": [peak_before, residual_peak(encoder, probe)],
            "float32_output_change": float((after - before).abs().max() / before.abs().max()),
            "float16_output_finite": bool(torch.isfinite(half).all()),
        }

    def normalise(self, vae: Any, latents: Any) -> Any:
        return latents * vae.config.scaling_factor

    def sample_kwargs(self) -> dict[str, Any]:
        return {"max_sequence_length": SEQUENCE, "use_resolution_binning": False}

    def conditioning(self, pipe: Any, captions: list[str], drop: Any, device: Any) -> tuple[Any, Any]:
        """Embeddings and masks as SanaPipeline computes them; dropped captions get its unconditional input."""
        import torch

        embeds, mask, empty, empty_mask = pipe.encode_prompt(
            captions,
            do_classifier_free_guidance=True,
            negative_prompt="",
            device=device,
            max_sequence_length=SEQUENCE,
            complex_human_instruction=complex_human_instruction(),
        )
        keep = (~drop).reshape(-1, 1)
        embeds = torch.where(keep.unsqueeze(-1), embeds, empty)
        return embeds, torch.where(keep, mask, empty_mask)

    def conditioned_loss(self, pipe: Any, x0: Any, condition: tuple[Any, ...], generator: Any) -> Any:
        import torch

        embeds, mask = condition
        sigma = logit_normal_sigmas(len(x0), SHIFT, generator, x0.device)
        xt, velocity = noised(x0, sigma, generator)
        prediction = pipe.transformer(
            xt,
            encoder_hidden_states=embeds,
            encoder_attention_mask=mask,
            timestep=sigma * 1000 * pipe.transformer.config.timestep_scale,
            return_dict=False,
        )[0].float()
        return torch.nn.functional.mse_loss(prediction, velocity)
