"""Image arrays to the tensors metric libraries expect."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

PAIR_BATCH = 16  # image pairs per device batch: bounded memory at any sample count and size


def _uint8_on(images: Sequence[np.ndarray], device: str) -> Any:
    """uint8 HxWx3 arrays stacked into one NHWC uint8 tensor on ``device``: the only host copy."""
    import torch

    return torch.from_numpy(np.stack([np.asarray(image, dtype=np.uint8) for image in images])).to(device)


def _float_nchw(stacked: Any) -> Any:
    """NHWC uint8 to NCHW float32 (exact), where the tensor is."""
    import torch

    return stacked.permute(0, 3, 1, 2).contiguous().to(torch.float32)


class Pairs:
    """(image, reference) pairs as the pair metrics consume them: float32 NCHW batches on a device.

    uint8 goes to the device and becomes float32 there: a quarter of the bytes to copy and no
    float conversion or reordering on the host (1,000 PSNR pairs at 512 px on an H200: 7.2 s
    before). With ``keep``, each batch is copied once per device and kept for the next
    metric, so PSNR, SSIM and LPIPS share one copy of a scoring chunk; without it (whole
    sets), one batch at a time is on the device.
    """

    def __init__(self, images: Sequence[np.ndarray], references: Sequence[np.ndarray], keep: bool = False):
        self.images, self.references, self.keep = images, references, keep
        self._kept: dict[tuple[str, int], tuple[Any, Any]] = {}

    def batches(self, device: str = "cpu") -> Iterator[tuple[Any, Any]]:
        """(images, references) as float32 NCHW tensors (0-255) on ``device``, ``PAIR_BATCH`` pairs at a time.

        float32 on the run's device, not float64 on the CPU: at 512 px SSIM in float64 on the CPU
        took longer than generating the images on an H200.
        """
        for start in range(0, len(self.images), PAIR_BATCH):
            uploaded = self._kept.get((device, start))
            if uploaded is None:
                stop = start + PAIR_BATCH
                uploaded = _uint8_on(self.images[start:stop], device), _uint8_on(self.references[start:stop], device)
                if self.keep:
                    self._kept[(device, start)] = uploaded
            yield _float_nchw(uploaded[0]), _float_nchw(uploaded[1])


def pair_batches(images: Sequence[np.ndarray], references: Sequence[np.ndarray], device: str = "cpu") -> Any:
    """``Pairs(images, references).batches(device)``: one batch at a time on the device."""
    return Pairs(images, references).batches(device)


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
