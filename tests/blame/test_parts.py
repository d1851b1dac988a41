"""Parts of a pipeline: tensor groups by name, the blocks of a component, and which parts differ."""

from __future__ import annotations

import copy

import pytest

from harness.blame.parts import blocks, differs, find_parts, group_of


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("transformer_blocks.0.attn.to_q", "attention q"),
        ("transformer_blocks.0.attn.add_k_proj", "attention k"),
        ("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v", "attention v"),
        ("transformer_blocks.0.attn.to_out.0", "attention out"),
        ("transformer_blocks.0.ff.net.2", "feed-forward"),
        ("single_transformer_blocks.3.proj_out", "feed-forward"),
        ("single_transformer_blocks.3.proj_mlp", "feed-forward"),
        ("proj_out", "output"),
        ("decoder.conv_out", "output"),
        ("time_text_embed.timestep_embedder.linear_1", "embeddings"),
        ("x_embedder", "embeddings"),
        ("transformer_blocks.0.norm1.linear", "norms and modulation"),
        ("up_blocks.0.resnets.1.conv2", "resnet convolutions"),
        ("up_blocks.0.upsamplers.0.conv", "other"),
    ],
)
def test_tensor_groups_by_module_path(path, group):
    assert group_of(path) == group


@pytest.fixture(scope="module")
def world():
    from harness import api

    return api.builtin("shapes")


def test_blocks_open_module_lists_and_the_children_that_hold_them(world):
    unet_blocks = blocks(world.unet)
    assert unet_blocks[0] == "conv_in"
    assert {"down_blocks.0", "up_blocks.2", "mid_block.resnets.0", "mid_block.attentions.0"} <= set(unet_blocks)
    vae_blocks = blocks(world.vae)
    assert "decoder.up_blocks.0" in vae_blocks and "decoder.mid_block.resnets.0" in vae_blocks


def test_only_what_differs_is_a_part(world):
    import torch

    other = copy.deepcopy(world)
    assert find_parts(other, world, "unet") == []
    with torch.no_grad():
        other.unet.up_blocks[1].attentions[0].transformer_blocks[0].attn1.to_v.weight.mul_(1.01)
    parts = {part.name: part for part in find_parts(other, world, "unet")}
    assert set(parts) == {"unet", "unet.up_blocks.1", "unet: attention v"}
    assert parts["unet: attention v"].paths == ("unet.up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_v",)
    assert differs(other.unet, world.unet) and not differs(other.vae, world.vae)
    assert differs(world.vae.to(torch.float16), copy.deepcopy(world.vae).float())  # a dtype is a difference
