"""The Sana world's residual rescale: float32 output unchanged, the stream past float16's range, bf16 still finite.

The stream is also read through transformers' own hidden states."""

from __future__ import annotations

import torch

from harness.world.families.sana import FLOAT16_MAX, gemma_encoder, give_residual_range, residual_peak, sana_tokenizer


def _probe():
    tokenizer = sana_tokenizer()
    return tokenizer(
        ["a red circle on the left", "a blue star at the top and a green square"], padding=True, return_tensors="pt"
    )


def _encoder():
    tokenizer = sana_tokenizer()
    return gemma_encoder(tokenizer, 3).eval()


def test_the_rescale_keeps_the_float32_output_and_reaches_the_peak():
    encoder, probe = _encoder(), _probe()
    with torch.no_grad():
        before = encoder(**probe).last_hidden_state
    k = give_residual_range(encoder, 2e5, probe)
    with torch.no_grad():
        out = encoder(**probe, output_hidden_states=True)
    after = out.last_hidden_state
    # transformers' own hidden states: the inputs of layers 1.. (its last entry is the final norm's output)
    inner = max(float(state.abs().max()) for state in out.hidden_states[1:-1])
    assert k > 1
    peak = residual_peak(encoder, probe)
    assert abs(peak - 2e5) / 2e5 < 1e-3 and peak > FLOAT16_MAX  # the stream scaled linearly to the target
    assert FLOAT16_MAX < inner <= peak * (1 + 1e-6)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4 * float(before.abs().max()))


def test_float16_overflows_where_bfloat16_does_not():
    encoder, probe = _encoder(), _probe()
    give_residual_range(encoder, 2e5, probe)
    with torch.no_grad():
        half = encoder.to(torch.float16)(**probe).last_hidden_state
        brain = encoder.to(torch.bfloat16)(**probe).last_hidden_state
    assert not torch.isfinite(half).all()
    assert torch.isfinite(brain).all()
