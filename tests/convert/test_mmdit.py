"""FLUX.1 and SD3.x original key layouts, checked by running diffusers' own converters back over them."""

from __future__ import annotations

import pytest
import torch

from harness.convert.ldm import UnmappedKeys
from harness.convert.mmdit import flux_to_original, sd3_to_original


def test_sd3_round_trips_through_diffusers_converter():
    from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers

    from harness.pipelines.sd3 import build_tiny_sd3

    state = {k: v.clone() for k, v in build_tiny_sd3().transformer.state_dict().items()}
    original = sd3_to_original(state)
    assert "joint_blocks.0.x_block.attn.qkv.weight" in original and "pos_embed" in original
    back = convert_sd3_transformer_checkpoint_to_diffusers(dict(original))
    assert set(back) == set(state)
    assert all(torch.equal(back[key], state[key]) for key in state)


def row_ids(model):
    """A state dict of the model's keys and row counts, each row holding a unique number (one column: cheap)."""
    state, offset = {}, 0
    for key, tensor in model.state_dict().items():
        rows = tensor.shape[0]
        state[key] = (torch.arange(rows, dtype=torch.float64) + offset).reshape(rows, *([1] * (tensor.dim() - 1)))
        offset += rows
    return state


def test_flux_round_trips_through_diffusers_converter_at_full_width():
    # diffusers' converter splits single blocks' linear1 at FLUX.1's width (3072): check at that width, on tensors
    # one column wide whose rows carry their origin, so every slice, fusion and swap is checked by value
    from diffusers import FluxTransformer2DModel
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

    with torch.device("meta"):
        model = FluxTransformer2DModel(num_layers=2, num_single_layers=2, guidance_embeds=True)
    state = row_ids(model)
    original = flux_to_original(state)
    assert {
        "double_blocks.1.img_attn.qkv.weight",
        "single_blocks.0.linear1.weight",
        "guidance_in.in_layer.weight",
    } <= set(original)
    back = convert_flux_transformer_checkpoint_to_diffusers(dict(original))
    assert set(back) == set(state)
    assert all(torch.equal(back[key], state[key]) for key in state)


def test_keys_of_another_layout_are_refused():
    with pytest.raises(UnmappedKeys, match="1 FLUX keys have no place"):
        flux_to_original({"x_embedder.weight": torch.zeros(2, 2), "something.else": torch.zeros(1)})
