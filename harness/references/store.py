"""The reference store: blessed images plus a manifest, and their verification.

``manifest.json`` records the sha256 of every image, a hash of everything that
determines the images and is known before anything loads (:func:`reference_inputs`: the
pipeline's source, prompts, seeds, every generation setting, the reference
configuration's kind, options and files) with those inputs spelled out, the pipeline's
content fingerprint (weights and component configurations), library versions and the
device class. ``run`` refuses references that are missing,
stale (the suite changed; the message says what changed) or tampered with.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import write_text
from harness.errors import InputError
from harness.identity import digest
from harness.identity import reference_inputs as identity_inputs
from harness.kinds.base import ConfigKind, jsonable
from harness.plan.suite import Suite
from harness.samples import load_png, sample_key, save_png, sha256_file

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ReferenceImage:
    key: str
    prompt_index: int
    prompt: str
    seed: int
    file: str
    sha256: str


@dataclass(frozen=True)
class Manifest:
    suite: str
    reference_config: str
    reference_hash: str
    inputs: Mapping[str, Any]
    pipeline_fingerprint: str
    environment: Mapping[str, Any]
    created: str
    images: tuple[ReferenceImage, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        images = tuple(ReferenceImage(**item) for item in data["images"])
        return cls(**{**data, "images": images})

    @property
    def digest(self) -> str:
        """One hash of the whole reference set (keys FID/KID feature caches)."""
        import hashlib

        payload = json.dumps([self.reference_hash, [(i.key, i.sha256) for i in self.images]])
        return hashlib.sha256(payload.encode()).hexdigest()


def reference_inputs(suite: Suite, kinds: Mapping[str, ConfigKind]) -> dict[str, Any]:
    """The suite-side part of the reference images' identity (:func:`harness.identity.reference_inputs`)."""
    spec = suite.reference_config
    files = kinds[spec.kind].cache_inputs(spec.options, suite.directory)
    return identity_inputs(
        suite.pipeline.to_dict(), suite.prompts, suite.seeds, suite.generation, spec.kind, jsonable(spec.options), files
    )


def reference_hash(suite: Suite, kinds: Mapping[str, ConfigKind]) -> str:
    return digest(reference_inputs(suite, kinds))


class ReferenceSet:
    """Verified references: the manifest and the images by sample key (read on demand)."""

    def __init__(self, directory: Path, manifest: Manifest):
        self.directory = directory
        self.manifest = manifest
        self._by_key = {image.key: image for image in manifest.images}

    def sample_keys(self) -> list[str]:
        return list(self._by_key)

    def path(self, key: str) -> Path:
        return self.directory / self._by_key[key].file

    def image(self, key: str) -> np.ndarray:
        """The image, read from its file each time: a paper-sized set is never held in memory whole."""
        try:
            return load_png(self.path(key))
        except OSError as error:
            raise InputError(f"reference image cannot be read: {error}", file=self.path(key)) from None


def bless(
    suite: Suite,
    kinds: Mapping[str, ConfigKind],
    images: Mapping[str, np.ndarray | Path],
    pipeline_fingerprint: str,
    environment: Mapping[str, Any],
    created: str,
) -> Manifest:
    """Write the reference images and manifest for ``suite`` (replacing any earlier ones).

    An image is an array, or the path of a PNG the harness already wrote (copied as it is,
    so blessing n images never holds them all in memory).
    """
    directory = suite.references_dir
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.png"):
        stale.unlink()
    entries = []
    for prompt_index, prompt, seed in suite.samples():
        key = sample_key(prompt_index, seed)
        file_name = f"{key}.png"
        source = images[key]
        if isinstance(source, Path):
            shutil.copyfile(source, directory / file_name)
            digest = sha256_file(directory / file_name)
        else:
            digest = save_png(source, directory / file_name)
        entries.append(ReferenceImage(key, prompt_index, prompt, seed, file_name, digest))
    manifest = Manifest(
        suite=suite.name,
        reference_config=suite.reference,
        reference_hash=reference_hash(suite, kinds),
        inputs=reference_inputs(suite, kinds),
        pipeline_fingerprint=pipeline_fingerprint,
        environment=dict(environment),
        created=created,
        images=tuple(entries),
    )
    write_text(directory / MANIFEST, json.dumps(manifest.to_dict(), indent=1) + "\n")
    return manifest


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    if not path.is_file():
        raise InputError("no blessed references: run `python -m harness bless SUITE` to create them", file=path)
    try:
        return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise InputError(
            f"corrupt manifest ({error}); re-bless with `python -m harness bless SUITE`", file=path
        ) from None


def verify(suite: Suite, kinds: Mapping[str, ConfigKind]) -> ReferenceSet:
    """Load the references for ``suite``, refusing missing, stale or tampered ones."""
    directory = suite.references_dir
    manifest = read_manifest(directory)
    path = directory / MANIFEST
    inputs = reference_inputs(suite, kinds)
    if manifest.reference_hash != digest(inputs):
        changed = describe_changes(manifest.inputs, inputs)
        raise InputError(
            f"references are stale: the suite changed since they were blessed ({changed}); "
            "rerun `python -m harness bless SUITE` if the change is intended",
            file=path,
        )
    for image in manifest.images:
        image_path = directory / image.file
        if not image_path.is_file():
            raise InputError(f"reference image {image.file} listed in the manifest is missing", file=path)
        actual = sha256_file(image_path)
        if actual != image.sha256:
            raise InputError(
                f"reference image was modified after blessing (sha256 {actual[:12]}..., manifest says "
                f"{image.sha256[:12]}...); restore it or re-bless",
                file=image_path,
            )
    return ReferenceSet(directory, manifest)


def check_pipeline(references: ReferenceSet, fingerprint: str) -> None:
    """Refuse references blessed from other weights than the ones just loaded."""
    if references.manifest.pipeline_fingerprint != fingerprint:
        raise InputError(
            "the pipeline's weights differ from the ones the references were blessed with "
            f"({references.manifest.pipeline_fingerprint[:12]}... then, {fingerprint[:12]}... now); "
            "re-bless if the new weights are the intended reference",
            file=references.directory / MANIFEST,
        )


def describe_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """``steps 4 -> 8; prompts changed`` for the inputs that differ."""
    parts = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, int | float | str) and isinstance(new, int | float | str):
            parts.append(f"{key} {old!r} -> {new!r}")
        else:
            parts.append(f"{key} changed")
    return "; ".join(parts) or "inputs changed"


def drift(blessed: Mapping[str, Any], here: Mapping[str, Any]) -> list[str]:
    """Warnings when this run's machine or libraries differ from those the references were blessed with.

    Then even the reference configuration need not reproduce its images bit for bit: between
    two x86-64 CPU models and a transformers patch release, fp32 gave 94-97 dB, not infinity.
    """
    warnings = []
    was, now = blessed.get("device_class"), here.get("device_class")
    if was and now and was != now:
        warnings.append(
            f"references were blessed on {was}, this run is on {now}: expect small differences even for the "
            "reference configuration (94-97 dB in fp32 between two CPU models, not bit-identical images)"
        )
    half_then, half_now = blessed.get("cpu_half"), here.get("cpu_half")
    if half_then and half_now and half_then != half_now:
        warnings.append(
            f"references were blessed with half precision taking {half_then} on the CPU, this run takes {half_now}: "
            "half-precision configurations differ from the blessing by accumulation order too"
        )
    old, new = blessed.get("libraries") or {}, here.get("libraries") or {}
    # names recorded on both sides: a blessing that did not record a package (older harness) says nothing of it
    changed = [f"{name} {old[name]} -> {new[name]}" for name in sorted(set(old) & set(new)) if old[name] != new[name]]
    if changed:
        warnings.append(f"library versions differ from the blessing: {', '.join(changed)}")
    return warnings
