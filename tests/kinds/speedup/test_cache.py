"""diffusers' step caches as a configuration's ``cache`` table: parsing, identity, and what each hook does to a real
FLUX-architecture transformer (the shapes world's)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness import options
from harness.errors import InputError, Where
from harness.kinds.base import jsonable
from harness.kinds.speedup.cache import HOOKS, enable, read_cache

WHERE = Where("suite.toml", "configs.c")


def test_a_cache_table_reads_the_hook_and_its_declared_keys():
    cache = read_cache({"hook": "taylorseer", "cache_interval": 3}, WHERE, None)
    assert cache.hook == "taylorseer" and cache.settings.cache_interval == 3
    assert cache.settings.disable_cache_before_step == 3  # diffusers' default
    assert cache.describe() == "taylorseer (cache_interval=3)"


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({}, "configs.c.cache.hook: missing; one of first_block"),
        ({"hook": "first_blok"}, "Unknown cache hook 'first_blok'. Did you mean: first_block?"),
        ({"hook": "first_block", "interval": 2}, "configs.c.cache.interval"),
        ({"hook": "first_block", "threshold": -1}, "configs.c.cache.threshold: must be >= 0"),
        ({"hook": "faster", "spatial_attention_timestep_skip_range": [600, 100]}, "low 600 must be below high 100"),
    ],
)
def test_a_bad_cache_table_names_the_key(table, words):
    with pytest.raises(InputError) as caught:
        read_cache(table, WHERE, None)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("hook", "key"), [(hook, key) for hook, spec in HOOKS.items() for key in options.keys(spec.declaration)]
)
def test_every_hook_key_reaches_the_identity(hook, key):
    """The options' JSON is the identity's; each key of each hook, changed, must change it."""
    declaration = HOOKS[hook].declaration
    field = next(f for f in dataclasses.fields(declaration) if f.name == key)
    default = field.default
    if isinstance(default, bool):
        other = not default
    elif isinstance(default, tuple):
        other = [default[0] - 1, default[1]] if default else [1.0, 0.9]
    elif default is None or isinstance(default, int):
        other = (default or 0) + 2
    else:
        other = default / 2
    base = read_cache({"hook": hook}, WHERE, None)
    changed = read_cache({"hook": hook, key: other}, WHERE, None)
    assert jsonable(base) != jsonable(changed)


@pytest.fixture(scope="module")
def world():
    import torch

    from harness import api

    pipe = api.builtin("shapes-flux")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(torch.bfloat16)


def generate(pipe):
    import torch

    return pipe(
        prompt=["a red circle on the left", "a blue square at the top"],
        num_inference_steps=8,
        guidance_scale=3.5,
        height=64,
        width=64,
        generator=[torch.Generator().manual_seed(seed) for seed in (0, 1)],
        output_type="np",
    ).images


@pytest.fixture(scope="module")
def plain(world):
    return generate(world)


@pytest.mark.parametrize(
    ("table", "changes"),
    [
        ({"hook": "first_block", "threshold": 0.0}, False),  # never reuses: the same computation
        ({"hook": "first_block", "threshold": 0.5}, True),
        ({"hook": "taylorseer", "cache_interval": 2, "disable_cache_before_step": 2}, True),
        ({"hook": "pyramid_attention_broadcast"}, True),
        ({"hook": "faster"}, True),
        ({"hook": "sea"}, False),  # FluxPipeline passes no step or sigma: SeaCache runs fail-open
    ],
)
def test_each_hook_runs_on_the_flux_transformer_and_changes_what_it_should(world, plain, table, changes):
    cache = read_cache(table, WHERE, None)
    notes = enable(world.transformer, cache, world, 8, lambda: None)
    try:
        images = generate(world)
    finally:
        world.transformer.disable_cache()
    assert notes["hook"] == table["hook"]
    assert np.isfinite(images).all()
    assert bool(np.abs(images - plain).max() > 0) == changes


def test_magcache_without_ratios_calibrates_them_on_one_generation(world, plain):
    calls = []
    notes = enable(
        world.transformer, read_cache({"hook": "mag"}, WHERE, None), world, 8, lambda: calls.append(generate(world))
    )
    try:
        assert len(calls) == 1 and len(notes["calibrated_mag_ratios"]) == 8
        assert notes["calibrated_mag_ratios"][0] == pytest.approx(1.0)
        assert np.isfinite(generate(world)).all()
    finally:
        world.transformer.disable_cache()
    # the calibration pass computed every step: it made the plain images
    assert np.abs(calls[0] - plain).max() == 0


def test_a_denoiser_without_cache_support_is_refused_with_the_reason():
    import torch

    with pytest.raises(InputError) as caught:
        enable(torch.nn.Linear(2, 2), read_cache({"hook": "first_block"}, WHERE, None), object(), 8, lambda: None)
    assert "Linear has no diffusers step-cache support" in str(caught.value)
