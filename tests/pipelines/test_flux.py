"""FLUX latents: drawn per sample unpacked, packed exactly as FluxPipeline packs its own."""

from __future__ import annotations

import torch

from harness.pipelines.family import seeded_noise
from harness.pipelines.flux import FluxFamily


class FakePipe:
    vae_scale_factor = 2

    class transformer:
        class config:
            in_channels = 16


def test_packing_matches_the_pipelines_own():
    from diffusers import FluxPipeline

    packed = FluxFamily().initial_latents(FakePipe(), [3, 7], 64, 64)
    unpacked = seeded_noise([3, 7], (4, 32, 32))
    assert torch.equal(packed, FluxPipeline._pack_latents(unpacked, 2, 4, 32, 32))
    # a sample's noise depends on its seed only, never on the batch
    assert torch.equal(FluxFamily().initial_latents(FakePipe(), [7], 64, 64)[0], packed[1])
