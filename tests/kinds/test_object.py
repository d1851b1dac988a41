"""kind = "object": a pipeline handed to harness.api, named, hashed by its weights and run as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import api
from harness.errors import InputError, Where


def test_an_unknown_object_is_refused_with_the_names_there_are():
    registry = api.registry_for({"mine": object()})
    with pytest.raises(
        InputError, match=r"suite.toml: configs.q.object: Unknown pipeline object 'min'. Did you mean: mine"
    ):
        registry.kinds["object"].parse({"object": "min"}, Where("suite.toml", "configs.q"), Path("."))


def test_its_cache_inputs_follow_the_weights_and_a_function_is_called_once():
    import torch

    calls = []

    def make():
        calls.append(1)
        return api.builtin("tiny-sd")

    registry = api.registry_for({"made": make})
    kind = registry.kinds["object"]
    options = kind.parse({"object": "made"}, Where("suite.toml", "configs.q"), Path("."))
    first = kind.cache_inputs(options, Path("."))
    assert kind.cache_inputs(options, Path(".")) == first and len(calls) == 1
    with torch.no_grad():
        next(kind.pipeline("made").unet.parameters()).add_(1.0)
    again = api.registry_for({"made": kind.pipeline("made")}).kinds["object"]
    assert again.cache_inputs(again.parse({"object": "made"}, Where("s.toml"), Path(".")), Path(".")) != first
