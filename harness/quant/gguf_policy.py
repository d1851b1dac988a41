"""Which GGML type each tensor of a GGUF file gets: uniform types, and llama.cpp's ``_S``/``_M``/``_L`` mixes.

The mixes follow the rules the image-model patch of ``llama-quantize`` (ComfyUI-GGUF's
``tools/lcpp.patch``, used to make the FLUX/SD3/SDXL files people download) applies
on top of the file's base type:

- attention V weights (``.to_v.weight``, ``attn_v``, ``.v.weight``): Q2_K -> Q3_K;
  Q3_K_M -> Q5_K for the first two, then Q4_K; Q3_K_L -> Q5_K; Q4_K_M and Q5_K_M -> Q6_K;
  Q4_K_S -> Q5_K for the first four;
- fused QKV weights (``attn.qkv.weight``): Q3_K_M/L -> Q4_K; Q4_K_M -> Q5_K; Q5_K_M -> Q6_K;
- feed-forward down projections (``.ff.net.2.weight``, ``ffn_down``, ``.mlp.layer2.weight``):
  Q3_K_M -> Q4_K; Q3_K_L and Q4_K_S -> Q5_K; Q4_K_M and Q5_K_M -> Q6_K.

"First" counts tensors in file order, as llama-quantize does. ``_S`` of Q5_K, and Q2_K's
non-V tensors, keep the base type.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.convert.ldm import UNET_PREFIX

BASE = {
    "Q2_K": "Q2_K",  # llama.cpp's plain "Q2_K" file is itself a mix (V weights in Q3_K)
    "Q2_K_S": "Q2_K",
    "Q3_K_S": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K",
    "Q4_K_M": "Q4_K",
    "Q5_K_S": "Q5_K",
    "Q5_K_M": "Q5_K",
}
MIXES = tuple(BASE)
V_NAMES = ("attn_v.weight", ".to_v.weight", ".v.weight", "_attn.v_proj.weight")
QKV_NAMES = ("attn_qkv.weight", "attn.qkv.weight", "attention.qkv.weight")
FFN_DOWN_NAMES = ("ffn_down", ".ffn.2.weight", ".ff.net.2.weight", ".mlp.layer2.weight", ".feed_forward.w2.weight")


POLICIES = ("uniform", "S", "M", "L")

# Tensors the community's image-model files keep in float whatever the file's type (ComfyUI-GGUF's
# tools/lcpp.patch and convert.py), by general.architecture, matched on the original-layout key
# without its ``model.diffusion_model.`` prefix: the input embedders, the timestep/vector/guidance
# embeddings and the final layer, small but on the path of every token.
KEEP_FLOAT = {
    "flux": ("img_in.", "txt_in.", "time_in.", "vector_in.", "guidance_in.", "final_layer."),
    "sd3": ("final_layer.", "t_embedder.", "y_embedder.", "context_embedder.", "x_embedder.", "pos_embed"),
    "sdxl": ("time_embed.", "label_emb.", "input_blocks.0.0.", "out.2."),
    "sd1": ("time_embed.", "label_emb.", "input_blocks.0.0.", "out.2."),
}


def kept_float(architecture: str, key: str) -> bool:
    """Whether a file of ``architecture`` keeps tensor ``key`` in float (see :data:`KEEP_FLOAT`)."""
    key = key.removeprefix(UNET_PREFIX)
    return key.startswith(KEEP_FLOAT.get(architecture, ()))


def mix_name(quant_type: str, policy: str) -> str:
    """The llama.cpp file type of ``type`` + ``policy`` (``"Q4_K"`` + ``"M"`` -> ``"Q4_K_M"``; Q2_K's M is "Q2_K")."""
    if policy == "uniform":
        return quant_type
    if quant_type == "Q2_K" and policy == "M":
        return "Q2_K"
    return f"{quant_type}_{policy}"


def mix_problem(quant_type: str, policy: str) -> str | None:
    """Why ``type`` + ``policy`` is not a llama.cpp mix, or ``None``."""
    if policy == "uniform" or mix_name(quant_type, policy) in BASE:
        return None
    known = ", ".join(f"{name.rsplit('_', 1)[0]} + {name.rsplit('_', 1)[1]}" for name in MIXES if name != "Q2_K")
    return f"llama.cpp has no {quant_type}_{policy} mix; mixes are {known}, and Q2_K + M (llama.cpp's 'Q2_K')"


def assign_types(names: Iterable[str], file_type: str) -> dict[str, str]:
    """The GGML type of each quantizable tensor (``names`` in file order) for a uniform type or a mix."""
    base = BASE.get(file_type, file_type)
    types: dict[str, str] = {}
    v_count = 0
    for name in names:
        chosen = base
        if any(part in name for part in V_NAMES):
            chosen = _v_type(file_type, v_count, base)
            v_count += 1
        elif any(part in name for part in QKV_NAMES):
            chosen = {"Q3_K_M": "Q4_K", "Q3_K_L": "Q4_K", "Q4_K_M": "Q5_K", "Q5_K_M": "Q6_K"}.get(file_type, base)
        elif any(part in name for part in FFN_DOWN_NAMES):
            chosen = {
                "Q3_K_M": "Q4_K",
                "Q3_K_L": "Q5_K",
                "Q4_K_S": "Q5_K",
                "Q4_K_M": "Q6_K",
                "Q5_K_M": "Q6_K",
            }.get(file_type, base)
        types[name] = chosen
    return types


def _v_type(file_type: str, index: int, base: str) -> str:
    if file_type == "Q2_K":
        return "Q3_K"
    if file_type == "Q3_K_M":
        return "Q5_K" if index < 2 else "Q4_K"
    if file_type == "Q3_K_L":
        return "Q5_K"
    if file_type in ("Q4_K_M", "Q5_K_M"):
        return "Q6_K"
    if file_type == "Q4_K_S" and index < 4:
        return "Q5_K"
    return base
