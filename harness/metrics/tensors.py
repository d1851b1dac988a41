"""Image arrays to the tensors metric libraries expect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def stack_images(images: Sequence[np.ndarray], dtype: Any = None) -> Any:
    """uint8 HxWx3 arrays to a float64 (or ``dtype``) NCHW tensor in the 0-255 range."""
    import torch

    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise ValueError(f"images differ in shape: {sorted(shapes)}")
    array = np.stack([np.asarray(image) for image in images]).astype(np.float64)
    tensor = torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
    return tensor.to(dtype) if dtype is not None else tensor


def as_uint8_tensor(images: Sequence[np.ndarray]) -> Any:
    """uint8 HxWx3 arrays to a uint8 NCHW tensor."""
    import torch

    return (
        torch.from_numpy(np.stack([np.asarray(image, dtype=np.uint8) for image in images]))
        .permute(0, 3, 1, 2)
        .contiguous()
    )
