"""The content-addressed sample cache: a rerun regenerates only what changed.

A sample's key is :meth:`harness.identity.ConfigIdentity.sample_key`: a hash of
everything that determines its image (the pipeline's content, every generation setting,
the configuration's kind, options and the files it reads, the batch size, the versions of
the packages its kind runs on, the device class and the numeric path) with its prompt
and seed. Images are written atomically as they are produced, so a run killed midway
(even with SIGKILL) leaves only whole entries, and restarting it regenerates only the
missing samples. Configuration-level notes (tensor counts, calibration, sensitivity)
are cached beside them, so a fully cached configuration reports what it reported
when it was generated.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import replacing, write_text
from harness.samples import load_png


@dataclass(frozen=True)
class CachedSample:
    path: Path  # the cached PNG, already checked to decode
    image: np.ndarray
    nonfinite_fraction: float
    blank: bool
    seconds: float | None


class SampleCache:
    """``<cache>/samples/<ab>/<key>.png`` + ``.json``; ``<cache>/configs/<key>.json``."""

    def __init__(self, directory: Path, read: bool = True):
        self.directory = directory
        self.read = read
        self.hits = 0
        self.misses = 0

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.directory / "samples" / key[:2]
        return folder / f"{key}.png", folder / f"{key}.json"

    def get(self, key: str) -> CachedSample | None:
        if not self.read:
            self.misses += 1
            return None
        image_path, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            image = load_png(image_path)
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return CachedSample(
            image_path, image, float(meta["nonfinite_fraction"]), bool(meta["blank"]), meta.get("seconds")
        )

    def put(self, key: str, png: Path, nonfinite_fraction: float, blank: bool, seconds: float | None) -> None:
        """Keep a copy of an image the run has already written as PNG (no second encoding)."""
        image_path, meta_path = self._paths(key)
        image_path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(image_path) as temporary:
            shutil.copyfile(png, temporary)
        _write_json(meta_path, {"nonfinite_fraction": nonfinite_fraction, "blank": blank, "seconds": seconds})

    def get_config(self, key: str) -> dict[str, Any] | None:
        if not self.read:
            return None
        try:
            return dict(json.loads((self.directory / "configs" / f"{key}.json").read_text()))
        except (OSError, ValueError):
            return None

    def put_config(self, key: str, record: Mapping[str, Any]) -> None:
        _write_json(self.directory / "configs" / f"{key}.json", record)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_text(path, json.dumps(data, default=str))
