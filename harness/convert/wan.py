"""Wan 2.x transformer: diffusers' key names to the original checkpoint's (what the community's Wan GGUF files hold).

The inverse of diffusers' ``convert_wan_transformer_to_diffusers`` for the text-to-video transformer: renames only,
no tensor changes. diffusers' ``norm2`` (cross-attention) and ``norm3`` (feed-forward) are the original's
``norm3`` and ``norm2``. Image-conditioned variants (I2V image embedder, added K/V projections) and VACE are
refused: their keys are not mapped here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.convert import UnmappedKeys

# (diffusers, original), applied in order to each key
TOP = [
    ("condition_embedder.time_embedder.linear_1.", "time_embedding.0."),
    ("condition_embedder.time_embedder.linear_2.", "time_embedding.2."),
    ("condition_embedder.text_embedder.linear_1.", "text_embedding.0."),
    ("condition_embedder.text_embedder.linear_2.", "text_embedding.2."),
    ("condition_embedder.time_proj.", "time_projection.1."),
    ("proj_out.", "head.head."),
]
BLOCK = [
    (".attn1.to_out.0.", ".self_attn.o."),
    (".attn2.to_out.0.", ".cross_attn.o."),
    (".attn1.", ".self_attn."),
    (".attn2.", ".cross_attn."),
    (".to_q.", ".q."),
    (".to_k.", ".k."),
    (".to_v.", ".v."),
    (".ffn.net.0.proj.", ".ffn.0."),
    (".ffn.net.2.", ".ffn.2."),
]
NORM_SWAP = {".norm2.": ".norm3.", ".norm3.": ".norm2."}
REFUSED = ("image_embedder", "add_k_proj", "add_v_proj", "norm_added_k", "vace_", "proj_in.")
_BLOCK_KEY = re.compile(r"^blocks\.\d+\.")


def wan_to_original(state: Mapping[str, Any]) -> dict[str, Any]:
    """Every tensor of a text-to-video Wan transformer under the original checkpoint's key."""
    refused = sorted(key for key in state if any(part in key for part in REFUSED))
    if refused:
        raise UnmappedKeys(f"no original Wan layout for {refused[0]} (image-conditioned and VACE Wan models)")
    out: dict[str, Any] = {}
    for key, tensor in state.items():
        new = key
        if _BLOCK_KEY.match(key):
            for source, target in BLOCK:
                new = new.replace(source, target)
            for source, target in NORM_SWAP.items():
                if source in new:
                    new = new.replace(source, target)
                    break
            new = re.sub(r"\.scale_shift_table$", ".modulation", new)
        elif key == "scale_shift_table":
            new = "head.modulation"
        else:
            for source, target in TOP:
                if new.startswith(source):
                    new = target + new[len(source) :]
                    break
        out[new] = tensor
    return out
