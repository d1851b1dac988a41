"""The world's FLUX, SD3, SDXL, Sana, PixArt-Σ and Wan architectures: a few CPU steps lower the loss, and what is saved
loads as diffusers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.world.families import world_archs
from harness.world.families.base import build_vae16, flux_shift, logit_normal_sigmas
from harness.world.families.sana import build_dcae
from harness.world.families.wan import build_wan_vae
from training import families as family_train
from training.world import Part


@pytest.mark.parametrize("name", ["flux", "sd3", "sdxl", "sana", "pixart", "wan"])
def test_losses_fall_and_the_pipeline_loads_with_plain_diffusers(name, tmp_path, monkeypatch):
    from diffusers import DiffusionPipeline

    losses: dict[str, list[float]] = {}
    real_loop = family_train._loop

    def recording(part, parameters, step_fn, label):
        values = losses.setdefault(label, [])

        def step(index):
            loss = step_fn(index)
            values.append(float(loss))
            return loss

        return real_loop(part, parameters, step, label)

    monkeypatch.setattr(family_train, "_loop", recording)
    vae = build_vae16(0)
    vae.register_to_config(scaling_factor=2.0, shift_factor=0.01)
    vae.save_pretrained(tmp_path / "_vae16")
    build_dcae(0).save_pretrained(tmp_path / "_dcae")
    build_wan_vae(0).save_pretrained(tmp_path / "_wan_vae")
    plan = family_train.FamilyPlan(
        out=tmp_path, device="cpu", dataset=8, archs={name: Part(40, 8, 2e-3, 300)}, evaluation_captions=2
    )
    log = family_train.train_arch(plan, name)
    values = losses[name]
    assert np.mean(values[-8:]) < np.mean(values[:8]), values
    arch = world_archs()[name]
    if arch.distill_fraction:
        assert log["distill"]["steps"] == 40 - log["train"]["steps"] and f"{name}-distill" in losses
    adherence = "motion_adherence" if arch.frames > 1 else "adherence"
    assert 0 <= log["evaluation"][adherence] <= 1 and log["evaluation"]["steps"] == 8
    if arch.frames > 1:  # the real clips of the same captions score full marks: the oracle is the world's
        assert log["evaluation"]["real_renders"]["motion_adherence"] == 1.0
    pipe = DiffusionPipeline.from_pretrained(tmp_path / name, torch_dtype=torch.float32, local_files_only=True)
    assert type(pipe).__name__ == arch.pipeline_class
    for component in arch.stored_float32:
        assert getattr(pipe, component).dtype == torch.float32
    if name == "sana":  # the shipped encoder has Gemma 2's residual range: float16 overflows, float32 is unchanged
        assert log["finish"]["float32_output_change"] < 1e-4 and not log["finish"]["float16_output_finite"]


def test_flow_sigmas_follow_the_shift_and_fluxs_resolution_rule():
    generator = torch.Generator().manual_seed(0)
    plain = logit_normal_sigmas(20000, 1.0, generator, "cpu")
    shifted = logit_normal_sigmas(20000, 3.0, torch.Generator().manual_seed(0), "cpu")
    assert abs(float(plain.median()) - 0.5) < 0.02  # sigmoid of a standard normal
    np.testing.assert_allclose(shifted.numpy(), (3 * plain / (1 + 2 * plain)).numpy(), rtol=1e-6)
    from harness.world.families.flux import SCHEDULER

    assert flux_shift(256, SCHEDULER) == pytest.approx(np.exp(0.5))  # FLUX.1's base shift at its base length
    assert flux_shift(4096, SCHEDULER) == pytest.approx(np.exp(1.15))


def test_flux_distillation_target_at_guidance_one_is_the_conditional_velocity(monkeypatch):
    """At g = 1, CFG's u + g (c - u) is c: the distilled model learns nothing new there."""
    arch = world_archs()["flux"]
    vae = build_vae16(0)
    pipe = arch.build(vae, 0)
    x0 = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    captions = ["a red circle on the left", "a blue square at the top"]
    monkeypatch.setattr("harness.world.families.flux.GUIDANCE_RANGE", (1.0, 1.0))
    teacher = pipe.transformer
    loss = arch.distill_loss(pipe, teacher, x0, captions, torch.Generator().manual_seed(1))
    assert float(loss) < 1e-10  # student and teacher are the same model, asked the same thing


@pytest.mark.parametrize("name", ["sana", "pixart"])
def test_a_caption_table_gives_what_the_pipeline_computes(name):
    """Each row, dropped or kept, matches the architecture's own conditioning of that caption batch."""
    arch = world_archs()[name]
    pipe = arch.build(build_dcae(0) if arch.vae == "dcae" else build_vae16(0), 0)
    captions = ["a red circle on the left", "a blue square at the top", "a red circle on the left"]
    table = family_train.CaptionTable(arch, pipe, captions, "cpu", batch=1)
    assert len(table) == 2
    chosen = ["a blue square at the top", "a red circle on the left", "a blue square at the top"]
    drop = torch.tensor([False, True, False])
    with torch.no_grad():
        expected = arch.conditioning(pipe, chosen, drop, "cpu")
    got = table.lookup(chosen, drop)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b.to(a.dtype), rtol=1e-5, atol=1e-5)


def test_frozen_text_trains_the_denoiser_alone(tmp_path):
    build_dcae(0).save_pretrained(tmp_path / "_dcae")
    build_wan_vae(0).save_pretrained(tmp_path / "_wan_vae")
    plan = family_train.FamilyPlan(
        out=tmp_path, device="cpu", dataset=8, archs={"sana": Part(6, 4, 2e-3, 300)}, evaluation_captions=2
    )
    arch = world_archs()["sana"]
    start = arch.build(build_dcae(0), plan.seed)
    family_train.train_arch(family_train.FamilyPlan(**{**plan.__dict__, "frozen_text": True}), "sana")
    from diffusers import DiffusionPipeline

    trained = DiffusionPipeline.from_pretrained(tmp_path / "sana", torch_dtype=torch.float32, local_files_only=True)
    # the encoder differs only by the finishing rescale, which touches the embeddings and post-norm gains alone
    trained_encoder = dict(trained.text_encoder.named_parameters())
    untouched = [
        (name, p) for name, p in start.text_encoder.named_parameters() if "embed" not in name and "post_" not in name
    ]
    assert len(untouched) > 10
    for name, parameter in untouched:
        torch.testing.assert_close(trained_encoder[name], parameter, rtol=0, atol=0, msg=name)
    moved = [
        float((a - b).abs().max())
        for a, b in zip(start.transformer.parameters(), trained.transformer.parameters(), strict=True)
    ]
    assert max(moved) > 1e-4


def test_an_autoencoder_already_trained_is_reused_or_with_vae_continue_trained_further(tmp_path):
    from diffusers import AutoencoderDC

    build_dcae(0).save_pretrained(tmp_path / "_dcae")
    saved = AutoencoderDC.from_pretrained(tmp_path / "_dcae").state_dict()

    def weights_changed() -> bool:
        now = AutoencoderDC.from_pretrained(tmp_path / "_dcae").state_dict()
        return any(not torch.equal(now[key], saved[key]) for key in saved)

    plan = family_train.FamilyPlan(out=tmp_path, device="cpu", dataset=8, vae=Part(2, 2, 1e-3, 60))
    assert family_train.fit_autoencoders(plan, ["dcae"]) == {"dcae": {"reused": str(tmp_path / "_dcae")}}
    assert not weights_changed()
    plan.vae_continue = True
    log = family_train.fit_autoencoders(plan, ["dcae"])["dcae"]
    assert log["continued"] == str(tmp_path / "_dcae") and log["steps"] == 2 and weights_changed()
