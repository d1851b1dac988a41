"""K-quant blocks written by the harness, checked against gguf's and diffusers' own dequantizers."""

from __future__ import annotations

import numpy as np
import pytest

from harness.kinds.gguf.kquants import TYPE_BYTES, quantize_k

K_TYPES = ("Q6_K", "Q5_K", "Q4_K")
LOW_TYPES = ("Q3_K", "Q2_K")


def gguf_type(name):
    import gguf

    return getattr(gguf.GGMLQuantizationType, name)


def dequantize(blocks, name):
    from gguf.quants import dequantize

    return dequantize(blocks, gguf_type(name))


def weights(rows=48, columns=512, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, columns)) * 0.05).astype(np.float32)
    x[3, 7] = 1.0  # an outlier
    x[5] = 0.0  # an all-zero row
    x[6] = np.abs(x[6])  # all positive
    x[7] = -np.abs(x[7])  # all negative
    x[8] = 0.25  # constant
    return x


def relative_error(restored, original):
    return float(np.linalg.norm(restored - original) / np.linalg.norm(original))


@pytest.mark.parametrize(
    ("name", "tolerance"), [("Q6_K", 0.025), ("Q5_K", 0.045), ("Q4_K", 0.09), ("Q3_K", 0.2), ("Q2_K", 0.35)]
)
def test_blocks_dequantize_with_gguf_within_the_expected_error(name, tolerance):
    x = weights()
    blocks = quantize_k(x, name)
    assert blocks.dtype == np.uint8 and blocks.shape == (48, 512 // 256 * TYPE_BYTES[name])
    restored = dequantize(blocks, name)
    assert restored.shape == x.shape
    assert relative_error(restored, x) < tolerance
    np.testing.assert_array_equal(restored[5], 0.0)
    np.testing.assert_allclose(restored[8], 0.25, rtol=0.01)
    # one-signed rows stay one-signed up to a fraction of a quantization step (weights here are ~0.05)
    slack = 0.005 if name in K_TYPES else 0.02
    assert restored[7].max() < slack and restored[6].min() > -slack


def test_k_quants_beat_the_legacy_types_of_their_bit_width():
    from gguf.quants import quantize

    x = weights(rows=64, seed=1)
    errors = {name: relative_error(dequantize(quantize_k(x, name), name), x) for name in K_TYPES}
    legacy = {name: relative_error(dequantize(quantize(x, gguf_type(name)), name), x) for name in ("Q5_1", "Q4_1")}
    assert errors["Q6_K"] < errors["Q5_K"] < errors["Q4_K"]
    low = {name: relative_error(dequantize(quantize_k(x, name), name), x) for name in LOW_TYPES}
    assert errors["Q4_K"] < low["Q3_K"] < low["Q2_K"]
    assert errors["Q6_K"] < 0.7 * legacy["Q5_1"]  # one more bit: about half the error
    assert errors["Q5_K"] < 1.05 * legacy["Q5_1"] and errors["Q4_K"] < 1.05 * legacy["Q4_1"]


def random_valid_blocks(name, count, rng):
    """Blocks a careful quantizer must reproduce byte for byte: every sub-block spans its full range."""
    d = np.full((count, 1), 0.001, dtype=np.float16)
    if name == "Q6_K":
        q = rng.integers(-32, 32, size=(count, 16, 16))
        q[:, :, 0] = -32  # the extreme of each sub-block
        scales = rng.integers(-128, 128, size=(count, 16))
        scales[scales == 0] = 1
        scales[:, 3] = -128  # the extreme of each super-block
        u = (q + 32).astype(np.uint8).reshape(count, 2, 4, 32)
        low, high = u & 0x0F, u >> 4
        ql = (low[:, :, 0:2] | (low[:, :, 2:4] << 4)).reshape(count, 128)
        qh = (high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)).reshape(count, 64)
        return np.concatenate([ql, qh, scales.astype(np.int8).view(np.uint8), d.view(np.uint8)], axis=1)
    top = 31 if name == "Q5_K" else 15
    q = rng.integers(0, top + 1, size=(count, 8, 32)).astype(np.uint8)
    q[:, :, 0], q[:, :, 1] = 0, top
    scales = rng.integers(1, 64, size=(count, 8)).astype(np.uint8)
    mins = rng.integers(0, 64, size=(count, 8)).astype(np.uint8)
    scales[:, 2], mins[:, 5] = 63, 63
    pairs = q.reshape(count, 4, 2, 32)
    qs = ((pairs[:, :, 0] & 0x0F) | ((pairs[:, :, 1] & 0x0F) << 4)).reshape(count, 128)
    parts = [
        d.view(np.uint8),
        np.full((count, 1), 0.0005, dtype=np.float16).view(np.uint8),
        pack_scales_by_hand(scales, mins),
    ]
    if name == "Q5_K":
        parts.append(np.bitwise_or.reduce(((q >> 4) & 1) << np.arange(8, dtype=np.uint8)[None, :, None], axis=1))
    return np.concatenate([*parts, qs], axis=1).astype(np.uint8)


def pack_scales_by_hand(scales, mins):
    """ggml's get_scale_min_k4 read backwards, byte by byte: j < 4 in the low 6 bits of bytes j and
    j + 4; j >= 4 split into 4 low bits in byte j + 4 (scale low nibble, min high nibble) and 2 high
    bits in the top of bytes j - 4 (scale) and j (min)."""
    packed = np.zeros((scales.shape[0], 12), dtype=np.uint8)
    for row in range(scales.shape[0]):
        for j in range(8):
            sc, m = int(scales[row, j]), int(mins[row, j])
            if j < 4:
                packed[row, j] |= sc
                packed[row, j + 4] |= m
            else:
                packed[row, j + 4] |= (sc & 0xF) | ((m & 0xF) << 4)
                packed[row, j - 4] |= (sc >> 4) << 6
                packed[row, j] |= (m >> 4) << 6
    return packed


@pytest.mark.parametrize("name", K_TYPES)
def test_values_on_the_grid_come_back_as_the_same_bytes(name):
    blocks = random_valid_blocks(name, 12, np.random.default_rng(2))
    assert blocks.shape == (12, TYPE_BYTES[name])
    values = dequantize(blocks, name)  # gguf's reader decides what the bytes mean
    np.testing.assert_array_equal(quantize_k(values, name), blocks)


@pytest.mark.parametrize("name", K_TYPES + LOW_TYPES)
def test_diffusers_reads_the_blocks_as_gguf_does(name):
    import torch
    from diffusers.quantizers.gguf.utils import GGUFParameter, dequantize_gguf_tensor

    x = weights(rows=16)
    blocks = quantize_k(x, name)
    parameter = GGUFParameter(torch.from_numpy(blocks), quant_type=gguf_type(name))
    ours = dequantize_gguf_tensor(parameter).float().numpy()
    # diffusers computes in float16; a wrong layout would be off by the weights' own size (~0.05)
    np.testing.assert_allclose(ours, dequantize(blocks, name), rtol=0, atol=1e-3)


def test_rows_must_fill_super_blocks():
    with pytest.raises(ValueError, match="multiple of 256"):
        quantize_k(np.zeros((2, 96), dtype=np.float32), "Q4_K")
    with pytest.raises(ValueError, match="not a K-quant type"):
        quantize_k(np.zeros((2, 256), dtype=np.float32), "IQ4_XS")
