"""Image arrays to tensors, and the float32 settings metric networks run under."""

from __future__ import annotations

import numpy as np
import torch

from harness.metrics.tensors import Pairs, device_type, exact_float32, pair_batches


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


def test_kept_pairs_are_copied_once_per_device_and_shared_by_the_pair_metrics(monkeypatch):
    import harness.metrics.tensors as tensors
    from harness.metrics.psnr import PSNR
    from harness.metrics.ssim import SSIM

    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(20)]
    refs = [np.clip(i.astype(np.int16) + rng.integers(-5, 6, i.shape), 0, 255).astype(np.uint8) for i in images]
    copies: list[int] = []
    upload = tensors._uint8_on

    def counting(arrays, device):
        copies.append(len(arrays))
        return upload(arrays, device)

    monkeypatch.setattr(tensors, "_uint8_on", counting)
    shared = Pairs(images, refs, keep=True)
    psnr, ssim = PSNR().score_chunk(shared), SSIM().score_chunk(shared)
    assert copies == [16, 16, 4, 4]  # images and references of two batches, once for both metrics
    copies.clear()
    assert psnr == PSNR().score_pairs(images, refs) and ssim == SSIM().score_pairs(images, refs)
    assert copies == [16, 16, 4, 4] * 2  # whole sets: each metric copies batch by batch, keeping none
