"""tiny-sdxl's VAE overflows float16 by SDXL's mechanism: activations past 65504 feeding a GroupNorm."""

from __future__ import annotations

import numpy as np
import torch

from harness.pipelines.sdxl import FP16_MAX, build_tiny_sdxl, make_vae_overflow_fp16


def test_overflow_leaves_float32_alone_and_breaks_float16():
    latents = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    plain = build_tiny_sdxl(overflowing_vae=False).vae.eval()
    with torch.no_grad():
        reference = plain.decode(latents).sample
        overflowing = make_vae_overflow_fp16(plain)
        seen = []
        overflowing.decoder.mid_block.resnets[0].conv1.register_forward_hook(
            lambda module, args, out: seen.append(float(out.abs().max()))
        )
        same = overflowing.decode(latents).sample
        broken = overflowing.half().decode(latents.half()).sample
    assert seen[0] > FP16_MAX  # the real mechanism: no injected NaN, a value float16 cannot hold
    torch.testing.assert_close(same, reference, rtol=0, atol=1e-4)
    assert not np.isfinite(broken.float().numpy()).all()
