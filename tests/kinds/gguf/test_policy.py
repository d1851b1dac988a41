"""llama.cpp's _S/_M/_L mixes: which tensor gets which type, by the rules of its image-model patch."""

from __future__ import annotations

import pytest
import torch

from harness.kinds.gguf.policy import assign_types, mix_name, mix_problem

# an SDXL-like file order: two transformer blocks, each with V, a fused QKV elsewhere, an FFN down projection
NAMES = [
    f"input_blocks.{i}.1.transformer_blocks.0.{part}"
    for i in (1, 2, 4, 5, 7)
    for part in ("attn1.to_q.weight", "attn1.to_v.weight", "ff.net.2.weight", "proj_in.weight")
] + ["double_blocks.0.img_attn.qkv.weight"]


def types_of(file_type, fragment):
    return [t for name, t in assign_types(NAMES, file_type).items() if fragment in name]


def test_uniform_bases_and_the_m_mixes():
    assert set(assign_types(NAMES, "Q4_K_S").values()) <= {"Q4_K", "Q5_K"}
    assert types_of("Q4_K_M", "to_q") == ["Q4_K"] * 5
    assert types_of("Q4_K_M", "to_v") == ["Q6_K"] * 5
    assert types_of("Q4_K_M", "ff.net.2") == ["Q6_K"] * 5
    assert types_of("Q4_K_M", "qkv") == ["Q5_K"]
    assert types_of("Q5_K_M", "qkv") == ["Q6_K"] and types_of("Q5_K_S", "to_v") == ["Q5_K"] * 5


def test_counted_rules_follow_file_order():
    assert types_of("Q3_K_M", "to_v") == ["Q5_K", "Q5_K", "Q4_K", "Q4_K", "Q4_K"]
    assert types_of("Q4_K_S", "to_v") == ["Q5_K"] * 4 + ["Q4_K"]
    assert types_of("Q3_K_L", "ff.net.2") == ["Q5_K"] * 5 and types_of("Q3_K_S", "ff.net.2") == ["Q3_K"] * 5


def test_q2_k_names():
    assert mix_name("Q2_K", "M") == "Q2_K" and types_of("Q2_K", "to_v") == ["Q3_K"] * 5
    assert set(assign_types(NAMES, mix_name("Q2_K", "S")).values()) == {"Q2_K"}


@pytest.mark.parametrize(("quant_type", "policy"), [("Q8_0", "M"), ("Q4_0", "S"), ("Q6_K", "M"), ("Q4_K", "L")])
def test_mixes_llama_cpp_does_not_have_are_refused(quant_type, policy):
    assert f"no {quant_type}_{policy} mix" in mix_problem(quant_type, policy)


def test_uniform_is_always_allowed():
    assert mix_problem("Q8_0", "uniform") is None and mix_problem("Q3_K", "L") is None


# --- the community's files, tensor by tensor -------------------------------------------------------------------
# Full-width models (FLUX.1 at 3072, SD3.5-large at 2432, SD1.5, SDXL) built on the meta device (no memory), in the
# original layout; each row is a tensor and its type in the file of each llama.cpp type, worked out by hand from
# ComfyUI-GGUF's tools/convert.py (F32 for 1-D, F16 otherwise; SD1/SDXL tensors reshaped to rows of 256) and
# tools/lcpp.patch (keep lists, V/QKV/FFN-down rules, F16 for K-quant rows that are not a multiple of 256).
FILE_TYPES = ("Q8_0", "Q6_K", "Q5_K_S", "Q4_K_S", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K")
BASE_TYPES = ("Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q4_K", "Q4_0", "Q3_K", "Q2_K")
SHORT_ROWS = ("Q8_0", "F16", "F16", "F16", "F16", "Q4_0", "F16", "F16")  # a K-quant row of 2432: F16
FLOAT = ("F16",) * 8
F32 = ("F32",) * 8
TABLE = {
    "flux": {
        "double_blocks.0.img_attn.qkv.weight": ("Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q5_K", "Q4_0", "Q4_K", "Q2_K"),
        "double_blocks.0.txt_mlp.2.weight": BASE_TYPES,  # FLUX's MLP names match no FFN-down rule
        "double_blocks.0.img_mod.lin.weight": BASE_TYPES,
        "single_blocks.0.linear1.weight": BASE_TYPES,
        "single_blocks.0.linear2.weight": BASE_TYPES,
        "img_in.weight": FLOAT,
        "txt_in.weight": FLOAT,
        "time_in.in_layer.weight": FLOAT,
        "guidance_in.out_layer.weight": FLOAT,
        "vector_in.in_layer.weight": FLOAT,
        "final_layer.linear.weight": FLOAT,
        "final_layer.adaLN_modulation.1.weight": FLOAT,
        "double_blocks.0.img_attn.norm.query_norm.scale": F32,
        "single_blocks.0.linear1.bias": F32,
    },
    "sd3": {
        "joint_blocks.0.x_block.attn.qkv.weight": SHORT_ROWS,
        "joint_blocks.0.x_block.mlp.fc1.weight": SHORT_ROWS,
        "joint_blocks.0.x_block.mlp.fc2.weight": BASE_TYPES,  # rows of 9728 = 38 x 256; no FFN-down rule
        "joint_blocks.0.context_block.adaLN_modulation.1.weight": SHORT_ROWS,
        "pos_embed": FLOAT,
        "x_embedder.proj.weight": FLOAT,
        "context_embedder.weight": FLOAT,
        "t_embedder.mlp.0.weight": FLOAT,
        "y_embedder.mlp.2.weight": FLOAT,
        "final_layer.linear.weight": FLOAT,
        "joint_blocks.0.x_block.attn.ln_q.weight": F32,
    },
    "sd1": {
        # V weights: the first (file order) takes the counted rules' higher types; 320 x 320 becomes 400 x 256
        "input_blocks.1.1.transformer_blocks.0.attn1.to_v.weight": (
            "Q8_0",
            "Q6_K",
            "Q5_K",
            "Q5_K",
            "Q6_K",
            "Q4_0",
            "Q5_K",
            "Q3_K",
        ),
        "middle_block.1.transformer_blocks.0.attn2.to_v.weight": (
            "Q8_0",
            "Q6_K",
            "Q5_K",
            "Q4_K",
            "Q6_K",
            "Q4_0",
            "Q4_K",
            "Q3_K",
        ),
        "input_blocks.1.1.transformer_blocks.0.ff.net.2.weight": (
            "Q8_0",
            "Q6_K",
            "Q5_K",
            "Q5_K",
            "Q6_K",
            "Q4_1",
            "Q4_K",
            "Q2_K",
        ),
        "input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight": BASE_TYPES,
        "input_blocks.1.0.in_layers.2.weight": BASE_TYPES,  # a 3x3 convolution, reshaped to rows of 256
        "input_blocks.1.1.proj_in.weight": BASE_TYPES,  # SD1's 1x1 convolution
        "input_blocks.1.0.emb_layers.1.weight": BASE_TYPES,
        "input_blocks.0.0.weight": FLOAT,
        "out.2.weight": FLOAT,
        "time_embed.0.weight": FLOAT,
        "input_blocks.1.0.in_layers.0.weight": F32,
    },
    "sdxl": {
        "input_blocks.4.1.transformer_blocks.0.attn1.to_v.weight": (
            "Q8_0",
            "Q6_K",
            "Q5_K",
            "Q5_K",
            "Q6_K",
            "Q4_0",
            "Q5_K",
            "Q3_K",
        ),
        "input_blocks.7.1.transformer_blocks.0.attn1.to_v.weight": (
            "Q8_0",
            "Q6_K",
            "Q5_K",
            "Q4_K",
            "Q6_K",
            "Q4_0",
            "Q4_K",
            "Q3_K",
        ),
        "middle_block.1.transformer_blocks.0.ff.net.2.weight": (
            "Q8_0",
            "Q6_K",
            "Q5_K",
            "Q5_K",
            "Q6_K",
            "Q4_1",
            "Q4_K",
            "Q2_K",
        ),
        "input_blocks.4.1.proj_in.weight": BASE_TYPES,  # a 640 x 640 Linear, reshaped to rows of 256
        "input_blocks.7.0.in_layers.2.weight": BASE_TYPES,
        "label_emb.0.0.weight": FLOAT,
        "time_embed.2.weight": FLOAT,
        "out.2.weight": FLOAT,
    },
}


def full_width_shapes(architecture):
    """The original-layout tensor shapes of a full-width model of ``architecture``, in the harness's file order."""
    from diffusers import FluxTransformer2DModel, SD3Transformer2DModel, UNet2DConditionModel

    from harness.kinds.gguf.file import keyed_state
    from harness.pipelines.sd3 import SD35_LARGE_TRANSFORMER
    from harness.pipelines.sdxl import SDXL_UNET

    with torch.device("meta"):
        module = {
            "flux": lambda: FluxTransformer2DModel(num_layers=1, num_single_layers=1, guidance_embeds=True),
            "sd3": lambda: SD3Transformer2DModel(**{**SD35_LARGE_TRANSFORMER, "num_layers": 1}),  # 2432 wide
            "sd1": lambda: UNet2DConditionModel(cross_attention_dim=768),
            "sdxl": lambda: UNet2DConditionModel(**SDXL_UNET),
        }[architecture]()
    state, _ = keyed_state(module, "original")
    return {key.removeprefix("model.diffusion_model."): tuple(tensor.shape) for key, tensor in state.items()}


@pytest.mark.parametrize("architecture", sorted(TABLE))
def test_the_community_type_of_every_listed_tensor(architecture):
    from harness.kinds.gguf.policy import community_types

    shapes = full_width_shapes(architecture)
    for index, file_type in enumerate(FILE_TYPES):
        types = community_types(architecture, shapes, file_type)
        assert set(types) == set(shapes)
        got = {key: types[key] for key in TABLE[architecture]}
        expected = {key: row[index] for key, row in TABLE[architecture].items()}
        assert got == expected, file_type
    assert set(community_types(architecture, shapes, "BF16", float_type="BF16").values()) == {"BF16", "F32"}


def test_only_the_listed_families_keep_their_rows_whole():
    """convert.py reshapes SD1/SDXL tensors to rows of 256 (so nothing falls back to F16); FLUX/SD3 never."""
    from harness.kinds.gguf.policy import community_types, fixed_shape

    assert fixed_shape("sd1", (320, 320, 3, 3)) == (3600, 256) and fixed_shape("sdxl", (640, 640)) == (1600, 256)
    assert fixed_shape("sd3", (7296, 2432)) == (7296, 2432) and fixed_shape("sd1", (320,)) == (320,)
    assert fixed_shape("sd1", (1280, 768)) == (1280, 768)  # rows already a multiple of 256
    sd1 = full_width_shapes("sd1")
    community = community_types("sd1", sd1, "Q4_K_M")
    loadable = community_types("sd1", sd1, "Q4_K_M", shape_fix=False)  # what diffusers can load
    conv = "input_blocks.1.0.in_layers.2.weight"
    assert community[conv] == "Q4_K" and loadable[conv] == "F16"
    assert loadable["input_blocks.1.1.transformer_blocks.0.attn1.to_v.weight"] == "F16"  # 320-element rows
    counts = {kind: sum(t == kind for t in community.values()) for kind in ("Q4_K", "Q5_K", "Q6_K", "F16")}
    # only the keep list stays F16: input_blocks.0.0, out.2 and time_embed.0/2
    assert counts["F16"] == 4 and counts["Q4_K"] > counts["Q6_K"] > 0, counts
