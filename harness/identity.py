"""The sample identity: everything that changes a generated image, in one frozen record.

A sample's pixels are a function of the pipeline (its source, weights and the
configuration of its other components: scheduler, tokenizers), the prompt and seed,
every generation setting (each field of :class:`~harness.samples.Generation`, whatever
fields it grows), the configuration (kind, options, the files it reads, the batch it
runs in), the versions of the packages that run it, the device class and the numeric
path taken on a CPU. :class:`ConfigIdentity` holds all of it for one configuration;
a sample adds its prompt and seed.

Everything that keys on images is a function of this record and of nothing else:

- the sample cache's key (:meth:`ConfigIdentity.sample_key`);
- the reference set's hash (:func:`reference_inputs`): the suite-side part, known
  before anything loads, with the pipeline's content checked against the manifest's
  ``pipeline_fingerprint`` once it is loaded (:meth:`PipelineIdentity.digest`);
- results' provenance: each configuration's ``identity`` in results.json.

Nothing else lists generation settings: a new field of ``Generation`` or of a kind's
options is part of every key at once, and ``tests/test_identity.py`` walks the suite
schema to fail on a key that changes images but leaves the identity unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# 2: every Generation field (frames included), the pipeline's component configurations, the kind's packages
IDENTITY_VERSION = 2


def digest(parts: Any) -> str:
    """sha256 of a JSON-ready value, keys sorted."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class PipelineIdentity:
    """What the suite's pipeline is: where it comes from, and (once loaded) what it holds.

    ``weights`` is the weights' fingerprint (their bytes for built-ins; file names and sizes
    for checkpoints on disk, where hashing gigabytes on every run would cost too much);
    ``components`` a digest of each component that is not a module (the scheduler's
    configuration, a tokenizer's vocabulary), which no weight fingerprint sees.
    """

    source: Mapping[str, Any]
    weights: str = ""
    components: Mapping[str, str] = field(default_factory=dict)

    def digest(self) -> str:
        """The pipeline's content (weights and component configurations): a manifest's ``pipeline_fingerprint``."""
        return digest({"weights": self.weights, "components": dict(self.components)})

    def to_dict(self) -> dict[str, Any]:
        return {"source": dict(self.source), "weights": self.weights, "components": dict(self.components)}


@dataclass(frozen=True)
class Environment:
    """Where a configuration runs: what numbers depend on besides the inputs."""

    packages: Mapping[str, str]  # the core libraries and the kind's own packages, with their versions
    device_class: str
    numerics: Mapping[str, Any] = field(default_factory=dict)  # e.g. the CPU's half-precision path

    def to_dict(self) -> dict[str, Any]:
        return {"packages": dict(self.packages), "device_class": self.device_class, "numerics": dict(self.numerics)}


@dataclass(frozen=True)
class ConfigIdentity:
    """Everything one configuration's images depend on, but each sample's prompt and seed."""

    pipeline: PipelineIdentity
    generation: Mapping[str, Any]  # every Generation field
    kind: str
    options: Mapping[str, Any]
    files: Mapping[str, Any]  # fingerprints of files the configuration reads (ConfigKind.cache_inputs)
    batch_size: int
    environment: Environment

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": IDENTITY_VERSION,
            "pipeline": self.pipeline.to_dict(),
            "generation": dict(self.generation),
            "kind": self.kind,
            "options": self.options,
            "files": dict(self.files),
            "batch_size": self.batch_size,
            "environment": self.environment.to_dict(),
        }

    def digest(self) -> str:
        return digest(self.to_dict())

    def sample_key(self, prompt: str, seed: int) -> str:
        """The sample cache's key of one (prompt, seed) of this configuration."""
        return digest({"config": self.digest(), "prompt": prompt, "seed": seed})


def file_fingerprint(path: str | Path | None) -> str | None:
    """Size and modification time (cheap for multi-GB checkpoints); ``None`` when no path, ``"absent"`` when missing."""
    if path is None:
        return None
    target = Path(path)
    if not target.exists():
        return "absent"
    stat = target.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def content_fingerprint(path: str | Path | None) -> str | None:
    """sha256 of a small file's bytes (range files, transform modules)."""
    if path is None:
        return None
    target = Path(path)
    if not target.is_file():
        return "absent"
    return hashlib.sha256(target.read_bytes()).hexdigest()


def generation_inputs(generation: Any) -> dict[str, Any]:
    """Every field of a :class:`~harness.samples.Generation`, by name."""
    return {f.name: getattr(generation, f.name) for f in dataclasses.fields(generation)}


def reference_inputs(
    source: Mapping[str, Any],
    prompts: tuple[str, ...],
    seeds: tuple[int, ...],
    generation: Any,
    kind: str,
    options: Any,
    files: Mapping[str, Any],
) -> dict[str, Any]:
    """What determines a suite's reference images and is known before anything loads: the manifest's ``inputs``,
    whose digest is its ``reference_hash``. Generation settings stand at the top level (``frames 9 -> 5`` when one
    changes); the pipeline's content is checked apart, against ``pipeline_fingerprint``."""
    return {
        "identity": IDENTITY_VERSION,
        "pipeline": dict(source),
        "prompts": list(prompts),
        "seeds": list(seeds),
        **generation_inputs(generation),
        "reference_config": {"kind": kind, "options": options, "files": dict(files)},
    }


def weights_digest(modules: dict[str, Any]) -> str:
    """A sha256 over every parameter and buffer (name, dtype, shape, bytes) of the given modules."""
    import torch

    digest = hashlib.sha256()
    for component in sorted(modules):
        module = modules[component]
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(f"{component}.{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            data = tensor.detach().to("cpu").contiguous()
            digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def component_digests(pipe: Any) -> dict[str, str]:
    """A digest of each component that is not a torch module: a scheduler's class and configuration, a tokenizer's
    class, vocabulary and special tokens; anything else by its class. Modules are in the weights fingerprint."""
    import torch

    found: dict[str, str] = {}
    for name, component in sorted(pipe.components.items()):
        if component is None or isinstance(component, torch.nn.Module):
            continue
        described: dict[str, Any] = {"class": type(component).__name__}
        config = getattr(component, "config", None)
        if isinstance(config, Mapping):
            described["config"] = {k: v for k, v in config.items() if not k.startswith("_")}
        vocabulary = getattr(component, "get_vocab", None)
        if callable(vocabulary):
            described["vocab"] = digest(sorted(vocabulary().items()))
            described["special"] = sorted(str(token) for token in getattr(component, "all_special_tokens", []))
            described["max_length"] = getattr(component, "model_max_length", None)
        found[name] = digest(described)
    return found
