"""Image arrays to tensors, and the float32 settings metric networks run under."""

from __future__ import annotations

import numpy as np
import torch

from harness.metrics.tensors import device_type, exact_float32, pair_batches


def test_tf32_is_off_inside_and_restored_after():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        with exact_float32():
            assert not torch.backends.cudnn.allow_tf32
            assert not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        try:
            with exact_float32():
                raise KeyError("inside")
        except KeyError:
            pass
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32  # restored on errors too
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_device_class_drops_the_card_index():
    assert device_type("cuda:3") == "cuda" == device_type("cuda")
    assert device_type("cpu") == "cpu"


def test_pairs_go_over_as_uint8_and_become_exact_float32():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(20)]
    refs = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(20)]
    batches = list(pair_batches(images, refs))
    assert [len(a) for a, _ in batches] == [16, 4]
    first, first_refs = batches[0]
    assert first.dtype == torch.float32 and first.shape == (16, 3, 5, 7)
    np.testing.assert_array_equal(first[2].permute(1, 2, 0).numpy(), images[2].astype(np.float32))
    np.testing.assert_array_equal(first_refs[0].permute(1, 2, 0).numpy(), refs[0].astype(np.float32))
