"""The bitsandbytes kind: where it runs, and the configuration it hands to the libraries' loaders."""

from __future__ import annotations

import importlib.util

import pytest

from harness.errors import Where
from harness.kinds.bitsandbytes import BitsAndBytesKind, quantization_config

HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


def parsed(table, tmp_path):
    return BitsAndBytesKind().parse(table, Where(tmp_path / "suite.toml", "configs.c"), tmp_path)


def test_it_is_skipped_with_the_reason_where_it_cannot_run(tmp_path):
    options = parsed({"components": ["transformer"]}, tmp_path)
    reason = BitsAndBytesKind().unavailable(options, "cpu")
    if HAS_BNB:
        assert reason is not None and "needs a CUDA GPU" in reason
    else:
        assert reason == "bitsandbytes is not installed (pip install bitsandbytes)"


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed")
@pytest.mark.parametrize("library", ["diffusers", "transformers"])
def test_the_modes_become_the_libraries_own_configs(library, tmp_path):
    import torch

    nf4 = quantization_config(parsed({"components": ["x"], "double_quant": True}, tmp_path).extra, "bfloat16", library)
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4" and nf4.bnb_4bit_use_double_quant
    assert nf4.bnb_4bit_compute_dtype == torch.bfloat16
    int8 = quantization_config(parsed({"components": ["x"], "mode": "int8"}, tmp_path).extra, "float16", library)
    assert int8.load_in_8bit and not int8.load_in_4bit
