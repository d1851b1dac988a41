"""What one architecture adds to the shared recipe: its components, its conditioning and its loss.

The recipe is the shapes world's (MICRO_WORLD.md): the same renders and captions, the
same held-out split, caption dropout for guidance, bf16 autocast on the GPU. The text
encoders are trained with the denoiser; the CLIP encoders start from the shapes
world's trained encoder, so they already tell colours, shapes and positions apart.
Conditioning is computed by the pipeline's own ``encode_prompt``, so what the model
is trained on is exactly what it is sampled with.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from harness.world.models import IMAGE_PX

CAPTION_DROPOUT = 0.1
T5_LENGTH = 64  # the families' max_sequence_length (FluxFamily, SD3Family): train on the padding that is sampled with


class WorldArch:
    """One architecture of the shapes world."""

    name: ClassVar[str]
    pipeline_class: ClassVar[str]
    # "vae16": the 16-channel VAE trained for FLUX and SD3; "dcae": the deep-compression autoencoder trained for
    # Sana; "wan_vae": Wan's causal video VAE; "shapes": the shapes world's
    vae: ClassVar[str] = "vae16"
    frames: ClassVar[int] = 1  # > 1: a video architecture, trained on clips of the moving shapes world
    save_dtype: ClassVar[str] = "float16"
    stored_float32: ClassVar[tuple[str, ...]] = ()  # components kept in float32 in the shipped folder
    guidance: ClassVar[float] = 5.0
    distill_fraction: ClassVar[float] = 0.0  # the share of steps spent distilling guidance into an embedding (FLUX)
    bf16_autocast: ClassVar[bool] = True  # trained under bf16 autocast on a GPU

    def build(self, vae: Any, seed: int, clip: Any = None) -> Any:
        """The untrained pipeline around ``vae`` (seeded); its first CLIP encoder starts from ``clip`` where given."""
        raise NotImplementedError

    def loss(self, pipe: Any, x0: Any, captions: list[str], drop: Any, generator: Any) -> Any:
        """The training loss of one batch of normalised latents; ``drop`` marks the captions dropped."""
        return self.conditioned_loss(pipe, x0, self.conditioning(pipe, captions, drop, x0.device), generator)

    def conditioning(self, pipe: Any, captions: list[str], drop: Any, device: Any) -> tuple[Any, ...]:
        """The denoiser's text inputs (tensors, one row per caption; dropped ones unconditional), as sampled with.

        Architectures that define it (with :meth:`conditioned_loss`) can train with frozen
        text encoders whose outputs are computed once per caption.
        """
        raise NotImplementedError(f"{self.name} computes its conditioning inside its loss")

    def conditioned_loss(self, pipe: Any, x0: Any, condition: tuple[Any, ...], generator: Any) -> Any:
        """The training loss of one batch given :meth:`conditioning`'s output for its captions."""
        raise NotImplementedError(f"{self.name} computes its conditioning inside its loss")

    def distill_loss(self, pipe: Any, teacher: Any, x0: Any, captions: list[str], generator: Any) -> Any:
        """The loss of the guidance-distillation phase (architectures with ``distill_fraction`` > 0)."""
        raise NotImplementedError(f"{self.name} distils no guidance")

    def trainable(self, pipe: Any) -> list[Any]:
        """The modules trained together: the denoiser and every text encoder."""
        names = ("transformer", "unet", "text_encoder", "text_encoder_2", "text_encoder_3")
        return [getattr(pipe, name) for name in names if getattr(pipe, name, None) is not None]

    def denoiser(self, pipe: Any) -> Any:
        return getattr(pipe, "transformer", None) or pipe.unet

    def normalise(self, vae: Any, latents: Any) -> Any:
        """Latents as the denoiser sees them (the pipeline undoes this before decoding)."""
        shift = vae.config.shift_factor or 0.0
        return (latents - shift) * vae.config.scaling_factor

    def sample_kwargs(self) -> dict[str, Any]:
        """Extra arguments of the pipeline's call (as the harness's family passes them)."""
        return {}

    def finish(self, pipe: Any) -> dict[str, Any]:
        """What the architecture does to the trained pipeline before it is saved (logged)."""
        return {}


def shapes_clip(model_class: Any, seed: int, pretrained: Any = None) -> Any:
    """A CLIP text encoder of the shapes world's size, started from ``pretrained``'s weights where given."""
    import torch

    from harness.world.models import clip_text_config
    from harness.world.tokenizer import shapes_tokenizer

    torch.manual_seed(seed)
    encoder = model_class(clip_text_config(shapes_tokenizer()))
    if pretrained is not None:
        # transformers 5's CLIPTextModel is the text transformer itself; the projection variant wraps it
        def body(model: Any) -> Any:
            return getattr(model, "text_model", model)

        body(encoder).load_state_dict(body(pretrained).state_dict())
    return encoder


def shapes_t5(d_model: int, seed: int, tokenizer: Any = None, umt5: bool = False) -> Any:
    """A T5 v1.1-style encoder (gated GELU, 2 layers) over ``tokenizer`` (default: the world's T5 tokenizer); with
    ``umt5``, UMT5 (Wan's text-encoder family: a relative position bias in every layer) of the same size."""
    import torch
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    from harness.world.tokenizer import shapes_t5_tokenizer

    tokenizer = tokenizer or shapes_t5_tokenizer(T5_LENGTH)
    model: Any = UMT5EncoderModel if umt5 else T5EncoderModel
    config: Any = UMT5Config if umt5 else T5Config
    torch.manual_seed(seed)
    return model(
        config(
            vocab_size=len(tokenizer),
            d_model=d_model,
            d_kv=d_model // 4,
            d_ff=2 * d_model,
            num_layers=2,
            num_heads=4,
            feed_forward_proj="gated-gelu",
            relative_attention_num_buckets=16,
            dropout_rate=0.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )


def build_vae16(seed: int) -> Any:
    """The 16-channel VAE of FLUX.1 and SD3 at world size: factor 4 (64 px -> 16x16x16), no quant convs."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=32,
        sample_size=IMAGE_PX,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def logit_normal_sigmas(count: int, shift: float, generator: Any, device: Any) -> Any:
    """Flow-matching noise levels as SD3 trains them: sigmoid of a standard normal, then the sampler's shift."""
    import torch

    u = torch.sigmoid(torch.randn(count, device=device, generator=generator))
    return shift * u / (1 + (shift - 1) * u)


def flux_shift(image_tokens: int, config: Any) -> float:
    """FLUX.1's resolution-dependent shift, exp(mu), at ``image_tokens`` (as the pipeline computes mu)."""
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    mu = calculate_shift(
        image_tokens,
        config.get("base_image_seq_len", 256),
        config.get("max_image_seq_len", 4096),
        config.get("base_shift", 0.5),
        config.get("max_shift", 1.15),
    )
    return math.exp(mu)


def noised(x0: Any, sigma: Any, generator: Any) -> tuple[Any, Any]:
    """The flow-matching pair: x_t = (1 - sigma) x0 + sigma noise, and the velocity target noise - x0."""
    import torch

    noise = torch.randn(x0.shape, device=x0.device, generator=generator)
    s = sigma.reshape(-1, *([1] * (x0.dim() - 1)))
    return (1 - s) * x0 + s * noise, noise - x0


def dropped(captions: list[str], drop: Any) -> list[str]:
    return ["" if flag else caption for caption, flag in zip(captions, drop.tolist(), strict=True)]
