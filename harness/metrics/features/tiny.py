"""``features = "tiny"``: a small fixed random convolutional network, built from a seed.

Random-weight convolutional features are a known, if weak, basis for distribution
distances: they respond to colour, texture and layout, need no download, and are the
same on every machine. They make offline suites compute an FID/KID that moves when
images change; they are not comparable with Inception FIDs from the literature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.metrics.features.base import FeatureExtractor, module_digest

SEED = 20261122
INPUT_PX = 64


def build_tiny_network() -> Any:
    import torch
    from torch import nn

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(SEED)
    try:
        network = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),
        )
    finally:
        torch.random.set_rng_state(generator_state)
    network.eval()
    return network


class TinyFeatures(FeatureExtractor):
    """64 features: mean and standard deviation of 32 random-conv channels at 64 px."""

    name = "tiny"
    dim = 64

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.network = build_tiny_network()
        self._id = f"tiny-conv-{SEED}-{module_digest(self.network)}"
        self.network.to(device)

    @property
    def network_id(self) -> str:
        return self._id

    def _extract_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        # NHWC memory under an NCHW view, as before devices: the CPU path keeps its exact rounding
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(self.device).float() / 127.5 - 1.0
        batch = F.interpolate(batch, size=(INPUT_PX, INPUT_PX), mode="bilinear", antialias=True, align_corners=False)
        with torch.no_grad():
            maps = self.network(batch)
        features = torch.cat([maps.mean(dim=(2, 3)), maps.std(dim=(2, 3))], dim=1)
        return features.cpu().double().numpy()
