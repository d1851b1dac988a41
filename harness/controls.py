"""Transforms that damage any pipeline in known ways: negative controls for every kind of gate.

Use them as ``transform = "harness.controls:denoiser_noise_0_5"`` with ``expect = "fail"``:
a gate nobody has seen fail is not yet a gate. They work on any family (the denoiser is
the pipeline's ``unet`` or ``transformer``).

- quality: relative Gaussian weight noise, and 2-bit weights (a Q2-sized loss), on the whole
  denoiser or on its attention projections only;
- conversion and loading faults: the first timestep-embedding layer zeroed (a key lost in
  conversion), the sampler's shift or timestep spacing changed, the VAE's scaling factor
  wrong, text embeddings amplified (with bf16 components: an amplified mixed cast);
- rounding: noise of 1e-3 of each tensor's standard deviation, which a gate must *not* flag;
- speed: the denoiser made slower by a fraction of its own time, by sleeping (the device
  idles) or by spinning on the CPU (the process's CPU time rises too);
- memory: 200 MiB held on the pipeline's device for its whole life.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIB = 2**20


@dataclass(frozen=True)
class Control:
    """A transform that damages a pipeline in a known way, for ``transform = "..."`` with ``expect = "fail"``."""

    name: str
    transform: str  # what a suite writes: "package.module:function"
    damages: str  # quality | rounding (must pass) | schedule | speed | memory | clips | tail (a few samples)
    summary: str

    @classmethod
    def of(cls, function: Callable[[Any], Any], damages: str) -> Control:
        summary = (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else function.__name__
        return cls(function.__name__, f"{function.__module__}:{function.__name__}", damages, summary)


def denoiser_of(pipe: Any) -> Any:
    module = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if module is None:
        raise ValueError("the pipeline has neither a unet nor a transformer to damage")
    return module


def add_relative_noise(module: Any, fraction: float, seed: int) -> None:
    """Gaussian noise with ``fraction`` of each weight tensor's own standard deviation, from a fixed seed."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.numel() > 1:
                noise = torch.randn(parameter.shape, generator=generator).to(parameter.device, parameter.dtype)
                parameter.add_(noise * fraction * parameter.float().std().to(parameter.dtype))


def quantize_2bit(module: Any) -> None:
    """Every matrix and conv weight rounded to 4 symmetric levels per output row (a Q2-sized error)."""
    round_2bit(list(module.parameters()))


def round_2bit(parameters: list[Any]) -> None:
    """Round each weight of 2 or more dimensions to 4 symmetric levels per output row."""
    import torch

    with torch.no_grad():
        for parameter in parameters:
            if parameter.dim() < 2:
                continue
            rows = parameter.float().reshape(parameter.shape[0], -1)
            scale = rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 1.5
            levels = (rows / scale - 0.5).round().clamp(-2, 1) + 0.5  # -1.5, -0.5, 0.5, 1.5
            parameter.copy_((levels * scale).reshape(parameter.shape).to(parameter.dtype))


# the q/k/v/out projections of diffusers' attention modules, image and text streams alike
ATTENTION_PROJECTIONS = re.compile(r"(^|\.)(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)$")


def attention_projections(module: Any) -> list[Any]:
    """The weights of every attention projection in ``module`` (UNet, MM-DiT and single-stream blocks)."""
    return [
        sub.weight
        for name, sub in module.named_modules()
        if ATTENTION_PROJECTIONS.search(name) and hasattr(sub, "weight")
    ]


def denoiser_noise_0_5(pipe: Any) -> Any:
    """Gaussian noise of half of each denoiser weight tensor's standard deviation: broken images."""
    add_relative_noise(denoiser_of(pipe), 0.5, 1)
    return pipe


def denoiser_rounding_noise(pipe: Any) -> Any:
    """Rounding-sized damage (1e-3 of each tensor's std): regression gates must stay quiet on it."""
    add_relative_noise(denoiser_of(pipe), 1e-3, 3)
    return pipe


def denoiser_2bit(pipe: Any) -> Any:
    """Every denoiser matrix and convolution weight rounded to 2 bits per output row."""
    quantize_2bit(denoiser_of(pipe))
    return pipe


def attention_2bit(pipe: Any) -> Any:
    """Only the denoiser's attention q/k/v/out weights rounded to 2 bits: a Q2-sized loss where it hurts most."""
    weights = attention_projections(denoiser_of(pipe))
    if not weights:
        raise ValueError("the denoiser has no attention projections (to_q, to_k, ...) to damage")
    round_2bit(weights)
    return pipe


def timestep_embedding_zeroed(pipe: Any) -> Any:
    """The first linear layer of the timestep embedding zeroed: what a conversion that lost its key leaves."""
    import torch

    denoiser = denoiser_of(pipe)
    names = (
        "time_embedding.linear_1",
        "time_text_embed.timestep_embedder.linear_1",
        "condition_embedder.time_embedder.linear_1",  # Wan
        "time_embed.emb.timestep_embedder.linear_1",  # Sana
        "adaln_single.emb.timestep_embedder.linear_1",  # PixArt
    )
    layer = next((module for name, module in denoiser.named_modules() if name in names), None)
    if layer is None:
        raise ValueError(f"the denoiser has none of {names}")
    with torch.no_grad():
        layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()
    return pipe


def wrong_sampler_shift(pipe: Any) -> Any:
    """The sampler's schedule changed as a careless conversion or runtime changes it.

    Flow matching: a resolution-dependent shift (FLUX.1) ignored, so the config's static
    shift (FLUX.1-dev's 3.0) applies; a static shift (SD3's 3.0, or Wan's UniPC ``flow_shift``)
    replaced by 1.0, the default of a scheduler built without its config.
    DDPM-family samplers (SD, SDXL): "trailing" and "leading" timestep spacing swapped.
    """
    # without diffusers' private keys: a key listed in ``_use_default_values`` (one the scheduler was built without)
    # is reset to its default by from_config, which silently undid the change on schedulers built in code
    config = {key: value for key, value in pipe.scheduler.config.items() if not key.startswith("_")}
    # FlowMatchEuler's static shift is ``shift``; UniPC's, with flow sigmas, is ``flow_shift``
    shift = "shift" if "shift" in config else "flow_shift" if config.get("use_flow_sigmas") else None
    if config.get("use_dynamic_shifting"):
        changes: dict[str, Any] = {"use_dynamic_shifting": False}
    elif shift is not None and shift in config:
        changes = {shift: 1.0 if float(config[shift]) != 1.0 else 3.0}
    elif "timestep_spacing" in config:
        changes = {"timestep_spacing": "leading" if config["timestep_spacing"] == "trailing" else "trailing"}
    else:
        raise ValueError(f"no shift or timestep spacing to change in {type(pipe.scheduler).__name__}")
    pipe.scheduler = type(pipe.scheduler).from_config({**config, **changes})
    return pipe


# the published factors users confuse: SD1.5's for SDXL's (4 channels), SD3's for FLUX.1's (16 channels)
SCALING_MIX_UPS = {4: 0.18215 / 0.13025, 16: 1.5305 / 0.3611}


def vae_scaling_wrong(pipe: Any) -> Any:
    """The VAE's scaling factor wrong by the ratio of a neighbouring family's: 1.4x (SD1.5 vs SDXL) for
    4-channel latents, 4.2x (SD3 vs FLUX.1) for 16-channel ones."""
    ratio = SCALING_MIX_UPS.get(int(pipe.vae.config.latent_channels), SCALING_MIX_UPS[4])
    pipe.vae.register_to_config(scaling_factor=float(pipe.vae.config.scaling_factor) * ratio)
    return pipe


def text_embeddings_x4(pipe: Any) -> Any:
    """Every text encoder's outputs multiplied by 4 (with bf16 encoders: an amplified mixed cast)."""
    names = ("text_encoder", "text_encoder_2", "text_encoder_3")
    encoders = [getattr(pipe, name) for name in names if getattr(pipe, name, None) is not None]
    if not encoders:
        raise ValueError("the pipeline has no text encoder")
    for encoder in encoders:
        encoder.register_forward_hook(_times_four)
    return pipe


def _times_four(module: Any, args: Any, output: Any) -> Any:
    import torch

    def scale(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value * 4
        if isinstance(value, tuple):
            return tuple(scale(item) for item in value)
        return value

    if isinstance(output, dict):  # transformers' ModelOutput: every field, hidden_states included
        for key in list(output.keys()):
            output[key] = scale(output[key])
        return output
    return scale(output)


def slow_down(module: Any, fraction: float, spin: bool) -> None:
    """After each forward call, wait ``fraction`` of the call's own (device-synchronised) time."""
    import torch

    def synchronize(tensor_module: Any) -> None:
        parameter = next(tensor_module.parameters(), None)
        if parameter is not None and parameter.device.type == "cuda":
            torch.cuda.synchronize(parameter.device)

    starts: list[float] = []

    def before(mod: Any, *_: Any) -> None:
        synchronize(mod)
        starts.append(time.perf_counter())

    def after(mod: Any, *_: Any) -> None:
        synchronize(mod)
        extra = fraction * (time.perf_counter() - starts.pop())
        if spin:
            until = time.perf_counter() + extra
            while time.perf_counter() < until:
                pass
        else:
            time.sleep(extra)

    module.register_forward_pre_hook(before)
    module.register_forward_hook(after)


def denoiser_slowdown_10pct(pipe: Any) -> Any:
    """Each denoiser call 10% slower (the host sleeps, so a GPU idles): the speed gate must flag it."""
    slow_down(denoiser_of(pipe), 0.10, spin=False)
    return pipe


def denoiser_slowdown_50pct(pipe: Any) -> Any:
    """Each denoiser call 50% slower by spinning on the CPU: wall and CPU time both rise."""
    slow_down(denoiser_of(pipe), 0.50, spin=True)
    return pipe


def denoiser_slowdown_2x(pipe: Any) -> Any:
    """Each denoiser call twice as long (the host sleeps, so a GPU idles): must fail even at default settings."""
    slow_down(denoiser_of(pipe), 1.0, spin=False)
    return pipe


def denoiser_slowdown_3x(pipe: Any) -> Any:
    """Each denoiser call three times as long (CPU spin): a gross slowdown that any machine's noise leaves visible."""
    slow_down(denoiser_of(pipe), 2.0, spin=True)
    return pipe


def device_ballast_200mib(pipe: Any) -> Any:
    """200 MiB held on the denoiser's device as long as the pipeline lives: the memory gate must flag it."""
    import torch

    device = next(denoiser_of(pipe).parameters()).device
    pipe._harness_ballast = torch.ones(200 * MIB, dtype=torch.uint8, device=device)
    return pipe


FLICKER = 0.02  # in the VAE's [-1, 1] output: 1% of the range, about 2.5 8-bit levels


def frame_flicker(pipe: Any) -> Any:
    """Clips only: every other decoded frame 1% brighter, the rest 1% darker. Each frame stays close to its
    reference (about 40 dB), but the clip flickers: damage to temporal coherence alone."""
    import torch

    def offsets(frames: int, dtype: Any, device: Any) -> Any:
        signs = torch.ones(frames, dtype=dtype, device=device)
        signs[1::2] = -1.0
        return FLICKER * signs

    return _shift_decoded_frames(pipe, offsets)


COLOUR_SHIFT = 0.12  # in the VAE's [-1, 1] output: 6% of the range, about 15 8-bit levels


def decoded_colour_shift(pipe: Any) -> Any:
    """Every decoded frame 6% brighter, as a wrong VAE scaling or shift factor washes out a clip: each frame is
    far from its reference, but the error never changes from frame to frame (a static error; temporal error 0)."""
    import torch

    return _shift_decoded_frames(pipe, lambda frames, dtype, device: torch.full((frames,), COLOUR_SHIFT, dtype=dtype))


def _shift_decoded_frames(pipe: Any, offsets: Any) -> Any:
    """Add ``offsets(frames, dtype, device)`` to each decoded frame of the VAE's (N, C, F, H, W) output."""

    def shifted(sample: Any) -> Any:
        shift = offsets(sample.shape[2], sample.dtype, sample.device).to(sample.device)
        return sample + shift.view(1, 1, -1, 1, 1)

    return _change_decoded(pipe, shifted)


def _change_decoded(pipe: Any, change: Any) -> Any:
    """Wrap the VAE's ``decode`` so that ``change(sample)`` replaces its decoded sample, in a tuple or an output."""
    decode = pipe.vae.decode

    def changed_decode(*args: Any, **kwargs: Any) -> Any:
        output = decode(*args, **kwargs)
        if isinstance(output, tuple):
            return (change(output[0]), *output[1:])
        output.sample = change(output.sample)
        return output

    pipe.vae.decode = changed_decode
    return pipe


TAIL_NOISE = 0.1  # in the VAE's [-1, 1] output: about 13 8-bit levels RMS, about 26 dB against the clean image


def noisy_quarter_of_images(pipe: Any) -> Any:
    """Every fourth decoded image (counted over the whole run, whatever the batch) gets Gaussian noise of 5% of the
    range: a quarter of the images near 26 dB while the mean PSNR stays far above any mean gate (a tail gate's
    control)."""
    import torch

    seen = [0]
    generator = torch.Generator().manual_seed(4)

    def noisy(sample: Any) -> Any:
        indices = [i for i in range(sample.shape[0]) if (seen[0] + i) % 4 == 3]
        seen[0] += sample.shape[0]
        if not indices:
            return sample
        noise = torch.randn((len(indices), *sample.shape[1:]), generator=generator) * TAIL_NOISE
        sample = sample.clone()
        sample[indices] = sample[indices] + noise.to(sample.device, sample.dtype)
        return sample

    return _change_decoded(pipe, noisy)


# Every control of this module, with what it damages; the registry lists them (``python -m harness ls controls``).
CONTROLS = (
    Control.of(denoiser_noise_0_5, "quality"),
    Control.of(denoiser_rounding_noise, "rounding"),
    Control.of(denoiser_2bit, "quality"),
    Control.of(attention_2bit, "quality"),
    Control.of(timestep_embedding_zeroed, "quality"),
    Control.of(wrong_sampler_shift, "schedule"),
    Control.of(vae_scaling_wrong, "quality"),
    Control.of(text_embeddings_x4, "quality"),
    Control.of(noisy_quarter_of_images, "tail"),
    Control.of(denoiser_slowdown_10pct, "speed"),
    Control.of(denoiser_slowdown_50pct, "speed"),
    Control.of(denoiser_slowdown_2x, "speed"),
    Control.of(denoiser_slowdown_3x, "speed"),
    Control.of(device_ballast_200mib, "memory"),
    Control.of(frame_flicker, "clips"),
    Control.of(decoded_colour_shift, "clips"),
)
