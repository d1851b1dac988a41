"""``features = "clip"``: open_clip image embeddings as the FID/KID feature space.

Embeddings are L2-normalised and scaled by sqrt(d), so each coordinate has roughly
unit variance: the scale KID's kernel (x.y/d + 1)^3 assumes. (Unit-length features
would put every kernel value near 1 and every KID near 0.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.metrics.base import NO_EVALUATORS, Evaluators
from harness.metrics.clip_model import load_clip
from harness.metrics.features.base import FeatureExtractor, module_digest


class ClipFeatures(FeatureExtractor):
    name = "clip"

    def __init__(self, options: Mapping[str, Any], device: str = "cpu", evaluators: Evaluators = NO_EVALUATORS):
        self.device = device
        self.clip = load_clip(options, device, evaluators)
        self.dim = int(self.clip.encode_images([np.zeros((8, 8, 3), dtype=np.uint8)]).shape[-1])
        # The id changes with the weights and with how features are post-processed (cache key).
        self._id = f"clip-sqrtd-{self.clip.id}-{module_digest(self.clip.model)}"

    @property
    def network_id(self) -> str:
        return self._id

    def _extract_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self.clip.encode_images(list(images)).double().numpy()) * np.sqrt(self.dim)
