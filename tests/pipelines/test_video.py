"""The video families (Wan 2.1, LTX-Video): tiny built-ins through diffusers' real pipelines, clips stored as
frames stacked top to bottom, and what the harness refuses."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness.errors import InputError
from harness.pipelines.family import Family, VideoFamily
from harness.registry import build_registry


def test_video_families_are_registered_with_their_pipeline_classes(registry):
    families = registry.families
    assert {"wan", "ltx"} <= set(families)
    assert registry.family_for_class("WanPipeline").name == "wan"
    assert registry.family_for_class("LTXPipeline").name == "ltx"
    assert families["wan"].video and not families["sd"].video


def test_a_clip_becomes_its_frames_stacked_top_to_bottom():
    clips = np.random.default_rng(0).random((2, 5, 4, 6, 3), dtype=np.float32)
    stacked = VideoFamily().images(SimpleNamespace(frames=clips))
    assert stacked.shape == (2, 20, 6, 3)
    for frame in range(5):
        np.testing.assert_array_equal(stacked[1, 4 * frame : 4 * frame + 4], clips[1, frame])
    with pytest.raises(RuntimeError, match=r"expected \(N, F, H, W, 3\)"):
        VideoFamily().images(SimpleNamespace(frames=clips[0]))
    assert VideoFamily().frame_kwargs(9) == {"num_frames": 9} and Family().frame_kwargs(9) == {}


@pytest.mark.parametrize(("name", "pipeline_class"), [("tiny-wan", "WanPipeline"), ("tiny-ltx", "LTXPipeline")])
def test_tiny_video_pipelines_are_deterministic_real_diffusers_pipelines(name, pipeline_class):
    import torch

    builtin = build_registry().builtins[name]
    first, second = builtin.build(), builtin.build()
    assert type(first).__name__ == pipeline_class
    for key, tensor in first.transformer.state_dict().items():
        assert torch.equal(tensor, second.transformer.state_dict()[key]), key
    family = builtin.family()
    output = first(
        prompt=["a red ball", "a blue cube"],
        num_inference_steps=2,
        height=32,
        width=32,
        generator=[torch.Generator().manual_seed(seed) for seed in (0, 1)],
        output_type="np",
        **family.call_kwargs(),
        **family.frame_kwargs(9),
    )
    clips = family.images(output)
    assert clips.shape == (2, 9 * 32, 32, 3) and np.isfinite(clips).all()
    assert not np.allclose(clips[:, :32], clips[:, -32:])  # frames differ: a clip, not one image repeated


def test_clips_need_a_video_family(write_suite, tmp_path, registry):
    """Refused where the family is known from the suite (a built-in, or family = ...), naming the video families; a
    folder's family is known once it loads, and its configurations are input errors then."""
    from dataclasses import replace

    from harness.generate.generator import plan
    from harness.generate.workbench import workbench
    from harness.plan.suite import load_suite

    body = (
        'name = "v"\npipeline = "builtin:tiny-sd"\nreference = "fp32"\nprompts = ["a"]\nseeds = [0]\nsteps = 1\n'
        "width = 32\nheight = 32\nframes = 5\n[configs.fp32]\n"
    )
    with pytest.raises(InputError) as caught:
        load_suite(write_suite(body, name="v"), registry)
    assert "frames: frames = 5: the 'sd' family makes images; clips need a video family (ltx, wan)" in str(caught.value)
    suite = load_suite(write_suite(body.replace("frames = 5", "frames = 1"), name="v"), registry)
    suite = replace(suite, generation=replace(suite.generation, frames=5))  # as a folder whose family loads later
    bench = workbench(suite, registry, "cpu", tmp_path / "cache", tmp_path)
    result = bench.generator.generate(
        suite.config("fp32"), plan(suite, "fp32"), bench.context, tmp_path / "i", tmp_path, None, lambda n: None
    )
    assert result.status == "error" and result.error_type == "input"
    assert "'sd' family makes images; clips need a video family" in result.message


def test_frames_must_be_positive(write_suite):
    from harness.plan.suite import load_suite

    body = 'name = "v"\npipeline = "builtin:tiny-wan"\nreference = "fp32"\nprompts = ["a"]\nseeds = [0]\nframes = 0\n'
    with pytest.raises(InputError, match="frames") as caught:
        load_suite(write_suite(body + "[configs.fp32]\n", name="v"), build_registry())
    assert "must be >= 1" in str(caught.value)
