"""Writing llama.cpp's K-quant blocks (Q6_K, Q5_K, Q4_K, Q3_K, Q2_K) with numpy.

The ``gguf`` package reads every GGML type but writes only the legacy 32-element ones
(Q8_0, Q5_x, Q4_x), while most GGUF checkpoints people download for diffusion models are
K-quants (``Q4_K_M`` and friends). These functions produce the byte layout of
ggml's ``block_q6_K`` ... ``block_q2_K`` so the harness can measure those
types on any pipeline; the tests check every layout against gguf's own dequantizer.

A K-quant super-block holds 256 values. Q6_K splits it into 16 sub-blocks of 16 with
signed 6-bit values and an int8 scale each; Q5_K and Q4_K split it into 8 sub-blocks of
32 with unsigned 5/4-bit values, and a 6-bit scale and 6-bit minimum each. Every
super-block has an fp16 scale (and, for Q5_K/Q4_K, an fp16 scale for the minimums).
Q3_K has 16 sub-blocks of 16 signed 3-bit values (-4..3, the third bit in a separate
mask) with signed 6-bit scales; Q2_K has 16 sub-blocks of 16 unsigned 2-bit values
with a 4-bit scale and a 4-bit minimum each, against fp16 ``d`` and ``dmin``.

Scales here come from each sub-block's range, refined by a least-squares fit of scale and
minimum to the rounded values; llama.cpp searches a few more candidate scales, so its
files can be slightly more accurate. The layout is the same, so any loader reads both.
"""

from __future__ import annotations

import numpy as np

SUPER_BLOCK = 256
TYPE_BYTES = {"Q6_K": 210, "Q5_K": 176, "Q4_K": 144, "Q3_K": 110, "Q2_K": 84}


def quantize_k(rows: np.ndarray, quant_type: str) -> np.ndarray:
    """``rows`` (…, n·256) float → uint8 blocks shaped (…, n·bytes), as ``gguf.quants.quantize`` returns."""
    if quant_type not in TYPE_BYTES:
        raise ValueError(f"not a K-quant type this writer knows: {quant_type}")
    values = np.asarray(rows, dtype=np.float32)
    if values.shape[-1] % SUPER_BLOCK:
        raise ValueError(f"last dimension {values.shape[-1]} is not a multiple of {SUPER_BLOCK}")
    blocks = values.reshape(-1, SUPER_BLOCK)
    writers = {
        "Q6_K": _q6_k,
        "Q5_K": lambda b: _q45_k(b, 5),
        "Q4_K": lambda b: _q45_k(b, 4),
        "Q3_K": _q3_k,
        "Q2_K": _q2_k,
    }
    packed = writers[quant_type](blocks)
    return packed.reshape(*values.shape[:-1], values.shape[-1] // SUPER_BLOCK * TYPE_BYTES[quant_type])


def _fp16(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, numerator / safe)


def _q6_k(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    sub = blocks.reshape(n, 16, 16)
    # Each sub-block's largest-magnitude value maps to -32 (the signed 6-bit range is -32..31).
    position = np.abs(sub).argmax(axis=-1)
    extreme = np.take_along_axis(sub, position[..., None], axis=-1)[..., 0]
    scales = extreme / -32.0
    # The 16 scales become int8 against one fp16 super-block scale (largest magnitude -> -128).
    position = np.abs(scales).argmax(axis=-1)
    largest = np.take_along_axis(scales, position[:, None], axis=-1)[:, 0]
    d = _fp16(largest / -128.0)
    int_scales = np.clip(np.rint(_divide(scales, d.astype(np.float32)[:, None])), -128, 127).astype(np.int8)
    step = d.astype(np.float32)[:, None, None] * int_scales.astype(np.float32)[..., None]
    q = (np.clip(np.rint(_divide(sub, step)), -32, 31) + 32).astype(np.uint8).reshape(n, 2, 4, 32)
    # Per 128 values: ql holds the low 4 bits (quarters 0/1 low nibbles, 2/3 high nibbles),
    # qh the top 2 bits of the four quarters, two bits each.
    low = q & 0x0F
    ql = (low[:, :, 0:2] | (low[:, :, 2:4] << 4)).reshape(n, 128)
    high = q >> 4
    qh = (high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)).reshape(n, 64)
    return np.concatenate([ql, qh, int_scales.view(np.uint8), d.reshape(n, 1).view(np.uint8)], axis=1)


def _low_bits_16(q: np.ndarray) -> np.ndarray:
    """Pack (n, 256) values of 0..3 the way Q2_K and Q3_K store them: 64 bytes, four values per byte.

    Value ``h·128 + s·32 + l`` sits in bits ``2s..2s+1`` of byte ``h·32 + l``.
    """
    n = q.shape[0]
    parts = q.reshape(n, 2, 4, 32)
    packed = parts[:, :, 0] | (parts[:, :, 1] << 2) | (parts[:, :, 2] << 4) | (parts[:, :, 3] << 6)
    return packed.reshape(n, 64).astype(np.uint8)


def _q3_k(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    sub = blocks.reshape(n, 16, 16)
    # Each sub-block's largest-magnitude value maps to -4 (the signed 3-bit range is -4..3).
    position = np.abs(sub).argmax(axis=-1)
    extreme = np.take_along_axis(sub, position[..., None], axis=-1)[..., 0]
    scales = extreme / -4.0
    # 16 signed 6-bit scales (-32..31) against one fp16 super-block scale (largest magnitude -> -32).
    position = np.abs(scales).argmax(axis=-1)
    largest = np.take_along_axis(scales, position[:, None], axis=-1)[:, 0]
    d = _fp16(largest / -32.0)
    int_scales = np.clip(np.rint(_divide(scales, d.astype(np.float32)[:, None])), -32, 31).astype(np.int8)
    step = d.astype(np.float32)[:, None, None] * int_scales.astype(np.float32)[..., None]
    q = np.clip(np.rint(_divide(sub, step)), -4, 3).astype(np.int8).reshape(n, 256)
    high = (q >= 0).astype(np.uint8)  # the mask bit is set when no -4 offset applies
    low = np.where(q >= 0, q, q + 4).astype(np.uint8)
    # mask bit j of byte l holds value j·32 + l
    hmask = np.zeros((n, 32), dtype=np.uint8)
    for j in range(8):
        hmask |= high[:, j * 32 : (j + 1) * 32] << j
    biased = (int_scales.astype(np.int16) + 32).astype(np.uint8)  # 0..63
    packed = np.zeros((n, 12), dtype=np.uint8)
    for i in range(16):
        packed[:, i % 8] |= (biased[:, i] & 0x0F) << (4 * (i // 8))
        packed[:, 8 + i % 4] |= ((biased[:, i] >> 4) & 0x03) << (2 * (i // 4))
    return np.concatenate([hmask, _low_bits_16(low), packed, d.reshape(n, 1).view(np.uint8)], axis=1)


def _q2_k(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    sub = blocks.reshape(n, 16, 16)
    scale, minimum = _fit_scale_min(sub, 3)
    # 4-bit scales and minimums against two fp16 super-block scales.
    d = _fp16(scale.max(axis=-1) / 15.0)
    dmin = _fp16(minimum.max(axis=-1) / 15.0)
    int_scale = np.clip(np.rint(_divide(scale, d.astype(np.float32)[:, None])), 0, 15).astype(np.uint8)
    int_min = np.clip(np.rint(_divide(minimum, dmin.astype(np.float32)[:, None])), 0, 15).astype(np.uint8)
    step = d.astype(np.float32)[:, None] * int_scale
    offset = dmin.astype(np.float32)[:, None] * int_min
    q = np.clip(np.rint(_divide(sub + offset[..., None], step[..., None])), 0, 3).astype(np.uint8).reshape(n, 256)
    scales = (int_scale | (int_min << 4)).astype(np.uint8)
    return np.concatenate(
        [scales, _low_bits_16(q), d.reshape(n, 1).view(np.uint8), dmin.reshape(n, 1).view(np.uint8)], axis=1
    )


def _q45_k(blocks: np.ndarray, bits: int) -> np.ndarray:
    n = blocks.shape[0]
    top = (1 << bits) - 1
    sub = blocks.reshape(n, 8, 32)
    scale, minimum = _fit_scale_min(sub, top)
    # Scales and minimums become 6-bit integers against two fp16 super-block scales.
    d = _fp16(scale.max(axis=-1) / 63.0)
    dmin = _fp16(minimum.max(axis=-1) / 63.0)
    int_scale = np.clip(np.rint(_divide(scale, d.astype(np.float32)[:, None])), 0, 63).astype(np.uint8)
    int_min = np.clip(np.rint(_divide(minimum, dmin.astype(np.float32)[:, None])), 0, 63).astype(np.uint8)
    step = d.astype(np.float32)[:, None] * int_scale
    offset = dmin.astype(np.float32)[:, None] * int_min
    q = np.clip(np.rint(_divide(sub + offset[..., None], step[..., None])), 0, top).astype(np.uint8)
    pairs = q.reshape(n, 4, 2, 32)  # sub-blocks 2k and 2k+1 share 32 bytes: low and high nibble
    qs = ((pairs[:, :, 0] & 0x0F) | ((pairs[:, :, 1] & 0x0F) << 4)).reshape(n, 128)
    parts = [d.reshape(n, 1).view(np.uint8), dmin.reshape(n, 1).view(np.uint8), _pack_scales(int_scale, int_min)]
    if bits == 5:
        fifth = (q >> 4) & 1  # bit i of qh[l] is the fifth bit of sub-block i's value l
        qh = np.zeros((n, 32), dtype=np.uint8)
        for i in range(8):
            qh |= fifth[:, i] << i
        parts.append(qh)
    parts.append(qs)
    return np.concatenate(parts, axis=1)


def _fit_scale_min(sub: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Per sub-block scale ≥ 0 and minimum ≥ 0 with value ≈ scale·q − minimum, q in 0..top."""
    low = np.minimum(sub.min(axis=-1), 0.0)
    high = sub.max(axis=-1)
    scale = (high - low) / top
    minimum = -low
    q = np.clip(np.rint(_divide(sub + minimum[..., None], scale[..., None])), 0, top)
    # Least squares of value = scale·q − minimum over the sub-block, for the chosen q.
    count = sub.shape[-1]
    sum_q, sum_x = q.sum(axis=-1), sub.sum(axis=-1)
    sum_qq, sum_qx = (q * q).sum(axis=-1), (q * sub).sum(axis=-1)
    det = count * sum_qq - sum_q * sum_q
    fit_scale = _divide(count * sum_qx - sum_q * sum_x, det)
    fit_min = _divide(sum_q * sum_qx - sum_qq * sum_x, det)
    usable = (det > 0) & (fit_scale > 0) & (fit_min >= 0)
    return np.where(usable, fit_scale, scale), np.where(usable, fit_min, minimum)


def _pack_scales(scale: np.ndarray, minimum: np.ndarray) -> np.ndarray:
    """ggml's 12-byte packing of eight 6-bit scales and eight 6-bit minimums."""
    first = (scale[:, :4] & 0x3F) | ((scale[:, 4:] >> 4) << 6)
    second = (minimum[:, :4] & 0x3F) | ((minimum[:, 4:] >> 4) << 6)
    third = (scale[:, 4:] & 0x0F) | ((minimum[:, 4:] & 0x0F) << 4)
    return np.concatenate([first, second, third], axis=1).astype(np.uint8)
