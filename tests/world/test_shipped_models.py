"""The shipped shapes models: load offline with plain libraries, reproduce the references, and mean something."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.metrics.psnr import psnr_batch
from harness.samples import load_png
from harness.world.assets import evaluator_dir, generator_dir
from harness.world.evaluate import clip_scores, held_out_captions
from harness.world.scene import random_scene, render_batch
from harness.world.tokenizer import shapes_tokenizer
from tests.helpers import suite_head

ROOT = generator_dir().parents[3]


def test_generator_loads_with_plain_diffusers_and_reproduces_the_committed_references():
    from diffusers import StableDiffusionPipeline

    from harness.pipelines.sd import StableDiffusionFamily

    pipe = StableDiffusionPipeline.from_pretrained(generator_dir(), torch_dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    manifest = json.loads((ROOT / "reference_images" / "shapes" / "manifest.json").read_text())
    entry = manifest["images"][0]
    latents = StableDiffusionFamily().initial_latents(pipe, [entry["seed"]], 64, 64)
    with torch.no_grad():
        image = pipe(
            prompt=[entry["prompt"]], num_inference_steps=8, guidance_scale=5.0, latents=latents, output_type="np"
        ).images[0]
    generated = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    reference = load_png(ROOT / "reference_images" / "shapes" / entry["file"])
    assert psnr_batch([generated], [reference])[0] > 40  # batch composition and threads move it by ~1 level at most


def test_evaluator_scores_matching_captions_far_above_shuffled_ones():
    captions = held_out_captions(16)
    from harness.world.evaluate import _scene_for

    images = render_batch([_scene_for(c) for c in captions])
    matching = clip_scores(evaluator_dir(), images, captions)
    shuffled = clip_scores(evaluator_dir(), images, captions[3:] + captions[:3])
    assert matching.mean() > 70 and matching.mean() - shuffled.mean() > 40
    assert (matching > shuffled).mean() >= 0.9


def test_evaluator_tokenizer_is_the_world_tokenizer():
    import open_clip

    tokenizer = open_clip.get_tokenizer(f"local-dir:{evaluator_dir()}")
    caption = random_scene(1).caption()
    ids = tokenizer([caption])[0].tolist()
    expected = shapes_tokenizer()(caption).input_ids
    assert ids[: len(expected)] == expected


SUITE = (
    suite_head(
        "w",
        pipeline="builtin:shapes",
        prompts=[
            "a blue square in the center and a yellow star on the left",
            "a white star on the right and a yellow square at the top",
            "a purple square at the bottom and a yellow circle on the left",
        ],
        steps=8,
        size=64,
    )
    + """guidance = 5.0
[metrics]
psnr = {}
clip_score = {}
adherence = {}
[thresholds]
clip_score = { max_drop = 0.5 }
adherence = { min = 0.95 }
[configs.fp32]
[configs.damaged]
transform = "harness.world.controls:unet_noise_0_5"
[configs.flawed]
transform = "harness.world.controls:flawed_generator"
"""
)


def test_damage_and_the_flawed_model_are_caught_by_clip_and_adherence(write_suite, tmp_path):
    path = write_suite(SUITE, name="w")
    assert main(["bless", str(path)]) == 0
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out)]) == 1
    results = json.loads((out / "results.json").read_text())
    means = {c["name"]: {s["metric"]: s["mean"] for s in c["summaries"]} for c in results["configs"]}
    for bad in ("damaged", "flawed"):
        assert means[bad]["clip_score"] < means["fp32"]["clip_score"] - 5, means
        assert means[bad]["adherence"] < means["fp32"]["adherence"], means
    failed = {(c["config"], c["metric"]) for c in results["checks"] if c["status"] == "fail"}
    assert {("flawed", "clip_score"), ("flawed", "adherence"), ("damaged", "clip_score")} <= failed
    assert not any(config == "fp32" for config, _ in failed)


def test_adherence_refuses_prompts_outside_the_world(write_suite, capsys):
    path = write_suite(
        SUITE.replace('"a blue square in the center and a yellow star on the left"', '"a photo of a cat"'), name="w"
    )
    assert main(["validate", str(path)]) == 2
    assert "is not a shapes-world caption" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["shapes", "shapes-flawed"])
def test_builtin_world_pipelines_load(name):
    from harness.errors import Where
    from harness.generate.loading import load_pipeline
    from harness.plan.source import PipelineSource
    from harness.registry import build_registry

    loaded = load_pipeline(PipelineSource("builtin", name), Where("x"), build_registry())
    assert loaded.family.name == "sd" and loaded.pipe.unet.config.block_out_channels == [32, 64, 128]
    assert loaded.pipe.scheduler.config.prediction_type == ("v_prediction" if name == "shapes" else "epsilon")


@pytest.mark.parametrize("folder", ["generator", "flawed_generator"])
def test_packaged_folders_generate_with_plain_from_pretrained_defaults(folder):
    """No dtype argument at all: every component must load in one dtype (issue: fp16 text encoder vs fp32 UNet)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(generator_dir().parent / folder)
    pipe.set_progress_bar_config(disable=True)
    assert len({pipe.unet.dtype, pipe.vae.dtype, pipe.text_encoder.dtype}) == 1
    image = pipe("a red circle on the left", num_inference_steps=2, output_type="np").images[0]
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()


@pytest.mark.parametrize(("arch", "guidance"), [("flux", 3.5), ("sd3", 5.0), ("sdxl", 5.0), ("sana", 4.5)])
def test_family_worlds_draw_held_out_captions_and_follow_them(arch, guidance):
    """Each trained architecture loads with plain diffusers and draws what held-out captions name, where they name it."""
    from harness.world.assets import world_dir
    from harness.world.evaluate import generate
    from harness.world.families import world_archs
    from harness.world.oracle import adherence

    captions = held_out_captions(6)
    images = generate(world_dir(arch), captions, "cpu", 8, guidance, **world_archs()[arch].sample_kwargs())
    assert np.mean([adherence(i, c) for i, c in zip(images, captions, strict=True)]) >= 0.9
    matching = clip_scores(evaluator_dir(), images, captions)
    shuffled = clip_scores(evaluator_dir(), images, captions[2:] + captions[:2])
    assert matching.mean() - shuffled.mean() > 20  # the images depend on their captions


def test_sdxl_world_vae_overflows_float16_only_without_the_upcast():
    from diffusers import AutoencoderKL

    from harness.pipelines.sdxl import FP16_MAX
    from harness.world.assets import world_dir

    vae = AutoencoderKL.from_pretrained(world_dir("sdxl") / "vae", torch_dtype=torch.float32)
    assert vae.config.force_upcast
    latents = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    seen: list[float] = []
    vae.decoder.mid_block.resnets[0].conv1.register_forward_hook(lambda m, a, out: seen.append(float(out.abs().max())))
    with torch.no_grad():
        upcast = vae.decode(latents).sample
        broken = vae.half().decode(latents.half()).sample
    assert seen[0] > FP16_MAX and torch.isfinite(upcast).all()
    assert not torch.isfinite(broken.float()).all()


@pytest.mark.parametrize("arch", ["flux", "sd3", "sdxl", "sana"])
def test_family_worlds_load_with_no_dtype_given(arch):
    """Half-precision weights, float32 configs: diffusers' and transformers' defaults agree, so nothing mixes."""
    from diffusers import DiffusionPipeline

    from harness.world.assets import world_dir

    pipe = DiffusionPipeline.from_pretrained(world_dir(arch), local_files_only=True)
    dtypes = {name: module.dtype for name, module in pipe.components.items() if hasattr(module, "dtype")}
    assert set(dtypes.values()) == {torch.float32}, dtypes


def test_sana_world_encoder_overflows_float16_and_stays_finite_in_bf16():
    """The shipped Gemma 2 has a residual stream past float16's range: all-fp16 gives NaN, the bf16 recipe does not."""
    from harness.world.assets import load_world, world_dir
    from harness.world.families.sana import FLOAT16_MAX, instructed_probe, residual_peak

    pipe = load_world(world_dir("sana"))
    probe = instructed_probe(pipe.tokenizer, held_out_captions(4))
    encoder = pipe.text_encoder.eval()
    assert residual_peak(encoder, probe) > FLOAT16_MAX
    with torch.no_grad():
        reference = encoder(**probe).last_hidden_state
        bf16 = encoder.to(torch.bfloat16)(**probe).last_hidden_state.float()
        half = encoder.to(torch.float16)(**probe).last_hidden_state.float()
    assert torch.isfinite(bf16).all() and not torch.isfinite(half).all()
    assert float((bf16 - reference).abs().max()) < 0.2 * float(reference.std())  # bf16 only rounds (0.054 measured)
