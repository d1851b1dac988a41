"""``attention_backend``: the offered names are diffusers' own, and setting one never leaks into the next model."""

from __future__ import annotations

import pytest

from harness.kinds.speedup.attention import BACKENDS, set_backend, unavailable


def test_every_offered_backend_is_one_diffusers_knows():
    from diffusers.models.attention_dispatch import AttentionBackendName

    assert set(BACKENDS) <= {member.value for member in AttentionBackendName}


def test_cuda_backends_are_skipped_on_a_cpu_with_the_reason():
    assert (
        unavailable("_native_flash", "cpu") == "attention backend '_native_flash' needs a CUDA GPU (this run is on cpu)"
    )
    assert unavailable("native", "cpu") is None and unavailable("_native_math", "cpu") is None


@pytest.fixture(scope="module")
def transformer():
    from harness import api

    return api.builtin("shapes-flux").transformer


def test_the_backend_reaches_every_dispatched_module_and_the_global_one_is_put_back(transformer):
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    before = _AttentionBackendRegistry._active_backend
    notes, restore = set_backend(transformer, "_native_math")
    try:
        assert notes["dispatched"] == notes["attention_modules"] > 0
        # diffusers makes it the process-wide default too: without the restore, the next configuration's
        # model would run on it
        assert _AttentionBackendRegistry._active_backend.value == "_native_math"
    finally:
        restore()
        transformer.reset_attention_backend()
    assert _AttentionBackendRegistry._active_backend == before
