"""``compile``: its table, and torch.compile applied in place to a diffusers model."""

from __future__ import annotations

import pytest

from harness.errors import InputError, Where
from harness.kinds.speedup.compile import CompileOptions, compile_denoiser, read_compile

WHERE = Where("suite.toml", "configs.c")


def test_true_false_and_a_table():
    assert read_compile(True, WHERE, None) == CompileOptions()
    assert read_compile(False, WHERE, None) is None
    assert read_compile({"mode": "max-autotune", "scope": "blocks"}, WHERE, None) == CompileOptions(
        mode="max-autotune", scope="blocks"
    )
    with pytest.raises(InputError, match=r"configs\.c\.compile\.mode: Unknown value 'fast'"):
        read_compile({"mode": "fast"}, WHERE, None)
    with pytest.raises(InputError, match=r"configs\.c\.compile: expected true, false or a table"):
        read_compile("yes", WHERE, None)


def test_compiling_keeps_the_module_and_its_outputs_with_the_eager_backend():
    import torch
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    model = UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 8),
        layers_per_block=1,
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    ).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        before = model(x, 1).sample
        notes = compile_denoiser(model, CompileOptions(backend="eager"))
        after = model(x, 1).sample
    assert notes["module"] == "UNet2DModel" and notes["backend"] == "eager"
    assert torch.equal(before, after)  # the eager backend only traces: the same kernels, the same numbers
    assert model._compiled_call_impl is not None


def test_regional_compilation_needs_repeated_blocks():
    import torch

    with pytest.raises(InputError, match="declares no repeated blocks"):
        compile_denoiser(torch.nn.Linear(2, 2), CompileOptions(scope="blocks"))
