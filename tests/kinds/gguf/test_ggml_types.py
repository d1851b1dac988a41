"""Encoding one array as a GGML type in row chunks on several threads gives the bytes of one whole-array call."""

from __future__ import annotations

import numpy as np
import pytest

from harness.kinds.gguf import ggml_types
from harness.kinds.gguf.ggml_types import encode, nbytes
from harness.kinds.gguf.kquants import quantize_k


@pytest.mark.parametrize("kind", ["Q8_0", "Q4_0", "Q4_1", "Q6_K", "Q4_K", "Q2_K"])
def test_chunked_threaded_bytes_equal_one_call(monkeypatch, kind):
    import gguf

    array = np.random.default_rng(1).standard_normal((70, 512)).astype(np.float32)
    whole = (
        quantize_k(array, kind)
        if kind.endswith("_K")
        else gguf.quants.quantize(array, getattr(gguf.GGMLQuantizationType, kind))
    )
    monkeypatch.setattr(ggml_types, "CHUNK_ELEMENTS", 512 * 8)  # 9 chunks of 8 rows, the last one short
    for workers in (1, 3):
        encoded = encode(array, kind, workers)
        assert encoded.dtype == np.uint8 and np.array_equal(encoded, whole)
        assert encoded.nbytes == nbytes(array.shape, kind)


def test_float_kinds_and_their_sizes():
    array = np.linspace(-3, 3, 96, dtype=np.float32).reshape(3, 32)
    assert encode(array, "F32").dtype == np.float32 and nbytes((3, 32), "F32") == 384
    assert np.array_equal(encode(array, "F16"), array.astype(np.float16)) and nbytes((3, 32), "F16") == 192
    bf16 = encode(array, "BF16")
    assert bf16.nbytes == nbytes((3, 32), "BF16") == 192
    widened = (bf16.astype(np.uint16).astype(np.uint32) << 16).view(np.float32)
    assert np.allclose(widened, array, rtol=2**-8) and not np.array_equal(widened, array)
