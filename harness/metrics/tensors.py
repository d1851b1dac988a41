"""Image arrays to the tensors metric libraries expect."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

PAIR_BATCH = 16  # image pairs per device batch: bounded memory at any sample count and size


def _float_nchw_on(images: Sequence[np.ndarray], device: str) -> Any:
    """uint8 HxWx3 arrays to a float32 NCHW tensor on ``device``: copied as uint8 in their own
    layout, then reordered and converted there (exact), so the host does a single copy."""
    import torch

    stacked = torch.from_numpy(np.stack([np.asarray(image, dtype=np.uint8) for image in images]))
    return stacked.to(device).permute(0, 3, 1, 2).contiguous().to(torch.float32)


def pair_batches(images: Sequence[np.ndarray], references: Sequence[np.ndarray], device: str = "cpu") -> Any:
    """Yield (images, references) as float32 NCHW tensors (0-255) on ``device``, ``PAIR_BATCH`` pairs at a time.

    float32 on the run's device, not float64 on the CPU: at 512 px SSIM in float64 on the CPU
    took longer than generating the images on an H200.
    """
    for start in range(0, len(images), PAIR_BATCH):
        stop = start + PAIR_BATCH
        # uint8 goes to the device and becomes float32 there: a quarter of the bytes to copy and no
        # float conversion or reordering on the host (1,000 PSNR pairs at 512 px on an H200: 7.2 s before)
        yield _float_nchw_on(images[start:stop], device), _float_nchw_on(references[start:stop], device)


def device_type(device: str) -> str:
    """``cuda`` for ``cuda:1`` (torch's device type): what decides how float results round, not which card."""
    return device.partition(":")[0]


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """Metric networks in true float32 on CUDA: TF32 off for convolutions and matrix products meanwhile.

    PyTorch lets cuDNN convolutions use TF32 (a 10-bit mantissa) by default. Inside a metric
    that is noise of about 1e-3 on every feature and SSIM window, larger than the
    differences between good quantized configurations. The previous settings come back after.
    """
    import torch

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
