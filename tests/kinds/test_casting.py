"""Mixed precision: the plain cast fails in SD, boundary casts fix it and are logged."""

from __future__ import annotations

import pytest
import torch

from harness.kinds.casting import CastLog, Precision, apply_precision, cast_component
from harness.pipelines.sd import StableDiffusionFamily, build_tiny_sd


def _generate(pipe, family=StableDiffusionFamily()):
    latents = family.initial_latents(pipe, [0], 32, 32)
    return pipe(
        prompt=["a red circle"],
        num_inference_steps=2,
        guidance_scale=3.0,
        height=32,
        width=32,
        latents=latents,
        output_type="np",
    ).images


@pytest.fixture(scope="module")
def tiny_sd():
    pipe = build_tiny_sd()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _copy(pipe):
    from harness.kinds.pipeline import copy_pipeline

    return copy_pipeline(pipe)


def test_plain_mixed_cast_fails_in_sd(tiny_sd):
    pipe = _copy(tiny_sd)
    pipe.unet.to(torch.float16)
    pipe.vae.to(torch.bfloat16)
    pipe.text_encoder.to(torch.bfloat16)
    with pytest.raises(RuntimeError, match="dtype|same type"):
        _generate(pipe)


def test_boundary_casts_make_mixed_sd_run_and_are_logged(tiny_sd):
    pipe = _copy(tiny_sd)
    log = CastLog()
    notes = apply_precision(pipe, Precision("float16", (("text_encoder", "bfloat16"), ("vae", "bfloat16"))), log)
    assert notes["component_dtypes"] == {"unet": "float16", "vae": "bfloat16", "text_encoder": "bfloat16"}
    images = _generate(pipe)
    assert images.shape == (1, 32, 32, 3) and torch.isfinite(torch.from_numpy(images)).all()
    lines = log.lines()
    assert any(line.startswith("unet: bfloat16 -> float16") for line in lines), lines
    assert any(line.startswith("vae.post_quant_conv: float16 -> bfloat16") for line in lines), lines


def test_uniform_precision_installs_no_hooks(tiny_sd):
    pipe = _copy(tiny_sd)
    notes = apply_precision(pipe, Precision("bfloat16"), CastLog())
    assert "boundary_casts" not in notes
    assert not pipe.unet._forward_pre_hooks
    assert pipe.unet.dtype == torch.bfloat16 and pipe.vae.dtype == torch.bfloat16


def test_copies_are_isolated(tiny_sd):
    first = _copy(tiny_sd)
    apply_precision(first, Precision("float16", (("vae", "bfloat16"),)), CastLog())
    second = _copy(tiny_sd)
    assert second.unet.dtype == torch.float32 and not second.unet._forward_pre_hooks
    assert tiny_sd.unet.dtype == torch.float32


def test_unknown_component_is_an_input_error(tiny_sd):
    from harness.errors import InputError

    with pytest.raises(InputError, match="Unknown component 'transformer'"):
        apply_precision(_copy(tiny_sd), Precision("float16", (("transformer", "bfloat16"),)), CastLog())


def test_keep_in_fp32_modules_stay_float32():
    class Block(torch.nn.Module):
        _keep_in_fp32_modules = ["norm"]

        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)
            self.norm = torch.nn.LayerNorm(4)

    block = Block()
    kept = cast_component(block, "float16")
    assert kept == ["norm"] and block.norm.weight.dtype == torch.float32 and block.proj.weight.dtype == torch.float16
    assert cast_component(Block(), "float32") == []


def test_boundary_casts_keep_list_arguments_the_same_object():
    """A list argument may be a cache the module fills for its caller (the Wan VAE's feat_cache): casting its
    tensors must not replace the list (a copy lost what the decoder wrote: 3 frames decoded instead of 9)."""
    import torch

    from harness.kinds.casting import CastLog, install_boundary_casts

    class Cached(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(2, dtype=torch.bfloat16))

        def forward(self, x, cache):
            cache.append(x.dtype)
            return x

    module = Cached()
    install_boundary_casts({"vae": module}, CastLog())
    cache = [torch.zeros(2, 2)]
    module(torch.zeros(2, 2), cache)
    assert cache[0].dtype == torch.bfloat16 and cache[-1] == torch.bfloat16


def test_a_child_holding_float32_modules_beside_half_ones_casts_for_itself():
    """Wan in fp16 with its text encoder and VAE in bf16: the transformer's condition embedder holds the timestep
    embedder (kept in float32) beside the fp16 text embedder. A boundary cast to its first parameter's dtype fed
    float32 into fp16 layers ("mat1 and mat2 must have the same dtype"); a child of mixed dtypes gets no cast."""
    from harness.kinds.casting import uniform_dtype
    from harness.pipelines.wan import build_tiny_wan

    pipe = build_tiny_wan()
    pipe.set_progress_bar_config(disable=True)
    log = CastLog()
    apply_precision(pipe, Precision("float16", (("text_encoder", "bfloat16"), ("vae", "bfloat16"))), log)
    assert uniform_dtype(pipe.transformer.condition_embedder) is None
    assert uniform_dtype(pipe.transformer.condition_embedder.text_embedder) == torch.float16
    frames = pipe(
        "a red ball", num_inference_steps=2, height=32, width=32, num_frames=5, max_sequence_length=16, output_type="np"
    ).frames
    assert frames.shape == (1, 5, 32, 32, 3) and torch.isfinite(torch.as_tensor(frames)).all()
