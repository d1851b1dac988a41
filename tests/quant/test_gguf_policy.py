"""llama.cpp's _S/_M/_L mixes: which tensor gets which type, by the rules of its image-model patch."""

from __future__ import annotations

import pytest

from harness.quant.gguf_policy import assign_types, mix_name, mix_problem

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
