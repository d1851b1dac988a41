"""FLUX.1 and SD3.x transformers from diffusers keys to the original (BFL / Stability) layout.

The original layout is the one of the checkpoints and GGUF files people download
(``double_blocks.0.img_attn.qkv.weight``, ``joint_blocks.0.x_block.attn.qkv.weight``).
It fuses what diffusers keeps apart: Q, K and V into one ``qkv`` projection, and in
FLUX's single blocks Q, K, V and the MLP input into ``linear1``. The final norm's
modulation stores (shift, scale) where diffusers stores (scale, shift).

These are the inverses of diffusers' ``convert_flux_transformer_checkpoint_to_diffusers``
and ``convert_sd3_transformer_checkpoint_to_diffusers``; the tests run those on the output
and must get every tensor back. Only concatenations happen here, so any width converts;
diffusers' FLUX converter, though, splits ``linear1`` at the full-size width (3072).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.convert import UnmappedKeys

FLUX_INNER_DIM = 3072  # diffusers' FLUX converter assumes it when splitting linear1

# (diffusers prefix, original prefix); the parameter suffix (.weight/.bias) is kept
FLUX_TOP = [
    ("time_text_embed.timestep_embedder.linear_1.", "time_in.in_layer."),
    ("time_text_embed.timestep_embedder.linear_2.", "time_in.out_layer."),
    ("time_text_embed.text_embedder.linear_1.", "vector_in.in_layer."),
    ("time_text_embed.text_embedder.linear_2.", "vector_in.out_layer."),
    ("time_text_embed.guidance_embedder.linear_1.", "guidance_in.in_layer."),
    ("time_text_embed.guidance_embedder.linear_2.", "guidance_in.out_layer."),
    ("context_embedder.", "txt_in."),
    ("x_embedder.", "img_in."),
    ("proj_out.", "final_layer.linear."),
]
FLUX_DOUBLE = [
    ("norm1.linear.", "img_mod.lin."),
    ("norm1_context.linear.", "txt_mod.lin."),
    ("ff.net.0.proj.", "img_mlp.0."),
    ("ff.net.2.", "img_mlp.2."),
    ("ff_context.net.0.proj.", "txt_mlp.0."),
    ("ff_context.net.2.", "txt_mlp.2."),
    ("attn.to_out.0.", "img_attn.proj."),
    ("attn.to_add_out.", "txt_attn.proj."),
]
FLUX_DOUBLE_NORMS = [
    ("attn.norm_q.weight", "img_attn.norm.query_norm.scale"),
    ("attn.norm_k.weight", "img_attn.norm.key_norm.scale"),
    ("attn.norm_added_q.weight", "txt_attn.norm.query_norm.scale"),
    ("attn.norm_added_k.weight", "txt_attn.norm.key_norm.scale"),
]
FLUX_DOUBLE_FUSED = [
    ("img_attn.qkv.", ("attn.to_q.", "attn.to_k.", "attn.to_v.")),
    ("txt_attn.qkv.", ("attn.add_q_proj.", "attn.add_k_proj.", "attn.add_v_proj.")),
]
FLUX_SINGLE = [("norm.linear.", "modulation.lin."), ("proj_out.", "linear2.")]
FLUX_SINGLE_NORMS = [("attn.norm_q.weight", "norm.query_norm.scale"), ("attn.norm_k.weight", "norm.key_norm.scale")]
FLUX_SINGLE_FUSED = [("linear1.", ("attn.to_q.", "attn.to_k.", "attn.to_v.", "proj_mlp."))]

SD3_TOP = [
    ("pos_embed.proj.", "x_embedder.proj."),
    ("time_text_embed.timestep_embedder.linear_1.", "t_embedder.mlp.0."),
    ("time_text_embed.timestep_embedder.linear_2.", "t_embedder.mlp.2."),
    ("time_text_embed.text_embedder.linear_1.", "y_embedder.mlp.0."),
    ("time_text_embed.text_embedder.linear_2.", "y_embedder.mlp.2."),
    ("context_embedder.", "context_embedder."),
    ("proj_out.", "final_layer.linear."),
]
SD3_BLOCK = [
    ("attn.norm_q.", "x_block.attn.ln_q."),
    ("attn.norm_k.", "x_block.attn.ln_k."),
    ("attn.norm_added_q.", "context_block.attn.ln_q."),
    ("attn.norm_added_k.", "context_block.attn.ln_k."),
    ("attn.to_out.0.", "x_block.attn.proj."),
    ("attn.to_add_out.", "context_block.attn.proj."),
    ("attn2.norm_q.", "x_block.attn2.ln_q."),
    ("attn2.norm_k.", "x_block.attn2.ln_k."),
    ("attn2.to_out.0.", "x_block.attn2.proj."),
    ("norm1.linear.", "x_block.adaLN_modulation.1."),
    ("ff.net.0.proj.", "x_block.mlp.fc1."),
    ("ff.net.2.", "x_block.mlp.fc2."),
    ("ff_context.net.0.proj.", "context_block.mlp.fc1."),
    ("ff_context.net.2.", "context_block.mlp.fc2."),
]
SD3_BLOCK_FUSED = [
    ("x_block.attn.qkv.", ("attn.to_q.", "attn.to_k.", "attn.to_v.")),
    ("context_block.attn.qkv.", ("attn.add_q_proj.", "attn.add_k_proj.", "attn.add_v_proj.")),
    ("x_block.attn2.qkv.", ("attn2.to_q.", "attn2.to_k.", "attn2.to_v.")),
]


def swap_halves(tensor: Any) -> Any:
    """(a, b) -> (b, a) along dim 0: diffusers' scale/shift order <-> the original shift/scale (an involution)."""
    import torch

    first, second = tensor.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


class _Converter:
    """Moves keys from a diffusers state dict into an original-layout one; leftovers are an error."""

    def __init__(self, state: Mapping[str, Any]):
        self.left = dict(state)
        self.out: dict[str, Any] = {}

    def rename(self, pairs: Sequence[tuple[str, str]], source: str = "", target: str = "") -> None:
        for old, new in pairs:
            for key in [k for k in self.left if k.startswith(source + old)]:
                self.out[target + new + key[len(source + old) :]] = self.left.pop(key)

    def fuse(self, groups: Sequence[tuple[str, Sequence[str]]], source: str, target: str) -> None:
        import torch

        for new, parts in groups:
            for suffix in ("weight", "bias"):
                keys = [f"{source}{part}{suffix}" for part in parts]
                if all(key in self.left for key in keys):
                    self.out[f"{target}{new}{suffix}"] = torch.cat([self.left.pop(key) for key in keys], dim=0)

    def blocks(self, prefix: str) -> list[int]:
        pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.")
        return sorted({int(m.group(1)) for key in self.left if (m := pattern.match(key))})

    def finish(self, what: str) -> dict[str, Any]:
        if self.left:
            raise UnmappedKeys(
                f"{len(self.left)} {what} keys have no place in the original layout (first: {', '.join(list(self.left)[:5])})"
            )
        return self.out


def flux_to_original(state: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers ``FluxTransformer2DModel`` state dict under BFL's keys (as FLUX.1 files are published)."""
    converter = _Converter(state)
    for i in converter.blocks("transformer_blocks."):
        source, target = f"transformer_blocks.{i}.", f"double_blocks.{i}."
        converter.fuse(FLUX_DOUBLE_FUSED, source, target)
        converter.rename(FLUX_DOUBLE_NORMS, source, target)
        converter.rename(FLUX_DOUBLE, source, target)
    for i in converter.blocks("single_transformer_blocks."):
        source, target = f"single_transformer_blocks.{i}.", f"single_blocks.{i}."
        converter.fuse(FLUX_SINGLE_FUSED, source, target)
        converter.rename(FLUX_SINGLE_NORMS, source, target)
        converter.rename(FLUX_SINGLE, source, target)
    for suffix in ("weight", "bias"):
        key = f"norm_out.linear.{suffix}"
        if key in converter.left:
            converter.out[f"final_layer.adaLN_modulation.1.{suffix}"] = swap_halves(converter.left.pop(key))
    converter.rename(FLUX_TOP)
    return converter.finish("FLUX")


def sd3_to_original(state: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers ``SD3Transformer2DModel`` state dict under Stability's MM-DiT keys (as SD3.x files are published)."""
    converter = _Converter(state)
    blocks = converter.blocks("transformer_blocks.")
    for i in blocks:
        source, target = f"transformer_blocks.{i}.", f"joint_blocks.{i}."
        converter.fuse(SD3_BLOCK_FUSED, source, target)
        if i == blocks[-1]:  # the last block's context modulation is stored swapped, like the final norm's
            for suffix in ("weight", "bias"):
                key = f"{source}norm1_context.linear.{suffix}"
                if key in converter.left:
                    converter.out[f"{target}context_block.adaLN_modulation.1.{suffix}"] = swap_halves(
                        converter.left.pop(key)
                    )
        converter.rename([("norm1_context.linear.", "context_block.adaLN_modulation.1.")], source, target)
        converter.rename(SD3_BLOCK, source, target)
    if "pos_embed.pos_embed" in converter.left:
        converter.out["pos_embed"] = converter.left.pop("pos_embed.pos_embed")
    for suffix in ("weight", "bias"):
        key = f"norm_out.linear.{suffix}"
        if key in converter.left:
            converter.out[f"final_layer.adaLN_modulation.1.{suffix}"] = swap_halves(converter.left.pop(key))
    converter.rename(SD3_TOP)
    return converter.finish("SD3")


def transformer_to_original(module: Any, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A FLUX.1 or SD3.x transformer's weights under the original keys; other classes, and FLUX models narrower
    than FLUX.1 (diffusers could not load them back), are :class:`UnmappedKeys`."""
    state = state if state is not None else module.state_dict()
    kind = type(module).__name__
    if kind == "SD3Transformer2DModel":
        return sd3_to_original(state)
    if kind == "FluxTransformer2DModel":
        inner = int(module.config.num_attention_heads) * int(module.config.attention_head_dim)
        if inner != FLUX_INNER_DIM:
            raise UnmappedKeys(
                f"diffusers' FLUX single-file converter splits the fused linear1 at width {FLUX_INNER_DIM} "
                f"(FLUX.1's); this transformer is {inner} wide, so an original-layout file of it would not load back"
            )
        return flux_to_original(state)
    if kind == "WanTransformer3DModel":
        from harness.convert.wan import wan_to_original

        return wan_to_original(state)
    raise UnmappedKeys(f"no original key layout for {kind} (FLUX.1, SD3.x and Wan transformers have one)")
