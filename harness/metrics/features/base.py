"""Image feature extractors for FID and KID, and the on-disk cache of reference features.

An extractor maps uint8 HxWx3 images to an (N, d) float64 array, in batches. The
reference set's features are cached on disk, keyed by the reference manifest's
digest and the extractor's id, so a rerun against unchanged references extracts no
reference features (``results.json`` counts the extractions).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import replacing
from harness.metrics.tensors import device_type

BATCH = 32


class FeatureExtractor(ABC):
    """``extract`` images to features on ``device``; ``id`` changes whenever the features would."""

    name: str = ""
    dim: int = 0
    device: str = "cpu"

    @property
    @abstractmethod
    def network_id(self) -> str:
        """Identifies the network and its weights."""

    @property
    def id(self) -> str:
        """The cache key's part: the network, and the device type when it is not the CPU.

        A GPU computes the same features as the CPU only up to float rounding, so features
        from one are never mixed with features from the other in one distance.
        """
        return self.network_id if self.device == "cpu" else f"{self.network_id}@{device_type(self.device)}"

    @abstractmethod
    def _extract_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Features of one batch, (len(images), dim)."""

    def extract(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim))
        parts = [self._extract_batch(images[i : i + BATCH]) for i in range(0, len(images), BATCH)]
        return np.concatenate(parts).astype(np.float64)


def module_digest(module: Any) -> str:
    """A short sha256 of a module's weights, for extractor ids."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        data = tensor.detach().float().cpu().contiguous().numpy()
        digest.update(data.tobytes())
    return digest.hexdigest()[:16]


class FeatureCache:
    """Reference features on disk: ``<cache>/features/<references digest>-<extractor id>.npy``."""

    def __init__(self, cache_dir: Path):
        self.directory = cache_dir / "features"

    def path(self, references_digest: str, extractor: FeatureExtractor) -> Path:
        safe_id = hashlib.sha256(extractor.id.encode()).hexdigest()[:16]
        return self.directory / f"{references_digest[:24]}-{extractor.name}-{safe_id}.npy"

    def load(self, references_digest: str, extractor: FeatureExtractor) -> np.ndarray | None:
        path = self.path(references_digest, extractor)
        if not path.is_file():
            return None
        try:
            features = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # a truncated cache file is recomputed, never trusted
        if features.ndim != 2 or features.shape[1] != extractor.dim:
            return None
        return features

    def store(self, references_digest: str, extractor: FeatureExtractor, features: np.ndarray) -> None:
        with replacing(self.path(references_digest, extractor)) as temporary, temporary.open("wb") as stream:
            np.save(stream, features)
