"""The fault controls change exactly what they claim, on every family's layout, checked against the untouched model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import controls
from harness.pipelines.flux import build_tiny_flux
from harness.pipelines.sd import build_tiny_sd
from harness.pipelines.sd3 import build_tiny_sd3
from harness.pipelines.sdxl import build_tiny_sdxl

BUILDERS = {"sd": build_tiny_sd, "sdxl": build_tiny_sdxl, "sd3": build_tiny_sd3, "flux": build_tiny_flux}


def _weights(module):
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_attention_2bit_rounds_only_the_attention_projections(family):
    pipe = BUILDERS[family]()
    denoiser = controls.denoiser_of(pipe)
    before = _weights(denoiser)
    controls.attention_2bit(pipe)
    after = _weights(denoiser)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    projections = {name for name in before if controls.ATTENTION_PROJECTIONS.search(name.removesuffix(".weight"))}
    assert changed and changed <= projections, sorted(changed - projections)
    for name in changed:
        rows = after[name].reshape(after[name].shape[0], -1)
        assert max(len(torch.unique(row)) for row in rows) <= 4  # four levels per output row


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_timestep_embedding_zeroed_zeroes_one_layer(family):
    pipe = BUILDERS[family]()
    denoiser = controls.denoiser_of(pipe)
    before = _weights(denoiser)
    controls.timestep_embedding_zeroed(pipe)
    after = _weights(denoiser)
    changed = sorted(name for name in before if not torch.equal(before[name], after[name]))
    assert [name.rsplit(".", 1)[0] for name in changed] == [changed[0].rsplit(".", 1)[0]] * len(changed)
    assert changed[0].rsplit(".", 2)[-2] == "linear_1" and "time" in changed[0]
    assert all(float(after[name].abs().max()) == 0 for name in changed)


def test_wrong_sampler_shift_changes_the_schedule_the_way_conversions_do():
    from diffusers import EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    from harness.world.families.flux import SCHEDULER

    class Pipe:
        def __init__(self, scheduler):
            self.scheduler = scheduler

    flux = controls.wrong_sampler_shift(Pipe(FlowMatchEulerDiscreteScheduler(**SCHEDULER))).scheduler
    assert not flux.config.use_dynamic_shifting and flux.config.shift == 3.0  # FLUX.1-dev's static fallback
    sd3 = controls.wrong_sampler_shift(Pipe(FlowMatchEulerDiscreteScheduler(shift=3.0))).scheduler
    assert sd3.config.shift == 1.0
    trailing = EulerDiscreteScheduler(timestep_spacing="trailing")
    leading = controls.wrong_sampler_shift(Pipe(trailing)).scheduler
    trailing.set_timesteps(8)
    leading.set_timesteps(8)
    assert leading.config.timestep_spacing == "leading"
    assert float(trailing.timesteps[0]) == 999 and float(leading.timesteps[0]) < 999
    wan = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    unshifted = controls.wrong_sampler_shift(Pipe(wan)).scheduler
    assert unshifted.config.flow_shift == 1.0 and unshifted.config.timestep_spacing == wan.config.timestep_spacing
    wan.set_timesteps(8)
    unshifted.set_timesteps(8)
    assert float(unshifted.sigmas[1]) < float(wan.sigmas[1])  # shift 3 keeps more noise early in the schedule
    # a scheduler built without timestep_spacing lists it in _use_default_values, and from_config used to reset it:
    # the control changed nothing on schedulers built in code (found by tests/test_conformance.py)
    default_spaced = controls.wrong_sampler_shift(Pipe(EulerDiscreteScheduler())).scheduler
    assert default_spaced.config.timestep_spacing == "trailing"


@pytest.mark.parametrize(("family", "ratio"), [("sdxl", 0.18215 / 0.13025), ("sd3", 1.5305 / 0.3611)])
def test_vae_scaling_wrong_by_a_neighbouring_familys_factor(family, ratio):
    pipe = BUILDERS[family]()
    scaling = pipe.vae.config.scaling_factor
    controls.vae_scaling_wrong(pipe)
    assert pipe.vae.config.scaling_factor == pytest.approx(scaling * ratio)


@pytest.mark.parametrize("family", ["sd", "sdxl", "sd3", "flux"])
def test_text_embeddings_x4_multiplies_what_the_denoiser_is_given(family):
    pipe = BUILDERS[family]()
    prompt = ["a red circle on the left"]

    def encoded():
        with torch.no_grad():
            if family == "sd":
                return [pipe.encode_prompt(prompt, "cpu", 1, False)[0]]
            if family == "sdxl":
                embeds, _, pooled, _ = pipe.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=False)
                return [embeds, pooled]
            if family == "sd3":
                embeds, _, pooled, _ = pipe.encode_prompt(
                    prompt, None, None, device="cpu", do_classifier_free_guidance=False, max_sequence_length=16
                )
                return [embeds, pooled]
            embeds, pooled, _ = pipe.encode_prompt(prompt, None, device="cpu", max_sequence_length=16)
            return [embeds, pooled]

    before = encoded()
    controls.text_embeddings_x4(pipe)
    for plain, amplified in zip(before, encoded()):
        np.testing.assert_allclose(amplified.numpy(), 4 * plain.numpy(), rtol=1e-5, atol=1e-6)


def test_the_timestep_embedding_control_finds_wans_layer():
    from harness.controls import timestep_embedding_zeroed
    from harness.pipelines.wan import build_tiny_wan

    pipe = timestep_embedding_zeroed(build_tiny_wan())
    layer = pipe.transformer.condition_embedder.time_embedder.linear_1
    assert not layer.weight.any() and not layer.bias.any()


def test_noisy_quarter_of_images_ruins_every_fourth_image_whatever_the_batch():
    import torch

    class Output:
        def __init__(self, sample):
            self.sample = sample

    class Vae:
        def decode(self, latents, return_dict=True):
            return (latents.clone(),) if not return_dict else Output(latents.clone())

    class Pipe:
        def __init__(self):
            self.vae = Vae()

    def decoded(batches):
        pipe = controls.noisy_quarter_of_images(Pipe())
        return torch.cat([pipe.vae.decode(torch.zeros(size, 3, 4, 4), return_dict=False)[0] for size in batches])

    one_batch, in_ones = decoded([8]), decoded([1] * 8)
    ruined = [i for i in range(8) if one_batch[i].abs().sum() > 0]
    assert ruined == [3, 7] == [i for i in range(8) if in_ones[i].abs().sum() > 0]
    assert 0.05 < float(one_batch[3].std()) < 0.15  # about 26 dB against a clean image
