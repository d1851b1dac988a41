"""The Wan transformer's original keys: diffusers' own single-file converter maps them back exactly."""

from __future__ import annotations

import pytest
import torch

from harness.convert import UnmappedKeys
from harness.convert.wan import wan_to_original


def tiny_wan_transformer():
    from harness.pipelines.wan import build_tiny_wan

    return build_tiny_wan().transformer


def test_diffusers_converter_inverts_the_original_keys():
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    state = tiny_wan_transformer().state_dict()
    original = wan_to_original(state)
    assert len(original) == len(state)
    # a few keys as the community's files (city96's Wan GGUFs) name them
    for key in (
        "patch_embedding.weight",
        "time_embedding.0.weight",
        "time_projection.1.weight",
        "text_embedding.2.bias",
        "head.head.weight",
        "head.modulation",
        "blocks.0.modulation",
        "blocks.0.self_attn.q.weight",
        "blocks.0.self_attn.norm_q.weight",
        "blocks.0.cross_attn.o.weight",
        "blocks.1.ffn.0.weight",
        "blocks.1.ffn.2.bias",
        "blocks.0.norm3.weight",
    ):
        assert key in original, key
    back = convert_wan_transformer_to_diffusers({f"model.diffusion_model.{k}": v for k, v in original.items()})
    assert set(back) == set(state)
    for key, tensor in state.items():
        assert torch.equal(back[key], tensor), key


def test_image_conditioned_wan_is_refused_by_name():
    state = dict(tiny_wan_transformer().state_dict())
    state["condition_embedder.image_embedder.norm1.weight"] = torch.ones(4)
    with pytest.raises(UnmappedKeys, match="image_embedder"):
        wan_to_original(state)


def test_the_community_types_of_a_wan_file():
    """llama-quantize's image rules for arch "wan" (lcpp.patch): embeddings, modulation and head stay float, FFN
    down moves Q4_0 -> Q4_1, V weights stay the base type in a Q4_0 file and move to Q6_K in Q4_K_M."""
    from harness.kinds.gguf.policy import community_types

    shapes = {  # full-size Wan 2.1 14B rows (5120 wide, FFN 13824), in file order
        "patch_embedding.weight": (5120, 16, 1, 2, 2),
        "text_embedding.0.weight": (5120, 4096),
        "time_embedding.0.weight": (5120, 256),
        "time_projection.1.weight": (30720, 5120),
        "blocks.0.modulation": (1, 6, 5120),
        "blocks.0.self_attn.q.weight": (5120, 5120),
        "blocks.0.self_attn.v.weight": (5120, 5120),
        "blocks.0.self_attn.norm_q.weight": (5120,),
        "blocks.0.cross_attn.k.weight": (5120, 5120),
        "blocks.0.ffn.0.weight": (13824, 5120),
        "blocks.0.ffn.2.weight": (5120, 13824),
        "head.head.weight": (64, 5120),
        "head.modulation": (1, 2, 5120),
    }
    q4_0 = community_types("wan", shapes, "Q4_0")
    assert q4_0 == {
        "patch_embedding.weight": "F16",
        "text_embedding.0.weight": "F16",
        "time_embedding.0.weight": "F16",
        "time_projection.1.weight": "F16",
        "blocks.0.modulation": "F16",
        "blocks.0.self_attn.q.weight": "Q4_0",
        "blocks.0.self_attn.v.weight": "Q4_0",
        "blocks.0.self_attn.norm_q.weight": "F32",
        "blocks.0.cross_attn.k.weight": "Q4_0",
        "blocks.0.ffn.0.weight": "Q4_0",
        "blocks.0.ffn.2.weight": "Q4_1",
        "head.head.weight": "F16",
        "head.modulation": "F16",
    }
    q4_k_m = community_types("wan", shapes, "Q4_K_M")
    assert q4_k_m["blocks.0.self_attn.v.weight"] == "Q6_K" and q4_k_m["blocks.0.ffn.2.weight"] == "Q6_K"
    assert q4_k_m["blocks.0.self_attn.q.weight"] == "Q4_K" and q4_k_m["time_embedding.0.weight"] == "F16"
