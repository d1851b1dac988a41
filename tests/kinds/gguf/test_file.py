"""GGUF files the harness writes: read back with GGUFReader, dequantize within the expected error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.errors import InputError
from harness.kinds.gguf.file import open_gguf, read_gguf_stats, write_gguf


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(64, 96)  # quantizable: last dim 64, 6144 elements
        self.small = torch.nn.Linear(32, 8)  # too small (256 elements): stays float
        self.odd = torch.nn.Linear(40, 64)  # last dim not a multiple of 32: stays float
        self.conv = torch.nn.Conv2d(4, 8, 3)  # not Linear: stays float


@pytest.mark.parametrize(
    ("quant_type", "tolerance"),
    [("Q8_0", 0.01), ("Q5_1", 0.05), ("Q5_0", 0.06), ("Q4_1", 0.1), ("Q4_0", 0.12), ("BF16", 0.005)],
)
def test_written_file_reads_back_and_dequantizes(tmp_path, quant_type, tolerance):
    import gguf

    model = Tiny()
    stats = write_gguf(model, tmp_path / "m.gguf", quant_type)
    quantized = 0 if quant_type == "BF16" else 1  # a BF16 tensor is a float tensor
    assert stats.quantized_tensors == quantized and stats.float_tensors == len(model.state_dict()) - quantized
    reader = open_gguf(tmp_path / "m.gguf")
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == set(model.state_dict())
    assert tensors["proj.weight"].tensor_type.name == quant_type
    assert tensors["proj.bias"].tensor_type.name == "F32"
    # at most 1024 elements: F32, as convert.py stores them; larger float tensors F16
    assert tensors["small.weight"].tensor_type.name == "F32" and tensors["odd.weight"].tensor_type.name == "F16"
    assert tensors["conv.weight"].tensor_type.name == "F32"
    original = model.proj.weight.detach().numpy()
    restored = gguf.quants.dequantize(tensors["proj.weight"].data, tensors["proj.weight"].tensor_type).reshape(
        original.shape
    )
    relative = np.linalg.norm(restored - original) / np.linalg.norm(original)
    assert relative < tolerance, relative
    assert read_gguf_stats(tmp_path / "m.gguf").types == stats.types


def test_f16_and_f32_float_storage(tmp_path):
    model = Tiny()
    assert write_gguf(model, tmp_path / "a.gguf", "F16").quantized_tensors == 0
    stats = write_gguf(model, tmp_path / "b.gguf", "Q8_0", float_type="F32")
    assert stats.types.get("F16", 0) == 0 and stats.compression_vs_fp16 < 1.0  # float32 storage is larger than fp16


def test_corrupt_and_truncated_files_are_input_errors(tmp_path):
    write_gguf(Tiny(), tmp_path / "good.gguf", "Q4_0")
    data = (tmp_path / "good.gguf").read_bytes()
    (tmp_path / "truncated.gguf").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.gguf").write_bytes(b"not a gguf file at all" * 10)
    for name in ("truncated.gguf", "garbage.gguf"):
        with pytest.raises(InputError, match="not a readable GGUF file"):
            open_gguf(tmp_path / name)
    with pytest.raises(InputError, match="GGUF file not found"):
        open_gguf(tmp_path / "missing.gguf")


class Wide(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.wide = torch.nn.Linear(512, 48)  # rows of 512: a K-quant
        self.narrow = torch.nn.Linear(96, 64)  # rows of 96: llama.cpp's fallback type


@pytest.mark.parametrize(
    ("quant_type", "fallback", "tolerance"),
    [
        ("Q6_K", "Q8_0", 0.03),
        ("Q5_K", "Q5_1", 0.05),
        ("Q4_K", "Q5_0", 0.1),
        ("Q3_K", "Q4_0", 0.2),
        ("Q2_K", "Q4_0", 0.35),
    ],
)
def test_k_quants_with_the_fallback_for_short_rows(tmp_path, quant_type, fallback, tolerance):
    import gguf

    model = Wide()
    stats = write_gguf(model, tmp_path / "k.gguf", quant_type)
    assert stats.quantized_tensors == 2 and stats.types[quant_type] == 1 and stats.types[fallback] == 1
    tensors = {t.name: t for t in open_gguf(tmp_path / "k.gguf").tensors}
    assert tensors["wide.weight"].tensor_type.name == quant_type
    assert tensors["narrow.weight"].tensor_type.name == fallback
    for name in ("wide", "narrow"):
        original = getattr(model, name).weight.detach().numpy()
        tensor = tensors[f"{name}.weight"]
        restored = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(original.shape)
        assert np.linalg.norm(restored - original) / np.linalg.norm(original) < tolerance


def test_original_layout_is_what_diffusers_converts_back(tmp_path):
    """An SDXL UNet written under original keys: diffusers' own LDM converter must give back every weight."""
    import gguf
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    from harness.pipelines.sdxl import build_tiny_sdxl

    unet = build_tiny_sdxl().unet
    stats = write_gguf(unet, tmp_path / "unet.gguf", "F16", layout="original")
    tensors = open_gguf(tmp_path / "unet.gguf").tensors
    assert all(t.name.startswith("model.diffusion_model.") for t in tensors)
    assert "model.diffusion_model.label_emb.0.0.weight" in {t.name for t in tensors}  # SDXL's size conditioning
    restored = {
        t.name: torch.from_numpy(
            np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(
                [int(d) for d in reversed(t.shape)]
            )
        )
        for t in tensors
    }
    converted = convert_ldm_unet_checkpoint(restored, dict(unet.config))
    state = unet.state_dict()
    assert set(converted) == set(state) and stats.quantized_tensors == 0
    for key, value in state.items():
        torch.testing.assert_close(converted[key], value, rtol=0, atol=2e-3 * float(value.abs().max()) + 1e-6)


def test_original_layout_is_refused_where_diffusers_cannot_load_it(tmp_path):
    from harness.pipelines.flux import build_tiny_flux

    with pytest.raises(InputError, match="splits the fused linear1 at width 3072"):
        write_gguf(build_tiny_flux().transformer, tmp_path / "t.gguf", "Q8_0", layout="original")
    with pytest.raises(InputError, match="no original key layout for AutoencoderKL"):
        write_gguf(build_tiny_flux().vae, tmp_path / "v.gguf", "Q8_0", layout="original")


def _field(reader, key):
    field = reader.get_field(key)
    value = field.parts[field.data[-1]]
    return str(value, encoding="utf-8") if key == "general.architecture" else int(value[0])


def test_header_names_the_architecture_community_loaders_accept(tmp_path):
    """ComfyUI-GGUF refuses a general.architecture outside its image list (flux, sd1, sdxl, sd3, ...);
    llama.cpp reads general.file_type and general.quantization_version."""
    import gguf

    from harness.pipelines.sd import build_tiny_sd
    from harness.pipelines.sdxl import build_tiny_sdxl

    comfy_image_archs = {"flux", "sd1", "sdxl", "sd3", "aura", "ltxv", "hyvid", "wan"}
    for build, expected in ((build_tiny_sd, "sd1"), (build_tiny_sdxl, "sdxl")):
        path = tmp_path / f"{expected}.gguf"
        write_gguf(build().unet, path, "Q4_K", policy="M", layout="original")
        reader = open_gguf(path)
        assert _field(reader, "general.architecture") == expected in comfy_image_archs
        assert _field(reader, "general.file_type") == int(gguf.LlamaFileType.MOSTLY_Q4_K_M)
        assert _field(reader, "general.quantization_version") == gguf.GGML_QUANT_VERSION
    write_gguf(Tiny(), tmp_path / "d.gguf", "Q8_0")  # diffusers' key names: not a layout those loaders read
    reader = open_gguf(tmp_path / "d.gguf")
    assert _field(reader, "general.architecture") == "harness-diffusers"
    assert _field(reader, "general.file_type") == int(gguf.LlamaFileType.MOSTLY_Q8_0)


def test_tensors_of_at_most_1024_elements_stay_f32(tmp_path):
    """ComfyUI-GGUF's convert.py: n_params <= 1024 -> F32; a Linear weight of 1024 elements is not quantized."""
    model = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.Linear(32, 33), torch.nn.Conv2d(16, 8, 3))
    write_gguf(model, tmp_path / "s.gguf", "Q8_0")
    types = {t.name: t.tensor_type.name for t in open_gguf(tmp_path / "s.gguf").tensors}
    assert types["0.weight"] == "F32"  # 32 x 32 = 1024
    assert types["1.weight"] == "Q8_0"  # 33 x 32 = 1056
    assert types["2.weight"] == "F16"  # 8 x 16 x 3 x 3 = 1152, not a Linear weight


@pytest.mark.parametrize("family", ["sd1", "sdxl", "sd3"])
def test_original_layout_keeps_the_embedders_and_final_layer_float(tmp_path, family):
    """As the community's files: input embedders, timestep/vector embeddings and the final layer stay float;
    the blocks' Linear weights take the file's type."""
    from harness.kinds.gguf.policy import KEEP_FLOAT
    from harness.pipelines.sd import build_tiny_sd
    from harness.pipelines.sd3 import build_tiny_sd3
    from harness.pipelines.sdxl import build_tiny_sdxl

    pipe = {"sd1": build_tiny_sd, "sdxl": build_tiny_sdxl, "sd3": build_tiny_sd3}[family]()
    module = pipe.transformer if family == "sd3" else pipe.unet
    write_gguf(module, tmp_path / "m.gguf", "Q8_0", layout="original")
    types = {
        t.name.removeprefix("model.diffusion_model."): t.tensor_type.name
        for t in open_gguf(tmp_path / "m.gguf").tensors
    }
    kept = {k: v for k, v in types.items() if k.startswith(KEEP_FLOAT[family])}
    weights = [
        k for k in kept if k.endswith(".weight") and k.split(".")[0] in ("time_embed", "t_embedder", "final_layer")
    ]
    assert weights and all(kept[k] in ("F16", "F32") for k in weights), kept
    assert "Q8_0" not in kept.values()
    assert sum(v == "Q8_0" for v in types.values()) > 0


@pytest.mark.parametrize("file_type", ["Q4_K_M", "Q4_0", "Q2_K", "BF16"])
def test_every_written_type_is_the_community_table(tmp_path, file_type):
    """The SD3 transformer in the original layout: every tensor's type as read back is the community's
    (gguf_policy.community_types) for that llama.cpp file type; the header says the same file type."""
    import gguf

    from harness.kinds.gguf.policy import community_types
    from harness.pipelines.sd3 import build_tiny_sd3

    module = build_tiny_sd3().transformer
    quant_type = {"Q4_K_M": "Q4_K", "Q2_K": "Q2_K"}.get(file_type, file_type)
    path = tmp_path / "t.gguf"
    write_gguf(module, path, quant_type, float_type="BF16", policy="community", layout="original")
    reader = open_gguf(path)
    written = {t.name: t.tensor_type.name for t in reader.tensors}
    shapes = {t.name: tuple(int(d) for d in reversed(t.shape)) for t in reader.tensors}
    assert written == community_types("sd3", shapes, file_type, float_type="BF16")
    assert _field(reader, "general.file_type") == int(getattr(gguf.LlamaFileType, f"MOSTLY_{file_type}"))
    if file_type != "BF16":
        assert len(set(written.values()) - {"F32", "BF16", "F16"}) >= 1


def test_bf16_float_storage_and_the_f16_fallback_for_short_k_rows(tmp_path):
    """convert.py stores a bf16 model's float tensors BF16; llama-quantize's image patch gives a K-quant whose rows
    are not a multiple of 256 F16 (the harness's uniform policy keeps its legacy fallback)."""
    import gguf

    model = torch.nn.Sequential(torch.nn.Linear(256, 96), torch.nn.Linear(96, 256), torch.nn.Conv2d(16, 32, 3))
    path = tmp_path / "m.gguf"
    write_gguf(model, path, "Q4_K", float_type="BF16", policy="S")
    tensors = {t.name: t for t in open_gguf(path).tensors}
    kinds = {name: t.tensor_type.name for name, t in tensors.items()}
    assert kinds == {
        **{"0.weight": "Q4_K", "1.weight": "F16", "2.weight": "BF16"},  # rows of 256, of 96, a convolution
        **dict.fromkeys(["0.bias", "1.bias", "2.bias"], "F32"),
    }
    restored = gguf.quants.dequantize(tensors["2.weight"].data, tensors["2.weight"].tensor_type)
    expected = model[2].weight.detach().to(torch.bfloat16).float().numpy().reshape(restored.shape)
    assert np.array_equal(restored, expected)
    write_gguf(model, path, "Q4_K")
    assert {t.name: t.tensor_type.name for t in open_gguf(path).tensors}["1.weight"] == "Q5_0"


def test_overrides_set_types_per_tensor_name_the_last_match_winning():
    from harness.kinds.gguf.file import planned_types

    shapes = {"blocks.0.to_v.weight": (64, 256), "blocks.0.to_q.weight": (64, 256), "blocks.0.norm.weight": (256,)}
    linear = {"blocks.0.to_v.weight", "blocks.0.to_q.weight"}
    plain = planned_types(shapes, linear, "sd1", "Q4_0")
    assert plain["blocks.0.to_v.weight"] == "Q4_0" and plain["blocks.0.norm.weight"] == "F32"
    mixed = planned_types(shapes, linear, "sd1", "Q4_0", overrides=(("*.to_v.weight", "Q8_0"), ("*.to_*", "Q5_0")))
    assert mixed["blocks.0.to_v.weight"] == "Q5_0" and mixed["blocks.0.to_q.weight"] == "Q5_0"
    kept = planned_types(
        shapes, linear, "sd1", "Q4_0", overrides=(("*.to_v.weight", "BF16"), ("*.norm.weight", "Q8_0"))
    )
    assert kept["blocks.0.to_v.weight"] == "BF16"
    assert kept["blocks.0.norm.weight"] == "F32"  # not a Linear weight: never quantized, whatever the pattern
