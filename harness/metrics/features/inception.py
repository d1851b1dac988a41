"""``features = "inception"``: the standard 2048-d pool features of FID's Inception v3.

The weights are torch-fidelity's conversion of the TensorFlow FID network, as
torchmetrics uses them. Nothing is downloaded: they come from ``weights = PATH`` or
from torch's hub cache, where torch-fidelity itself would have put them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import InputError
from harness.metrics.features.base import FeatureExtractor

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILE


def default_weights_path() -> Path:
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    return torch_home / "hub" / "checkpoints" / WEIGHTS_FILE


def resolve_weights(configured: str | None) -> Path:
    """The weights file, or an :class:`InputError` that names the file and where to put it."""
    path = Path(configured).expanduser() if configured else default_weights_path()
    if path.is_file():
        return path
    raise InputError(
        f"the Inception FID weights {WEIGHTS_FILE} (91 MB) are not at {path}; download {WEIGHTS_URL} "
        f"on a machine with network and place it there (or set weights = 'PATH' on this metric), "
        "or use features = 'tiny' / 'clip' offline"
    )


class InceptionFeatures(FeatureExtractor):
    name = "inception"
    dim = 2048

    def __init__(self, weights: str | None = None, device: str = "cpu"):
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.device = device
        self.weights = resolve_weights(weights)
        self.network: Any = NoTrainInceptionV3(
            name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(self.weights)
        ).to(device)
        stat = self.weights.stat()
        self._id = f"inception-2048-{self.weights.name}-{stat.st_size}"

    @property
    def network_id(self) -> str:
        return self._id

    def _extract_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW, resized inside
        with torch.no_grad():
            features = self.network(batch.to(self.device))
        return features.cpu().double().reshape(len(images), -1).numpy()
