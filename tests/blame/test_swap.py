"""Swapping modules between pipelines of two precisions: exact where everything is swapped, and put back after."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from harness.blame.parts import leaves
from harness.blame.swap import swapped


@pytest.fixture(scope="module")
def pair():
    import torch

    from harness import api

    reference = api.builtin("shapes")
    reference.set_progress_bar_config(disable=True)
    from harness.kinds.casting import CastLog, install_boundary_casts
    from harness.kinds.casting import module_components as components

    half = copy.deepcopy(reference)
    half.unet.to(torch.bfloat16)
    install_boundary_casts(components(half), CastLog())  # mixed precision, as the harness runs it
    return half, reference


def images(pipe):
    import torch

    return pipe(
        prompt=["a red circle on the left"],
        num_inference_steps=4,
        height=64,
        width=64,
        guidance_scale=5.0,
        generator=[torch.Generator().manual_seed(0)],
        output_type="np",
    ).images


def test_every_leaf_swapped_reproduces_the_reference_and_the_original_comes_back(pair):
    half, reference = pair
    before, wanted = images(half), images(reference)
    assert np.abs(before - wanted).max() > 0  # bf16 UNet: other pixels
    every_leaf = [f"unet.{path}" for path in leaves(half.unet)]
    with swapped(half, reference, every_leaf):
        # each fp32 leaf gets its inputs cast up and its outputs cast back to bf16 between leaves
        inside = images(half)
    with swapped(half, reference, ["unet"]):
        assert np.array_equal(images(half), wanted)  # the whole component: the reference exactly
    assert np.array_equal(images(half), before)  # put back
    # between leaves the activations stay bf16, so the images are neither the reference's nor the same as before
    assert np.isfinite(inside).all() and not np.array_equal(inside, before)


def test_a_block_swapped_in_computes_in_its_own_dtype(pair):
    import torch

    half, reference = pair
    seen = []
    block = reference.unet.up_blocks[1]

    def record(_module, args, kwargs):
        seen.extend(v.dtype for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor) and v.dim() >= 2)

    with swapped(half, reference, ["unet.up_blocks.1"]):
        # registered after the swap's own cast, so it sees what the block computes with
        handle = block.register_forward_pre_hook(record, with_kwargs=True)
        try:
            images(half)
        finally:
            handle.remove()
    assert seen and set(seen) == {torch.float32}
    assert half.unet.up_blocks[1] is not block
