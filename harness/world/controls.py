"""Transforms that damage the shapes generator in known ways: negative controls and sensitivity probes.

Use them as ``transform = "harness.world.controls:unet_noise_0_2"`` on any configuration of a
``builtin:shapes`` suite. Noise is relative: each weight tensor gets Gaussian noise with
that fraction of its own standard deviation, from a fixed seed. Controls for any pipeline
(2-bit weights, slowdowns, memory ballast) are in :mod:`harness.controls`.
"""

from __future__ import annotations

from typing import Any

from harness.controls import Control, add_relative_noise


def unet_noise_0_05(pipe: Any) -> Any:
    """UNet weights + 5% relative noise: a sensitivity probe."""
    add_relative_noise(pipe.unet, 0.05, 1)
    return pipe


def unet_noise_0_2(pipe: Any) -> Any:
    """UNet weights + 20% relative noise."""
    add_relative_noise(pipe.unet, 0.2, 1)
    return pipe


def unet_noise_0_5(pipe: Any) -> Any:
    """UNet weights + 50% relative noise: broken objects (a negative control)."""
    add_relative_noise(pipe.unet, 0.5, 1)
    return pipe


def text_encoder_noise_0_2(pipe: Any) -> Any:
    """Text encoder weights + 20% relative noise."""
    add_relative_noise(pipe.text_encoder, 0.2, 2)
    return pipe


def flawed_generator(pipe: Any) -> Any:
    """Swap in the flawed model (SD1.5 recipe: epsilon, 'leading'): colours and shapes, no positions."""
    from harness.world.assets import flawed_generator_dir, load_generator

    flawed: Any = load_generator(flawed_generator_dir())
    device, dtype = pipe.unet.device, pipe.unet.dtype
    pipe.register_modules(
        unet=flawed.unet.to(device, dtype),
        text_encoder=flawed.text_encoder.to(device, pipe.text_encoder.dtype),
        scheduler=flawed.scheduler,
    )
    return pipe


CONTROLS = (
    Control.of(unet_noise_0_05, "quality"),
    Control.of(unet_noise_0_2, "quality"),
    Control.of(unet_noise_0_5, "quality"),
    Control.of(text_encoder_noise_0_2, "quality"),
    Control.of(flawed_generator, "quality"),
)
