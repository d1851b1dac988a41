"""``features = "clip"``: open_clip image embeddings as the FID/KID feature space."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.metrics.clip_model import load_clip
from harness.metrics.features.base import FeatureExtractor, module_digest


class ClipFeatures(FeatureExtractor):
    name = "clip"

    def __init__(self, options: Mapping[str, Any]):
        self.clip = load_clip(options)
        self.dim = int(self.clip.model.encode_image(self._probe()).shape[-1])
        self._id = f"clip-{self.clip.id}-{module_digest(self.clip.model)}"

    def _probe(self) -> Any:
        import torch
        from PIL import Image

        return torch.stack([self.clip.preprocess(Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)))])

    @property
    def id(self) -> str:
        return self._id

    def _extract_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self.clip.encode_images(list(images)).double().numpy())
