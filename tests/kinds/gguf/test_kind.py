"""The gguf kind through diffusers' GGUF loader; the single_file kind; crash isolation."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.cli import main
from tests.helpers import KIND_SUITE_HEAD as HEAD
from tests.helpers import bless_and_run
from tests.helpers import configs_by_name as configs


def run(write_suite, tmp_path, body, name="g", files=None, extra=()):
    path = write_suite(body, name=name, files=files or {})
    out = tmp_path / f"run-{name}"
    code, results = bless_and_run(path, out, "--cache-dir", str(tmp_path / "cache"), *extra, bless_args=tuple(extra))
    return code, results, out


def test_gguf_types_load_through_diffusers_and_rank_by_bits(write_suite, tmp_path):
    body = HEAD.format(name="g", pipeline="builtin:tiny-sd")
    for quant in ("Q8_0", "Q4_0", "Q4_K", "BF16"):
        body += f'\n[configs.{quant.lower()}]\nkind = "gguf"\ntype = "{quant}"\ncomponents = ["unet"]\n'
    code, results, _ = run(write_suite, tmp_path, body)
    assert code == 0
    by_name = configs(results)
    psnr = {name: next(s["mean"] for s in c["summaries"]) for name, c in by_name.items()}
    assert psnr["q8_0"] > psnr["q4_0"] and psnr["bf16"] > psnr["q4_0"]
    assert psnr["q8_0"] > psnr["q4_k"] > 30  # rows of 256 in Q4_K, the rest in its Q5_0 fallback
    assert by_name["q4_k"]["notes"]["gguf"]["unet"]["tensor_types"] == {"Q4_K": 6, "Q5_0": 68, "F16": 47, "F32": 183}
    notes = by_name["q4_0"]["notes"]["gguf"]["unet"]
    assert notes["quantized_tensors"] == 74 and notes["float_tensors"] == 230
    assert notes["compression_vs_fp16"] > 1.0 and notes["load_s"] > 0 and notes["from_cache"] is False
    # regenerating (--no-cache) reuses the written GGUF files
    _, again, _ = run(write_suite, tmp_path, body, extra=["--no-cache"])
    assert configs(again)["q4_0"]["notes"]["gguf"]["unet"]["from_cache"] is True


def test_a_users_gguf_file_and_a_corrupt_one(write_suite, tmp_path, capsys):
    from harness.kinds.gguf.file import write_gguf
    from harness.pipelines.sd import build_tiny_sd

    (tmp_path / "suites").mkdir(exist_ok=True)
    write_gguf(build_tiny_sd().unet, tmp_path / "suites" / "user.gguf", "Q6_K")  # a K-quant file
    body = (
        HEAD.format(name="u", pipeline="builtin:tiny-sd")
        + '\n[configs.user]\nkind = "gguf"\nfile = "user.gguf"\ncomponents = ["unet"]\n'
    )
    code, results, _ = run(write_suite, tmp_path, body, name="u")
    assert code == 0 and configs(results)["user"]["notes"]["gguf"]["unet"]["tensor_types"]["Q6_K"] == 6
    data = (tmp_path / "suites" / "user.gguf").read_bytes()
    (tmp_path / "suites" / "user.gguf").write_bytes(data[: len(data) // 3])
    assert main(["validate", str(tmp_path / "suites" / "u.toml")]) == 2
    assert "not a readable GGUF file" in capsys.readouterr().err


def test_single_file_round_trip_and_lcm_audit(write_suite, tmp_path):
    body = HEAD.format(name="s", pipeline="builtin:tiny-sd-lcm")
    body += '\n[configs.sf_vae]\nkind = "single_file"\ncomponent = "vae"\n'
    body += '\n[configs.sf_unet]\nkind = "single_file"\ncomponent = "unet"\n'
    body += '\n[configs.bf16]\ndtype = "bfloat16"\n'
    # batch size 1: batched convolutions may differ in the last float bit with where their weights sit in memory
    code, results, out = run(write_suite, tmp_path, body, name="s", extra=["--batch-size", "1"])
    assert code == 1
    by_name = configs(results)
    vae = by_name["sf_vae"]
    assert vae["status"] == "ok" and next(s["mean"] for s in vae["summaries"]) == 100.0  # exact round trip
    assert vae["notes"]["single_file"]["audit"]["missing"] == []
    unet = by_name["sf_unet"]
    assert unet["status"] == "error" and "1 missing: time_embedding.cond_proj.weight" in unet["message"]
    assert unet["notes"]["single_file"]["audit"]["missing"] == ["time_embedding.cond_proj.weight"]
    assert by_name["bf16"]["status"] == "ok"
    error = ET.parse(out / "junit.xml").getroot().find(".//error")
    assert "cond_proj" in error.get("message")


def test_loader_crash_is_an_error_row_and_the_rest_runs(write_suite, tmp_path):
    transforms = {
        "forge_like.py": """
import torch


def byte_swap(pipe):
    # what a shared weight swap does in Forge: assign a raw ByteTensor where a Parameter lives
    layer = pipe.unet.conv_in
    layer.weight = layer.weight.data.to(torch.uint8)
    return pipe
"""
    }
    body = HEAD.format(name="c", pipeline="builtin:tiny-sd")
    body += (
        '\n[configs.q4_0]\nkind = "gguf"\ntype = "Q4_0"\ncomponents = ["unet"]\ntransform = "forge_like:byte_swap"\n'
    )
    body += '\n[configs.q8_0]\nkind = "gguf"\ntype = "Q8_0"\ncomponents = ["unet"]\n'
    code, results, out = run(write_suite, tmp_path, body, name="c", files=transforms)
    assert code == 1
    crashed = configs(results)["q4_0"]
    assert crashed["status"] == "error"
    assert "cannot assign 'torch.ByteTensor' as parameter 'weight'" in crashed["message"]
    assert configs(results)["q8_0"]["status"] == "ok"
    assert "cannot assign &#39;torch.ByteTensor&#39; as parameter" in (out / "report.html").read_text()
    assert "ByteTensor" in ET.parse(out / "junit.xml").getroot().find(".//error").get("message")


def test_an_sdxl_unet_in_the_original_layout_as_a_q4_k_m_mix(write_suite, tmp_path, capsys):
    body = HEAD.format(name="xl", pipeline="builtin:tiny-sdxl")
    body += (
        '\n[configs.q4_k_m]\nkind = "gguf"\ntype = "Q4_K"\npolicy = "M"\nlayout = "original"\ncomponents = ["unet"]\n'
    )
    code, results, _ = run(write_suite, tmp_path, body, name="xl")
    assert code == 0
    config = configs(results)["q4_k_m"]
    # attention V and FFN-down weights go up to Q6_K, the rest stay Q4_K; a K-quant whose rows are not a multiple
    # of 256 falls back to F16, as llama-quantize's image patch does. In the tiny UNet only the FFN-down weights
    # have rows of 256, so they are the only quantized tensors
    types = config["notes"]["gguf"]["unet"]["tensor_types"]
    assert "Q6_K" in types and not {"Q4_K", "Q8_0", "Q5_0"} & set(types), types
    assert config["notes"]["gguf"]["unet"]["file"].endswith("unet-Q4_K_M.gguf")
    assert next(s["mean"] for s in config["summaries"]) > 35
    bad = HEAD.format(name="bad", pipeline="builtin:tiny-sdxl")
    bad += '\n[configs.q8_m]\nkind = "gguf"\ntype = "Q8_0"\npolicy = "M"\ncomponents = ["unet"]\n'
    assert main(["validate", str(write_suite(bad, name="bad"))]) == 2
    assert "configs.q8_m.policy" in capsys.readouterr().err


def test_an_sd3_transformer_in_the_original_layout_loads_through_diffusers(write_suite, tmp_path):
    body = HEAD.format(name="sd3", pipeline="builtin:tiny-sd3")
    body += '\n[configs.q8_0]\nkind = "gguf"\ntype = "Q8_0"\nlayout = "original"\ncomponents = ["transformer"]\n'
    code, results, _ = run(write_suite, tmp_path, body, name="sd3")
    config = configs(results)["q8_0"]
    assert code == 0 and config["status"] == "ok"
    assert next(s["mean"] for s in config["summaries"]) > 45
    assert config["notes"]["gguf"]["transformer"]["tensor_types"]["Q8_0"] > 0


def test_single_file_transformers_sd3_loads_and_a_narrow_flux_says_why(write_suite, tmp_path):
    body = HEAD.format(name="sft", pipeline="builtin:tiny-sd3")
    body += '\n[configs.sf]\nkind = "single_file"\ncomponent = "transformer"\n'
    code, results, _ = run(write_suite, tmp_path, body, name="sft")
    config = configs(results)["sf"]
    assert code == 0 and next(s["mean"] for s in config["summaries"]) >= 99  # a lossless round trip
    assert config["notes"]["single_file"]["audit"]["missing"] == []
    flux = HEAD.format(name="sff", pipeline="builtin:tiny-flux")
    flux += '\n[configs.sf]\nkind = "single_file"\ncomponent = "transformer"\n'
    code, results, _ = run(write_suite, tmp_path, flux, name="sff")
    assert code == 1 and "splits the fused linear1 at width 3072" in configs(results)["sf"]["message"]
