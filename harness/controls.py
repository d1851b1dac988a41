"""Transforms that damage any pipeline in known ways: negative controls for every kind of gate.

Use them as ``transform = "harness.controls:denoiser_noise_0_5"`` with ``expect = "fail"``:
a gate nobody has seen fail is not yet a gate. They work on any family (the denoiser is
the pipeline's ``unet`` or ``transformer``).

- quality: relative Gaussian weight noise, and 2-bit weights (a Q2-sized loss);
- rounding: noise of 1e-3 of each tensor's standard deviation, which a gate must *not* flag;
- speed: the denoiser made slower by a fraction of its own time, by sleeping (the device
  idles) or by spinning on the CPU (the process's CPU time rises too);
- memory: 200 MiB held on the pipeline's device for its whole life.
"""

from __future__ import annotations

import time
from typing import Any

MIB = 2**20


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
    import torch

    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.dim() < 2:
                continue
            rows = parameter.float().reshape(parameter.shape[0], -1)
            scale = rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 1.5
            levels = (rows / scale - 0.5).round().clamp(-2, 1) + 0.5  # -1.5, -0.5, 0.5, 1.5
            parameter.copy_((levels * scale).reshape(parameter.shape).to(parameter.dtype))


def denoiser_noise_0_5(pipe: Any) -> Any:
    add_relative_noise(denoiser_of(pipe), 0.5, 1)
    return pipe


def denoiser_rounding_noise(pipe: Any) -> Any:
    """Rounding-sized damage (1e-3 of each tensor's std): regression gates must stay quiet on it."""
    add_relative_noise(denoiser_of(pipe), 1e-3, 3)
    return pipe


def denoiser_2bit(pipe: Any) -> Any:
    quantize_2bit(denoiser_of(pipe))
    return pipe


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
