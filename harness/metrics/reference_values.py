"""The on-disk cache of per-image values of the reference images (CLIP score, blankness, ...).

The reference set is fixed between blessings, so what a metric says of each reference
image needs computing once: ``<cache>/reference_values/<references digest>-<name>-<id>.json``,
keyed by the reference manifest's digest and an id that changes whenever the values
would (the metric, its options, its weights, the device type). A run whose reference
values and features are all cached does not read the reference images at all. A file
that is truncated, malformed or lacks a key is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.atomic import write_text


class ReferenceValueCache:
    """One value per reference image, per (references digest, values id)."""

    def __init__(self, cache_dir: Path):
        self.directory = cache_dir / "reference_values"

    def path(self, references_digest: str, name: str, values_id: str) -> Path:
        safe_id = hashlib.sha256(values_id.encode()).hexdigest()[:16]
        return self.directory / f"{references_digest[:24]}-{name}-{safe_id}.json"

    def load(self, references_digest: str, name: str, values_id: str, keys: Sequence[str]) -> dict[str, float] | None:
        """The values of ``keys``, or ``None`` when any is missing or the file cannot be trusted."""
        path = self.path(references_digest, name, values_id)
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(stored, dict) or stored.get("id") != values_id or not isinstance(stored.get("values"), dict):
            return None
        values = stored["values"]
        found: dict[str, float] = {}
        for key in keys:
            value = values.get(key)
            if not isinstance(value, int | float) or isinstance(value, bool):
                return None
            found[key] = float(value)
        return found

    def store(self, references_digest: str, name: str, values_id: str, values: Mapping[str, float]) -> None:
        """Written atomically: a run killed meanwhile leaves the old file or none."""
        # Python's json writes NaN and Infinity as tokens it reads back: a non-finite value survives
        body = {"id": values_id, "values": {key: float(value) for key, value in values.items()}}
        write_text(self.path(references_digest, name, values_id), json.dumps(body, sort_keys=True))
