"""A few training steps on CPU: the generator's and the evaluator's losses go down."""

from __future__ import annotations

import numpy as np

from training import world as train
from training.world import Part, Plan, hard_negative


def test_generator_and_evaluator_losses_decrease(tmp_path, monkeypatch):
    losses: dict[str, list[float]] = {}
    real_loop = train._loop

    def recording(part, parameters, step_fn, label):
        values = []

        def step(index):
            loss = step_fn(index)
            values.append(float(loss))
            return loss

        result = real_loop(part, parameters, step, label)
        losses[label] = values
        return result

    monkeypatch.setattr(train, "_loop", recording)
    plan = Plan(
        out=tmp_path,
        device="cpu",
        dataset=64,
        vae=Part(25, 8, 2e-3, 120),
        generator=Part(40, 8, 2e-3, 120),
        flawed=Part(2, 4, 1e-3, 60),
        evaluator=Part(40, 16, 2e-3, 120),
    )
    train.run_part(plan, "vae")
    train.run_part(plan, "generator")
    train.run_part(plan, "evaluator")
    for label in ("vae", "generator", "evaluator"):
        values = losses[label]
        assert np.mean(values[-8:]) < np.mean(values[:8]), (label, values)
    assert (tmp_path / "generator" / "model_index.json").is_file()
    assert (tmp_path / "evaluator" / "open_clip_config.json").is_file()


def test_hard_negatives_change_exactly_what_they_claim():
    rng = np.random.default_rng(0)
    caption = "a red circle on the left and a blue square at the top"
    negatives = {hard_negative(caption, rng) for _ in range(50)}
    assert caption not in negatives and len(negatives) > 10
    assert "a blue circle on the left and a red square at the top" in negatives  # colours swapped


def test_a_video_vae_is_fitted_on_clips_and_given_a_mean_and_std_per_channel(tmp_path):
    """Wan's VAE keeps its latent statistics per channel: normalising with them gives each channel mean 0, std 1."""
    import torch
    from diffusers import AutoencoderKLWan

    from harness.world.families.wan import LATENT_CHANNELS, WanWorld, build_wan_vae
    from training.world import clip_dataset, encode_mean, fit_vae

    clips, captions = clip_dataset(6, 0, "cpu")
    assert tuple(clips.shape) == (6, 3, 9, 64, 64) and clips.dtype == torch.uint8 and len(captions) == 6
    log = fit_vae(build_wan_vae(0), clips, Part(2, 2, 1e-3, 60), tmp_path / "_wan_vae", 0, object_weight=10.0)
    assert set(log["colour_psnr_db"]) <= {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"}
    vae = AutoencoderKLWan.from_pretrained(tmp_path / "_wan_vae")
    assert len(vae.config.latents_mean) == len(vae.config.latents_std) == LATENT_CHANNELS
    with torch.no_grad():
        latents = encode_mean(vae, clips.float() / 127.5 - 1.0)
    normal = WanWorld().normalise(vae, latents).transpose(0, 1).reshape(LATENT_CHANNELS, -1)
    assert tuple(latents.shape[2:]) == (3, 16, 16)
    assert normal.mean(dim=1).abs().max() < 1e-3 and (normal.std(dim=1) - 1).abs().max() < 1e-3


def test_the_step_probe_leaves_out_the_slow_first_steps(monkeypatch):
    """Fitted to a budget, the count comes from steps 10-40: a GPU's slow first steps must not halve it."""
    import torch

    clock = [0.0]
    monkeypatch.setattr(train.time, "perf_counter", lambda: clock[0])
    weight = torch.nn.Parameter(torch.ones(1))

    def step(index: int):
        clock[0] += 0.05 if index < 10 else 0.005  # ten slow warm-up steps, then 5 ms a step
        return (weight * 1.0).sum()

    log = train._loop(Part(0, 1, 1e-3, 2.0), [weight], step, "probe")
    # after 40 steps 0.65 s have gone; the other 1.35 s hold 270 steps of 5 ms (timed from step 0: 100 in all)
    assert 305 <= log["planned_steps"] <= 310 and log["steps"] == log["planned_steps"]
