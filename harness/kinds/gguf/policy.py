"""Which GGML type each tensor of a GGUF file gets, as the community's image-model files have it.

The files people download for FLUX/SD3/SDXL/SD1 (city96's, and any made with the same tools)
are written in two steps, both in ComfyUI-GGUF's ``tools/``:

1. ``convert.py`` stores every tensor in float: 1-D tensors and tensors of at most 1024
   elements in F32, the rest in F16, or BF16 when the source is bf16. For SD1/SDXL it
   reshapes tensors whose last dimension does not fill 256-element blocks (convolutions)
   to rows of 256 (``shape_fix``), so that they can be quantized too.
2. ``llama-quantize`` with the image-model patch (``lcpp.patch``) quantizes the 2-D tensors
   whose names end in ``weight``, except ``_norm.weight`` and each architecture's keep list
   (:data:`KEEP_FLOAT`), to the file type's base type, moved up by these rules:

   - attention V weights (``.to_v.weight``, ``attn_v``, ``.v.weight``...): Q2_K -> Q3_K;
     Q3_K_M -> Q5_K for the first two, then Q4_K; Q3_K_L -> Q5_K; Q4_K_M and Q5_K_M -> Q6_K;
     Q4_K_S -> Q5_K for the first four;
   - fused QKV weights (``attn.qkv.weight``...): Q3_K_M/L -> Q4_K; Q4_K_M -> Q5_K; Q5_K_M -> Q6_K;
   - feed-forward down projections (``.ff.net.2.weight``, ``ffn_down``...): Q3_K_M -> Q4_K;
     Q3_K_L and Q4_K_S -> Q5_K; Q4_K_M and Q5_K_M -> Q6_K; Q4_0 -> Q4_1; Q5_0 -> Q5_1;
   - a K-quant whose rows are not a multiple of 256 falls back to F16.

   "First" counts tensors in file order, as llama-quantize does. The patch applies these rules
   to every file type: its ``Q4_0`` file has Q4_1 FFN-down weights, its ``Q2_K`` V weights in
   Q3_K; llama.cpp's bare ``Q3_K``/``Q4_K``/``Q5_K`` names are the ``_M`` mixes.

:func:`community_types` reproduces both steps for every tensor. The harness's own ``uniform``
policy (every quantizable Linear weight in one type, short K rows in a legacy type) is not a
community file; it is kept because the shipped suites' baselines were measured with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from math import prod

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
# llama.cpp's file-type names without a suffix: Q3_K/Q4_K/Q5_K mean the _M mixes
COMMUNITY_NAME = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q2_K": "Q2_K"}
V_NAMES = (
    "attn_v.weight",
    ".to_v.weight",
    ".v.weight",
    ".attn.w1v.weight",
    ".attn.w2v.weight",
    "_attn.v_proj.weight",
)
QKV_NAMES = ("attn_qkv.weight", "attn.qkv.weight", "attention.qkv.weight")
FFN_DOWN_NAMES = (
    "ffn_down",
    ".ffn.2.weight",
    ".ff.net.2.weight",
    ".mlp.layer2.weight",
    ".adaln_modulation_mlp.2.weight",
    ".feed_forward.w2.weight",
)
K_TYPES = ("Q6_K", "Q5_K", "Q4_K", "Q3_K", "Q2_K")
SUPER_BLOCK = 256
SMALL_TENSOR_ELEMENTS = 1024  # convert.py: tensors of at most this many elements stay F32
SHAPE_FIX_MIN_ELEMENTS = 512  # convert.py's REARRANGE_THRESHOLD
FLOAT_TYPES = ("F16", "BF16", "F32")

POLICIES = ("uniform", "community", "S", "M", "L")

# Tensors the community's image-model files keep in float whatever the file's type (lcpp.patch), by
# general.architecture, matched as the patch matches them: a fragment anywhere in the key (without the
# ``model.diffusion_model.`` prefix), or an exact key.
KEEP_FLOAT = {
    "flux": ("img_in.", "txt_in.", "time_in.", "vector_in.", "guidance_in.", "final_layer."),
    "sd3": ("final_layer.", "time_text_embed.", "context_embedder.", "t_embedder.", "y_embedder.", "x_embedder."),
    "sdxl": (
        "class_embedding.",
        "time_embedding.",
        "add_embedding.",
        "time_embed.",
        "label_emb.",
        "conv_in.",
        "conv_out.",
    ),
}
KEEP_FLOAT["sd1"] = KEEP_FLOAT["sdxl"]
KEEP_FLOAT["wan"] = (
    "modulation.",
    "patch_embedding.",
    "text_embedding.",
    "time_projection.",
    "time_embedding.",
    "img_emb.",
    "head.",
)
KEEP_FLOAT_EXACT = {
    "sd3": ("proj_out.weight", "pos_embed"),
    "sdxl": ("input_blocks.0.0.weight", "out.2.weight"),
    "sd1": ("input_blocks.0.0.weight", "out.2.weight"),
}


def kept_float(architecture: str, key: str) -> bool:
    """Whether a file of ``architecture`` keeps tensor ``key`` in float (see :data:`KEEP_FLOAT`)."""
    key = key.removeprefix(UNET_PREFIX)
    return any(part in key for part in KEEP_FLOAT.get(architecture, ())) or key in KEEP_FLOAT_EXACT.get(
        architecture, ()
    )


def mix_name(quant_type: str, policy: str) -> str:
    """llama.cpp's file type of ``type`` + ``policy`` (``"Q4_K"`` + ``"M"`` -> ``"Q4_K_M"``; Q2_K's M is "Q2_K";
    ``community``: the file llama-quantize writes for that name, ``Q4_K`` -> ``Q4_K_M``)."""
    if policy == "uniform":
        return quant_type
    if policy == "community":
        return COMMUNITY_NAME.get(quant_type, quant_type)
    if quant_type == "Q2_K" and policy == "M":
        return "Q2_K"
    return f"{quant_type}_{policy}"


def mix_problem(quant_type: str, policy: str) -> str | None:
    """Why ``type`` + ``policy`` is not a llama.cpp mix, or ``None``."""
    if policy in ("uniform", "community") or mix_name(quant_type, policy) in BASE:
        return None
    known = ", ".join(f"{name.rsplit('_', 1)[0]} + {name.rsplit('_', 1)[1]}" for name in MIXES if name != "Q2_K")
    return f"llama.cpp has no {quant_type}_{policy} mix; mixes are {known}, and Q2_K + M (llama.cpp's 'Q2_K')"


def assign_types(names: Iterable[str], file_type: str) -> dict[str, str]:
    """The GGML type of each quantized tensor (``names`` in file order) in a file of llama.cpp type ``file_type``,
    before the short-row fallback."""
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
                "Q4_0": "Q4_1",
                "Q5_0": "Q5_1",
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


def fixed_shape(architecture: str, shape: Sequence[int]) -> tuple[int, ...]:
    """The shape convert.py stores a tensor in: SD1/SDXL tensors whose rows do not fill 256-element blocks, but
    whose size does, become rows of 256 (the original shape goes to ``comfy.gguf.orig_shape.<key>``)."""
    elements = prod(shape)
    if (
        architecture in ("sd1", "sdxl")
        and len(shape) > 1
        and elements >= SHAPE_FIX_MIN_ELEMENTS
        and elements % SUPER_BLOCK == 0
        and shape[-1] % SUPER_BLOCK
    ):
        return (elements // SUPER_BLOCK, SUPER_BLOCK)
    return tuple(shape)


def float_storage(shape: Sequence[int], float_type: str) -> str:
    """convert.py's float type: F32 for 1-D tensors and tensors of at most 1024 elements, else ``float_type``."""
    return "F32" if len(shape) <= 1 or prod(shape) <= SMALL_TENSOR_ELEMENTS else float_type


def community_types(
    architecture: str,
    shapes: Mapping[str, Sequence[int]],
    file_type: str,
    float_type: str = "F16",
    shape_fix: bool = True,
) -> dict[str, str]:
    """Every tensor's GGML type in the community's file of llama.cpp type ``file_type`` (``Q4_K_M``, ``Q8_0``,
    ``F16``...), ``shapes`` in file order, keys in the original layout; see the module's docstring.

    ``shape_fix=False`` leaves SD1/SDXL convolutions in float, as a diffusers-loadable file must.
    """
    stored = {name: fixed_shape(architecture, s) if shape_fix else tuple(s) for name, s in shapes.items()}
    types = {name: float_storage(shape, float_type) for name, shape in stored.items()}
    if file_type in FLOAT_TYPES:
        return {name: file_type if kind != "F32" else kind for name, kind in types.items()}
    quantized = [
        name
        for name, shape in stored.items()
        if name.endswith("weight")
        and len(shape) == 2
        and types[name] != "F32"
        and "_norm.weight" not in name
        and not kept_float(architecture, name)
    ]
    for name, kind in assign_types(quantized, file_type).items():
        types[name] = "F16" if kind in K_TYPES and stored[name][-1] % SUPER_BLOCK else kind
    return types
