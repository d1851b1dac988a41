"""Turning one float array into the bytes of one GGML type, in parallel over row chunks.

Every GGML block lies within a row, so a tensor's rows can be quantized in independent
chunks; the chunks' bytes, concatenated, are the bytes of the whole tensor (a test checks
this). Chunks of about 256K values keep each worker's arrays in cache (measured on the
2-core Xeon: Q4_K 15 Mparam/s as one call, 48 in chunks, 71 in chunks on two threads), and
numpy releases the GIL inside its array operations, so threads scale with the cores.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from math import prod
from typing import Any

import numpy as np

from harness.kinds.gguf.kquants import TYPE_BYTES, quantize_k

CHUNK_ELEMENTS = 1 << 18
FLOAT_KINDS = ("F32", "F16", "BF16")


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def nbytes(shape: tuple[int, ...], kind: str) -> int:
    """Bytes of a tensor of ``shape`` (numpy order, rows last) stored as ``kind``."""
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[getattr(gguf.GGMLQuantizationType, kind)]
    return prod(shape[:-1]) * (shape[-1] // block) * size if shape else size


def encode(array: np.ndarray, kind: str, workers: int = 1) -> np.ndarray:
    """``array`` (float32) stored as GGML type ``kind``: a float array for F32/F16/BF16, else uint8 blocks."""
    if kind == "F32":
        return np.ascontiguousarray(array, dtype=np.float32)
    if kind == "F16":
        return array.astype(np.float16)
    if kind == "BF16":
        import torch

        return torch.from_numpy(np.ascontiguousarray(array)).to(torch.bfloat16).view(torch.int16).numpy()
    rows = array.reshape(-1, array.shape[-1])
    step = max(1, CHUNK_ELEMENTS // rows.shape[1])
    chunks = [rows[start : start + step] for start in range(0, rows.shape[0], step)]
    if workers > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(min(workers, len(chunks))) as pool:
            parts = list(pool.map(lambda chunk: _quantize(chunk, kind), chunks))
    else:
        parts = [_quantize(chunk, kind) for chunk in chunks]
    return np.concatenate(parts).reshape(*array.shape[:-1], -1)


def _quantize(rows: np.ndarray, kind: str) -> Any:
    if kind in TYPE_BYTES:
        return quantize_k(rows, kind)
    import gguf

    return gguf.quants.quantize(rows, getattr(gguf.GGMLQuantizationType, kind))
