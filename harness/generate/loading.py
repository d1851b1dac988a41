"""Loading a suite's pipeline once per run (float32, on the CPU), and fingerprinting what it holds.

A built-in is built (or loaded from the weights its plug-in ships); a hub id, a local
folder or a single-file checkpoint loads through diffusers. Its fingerprint is the digest
of its :class:`~harness.identity.PipelineIdentity`: the weights (their bytes for
built-ins, file names and sizes on disk) and every other component's configuration.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import Where
from harness.identity import PipelineIdentity, component_digests, weights_digest
from harness.pipelines.family import Family, LoadedPipeline, made
from harness.plan.source import DEFAULT_SINGLE_FILE_FAMILY, PipelineSource, check_available

if TYPE_CHECKING:
    from harness.registry import Registry


def load_pipeline(source: PipelineSource, where: Where, registry: Registry) -> LoadedPipeline:
    """Load ``source`` in float32 on the CPU."""
    import diffusers  # imported here so its loading bars can be switched off before any load
    import torch

    from harness.environment import quiet_libraries

    quiet_libraries()
    check_available(source, where)
    start = time.perf_counter()
    family: Family
    if source.kind == "builtin":
        builtin = registry.builtins[source.location]
        pipe = builtin.build()
        family = registry.families[source.family]() if source.family else builtin.family()
    elif source.kind == "object":  # handed to the Python API (harness.api): a pipeline, or a function making one
        pipe = made(registry.objects[source.location])
        family = registry.families[source.family]() if source.family else registry.family_for_class(type(pipe).__name__)
    elif source.kind == "single_file":
        import diffusers

        family = registry.families[source.family or DEFAULT_SINGLE_FILE_FAMILY]()
        pipeline_class = getattr(diffusers, family.pipeline_class)
        try:
            pipe = pipeline_class.from_single_file(
                source.location, config=source.config, local_files_only=True, torch_dtype=torch.float32
            )
        except (OSError, ValueError) as error:
            raise where.error("pipeline", f"cannot load single-file checkpoint {source.location}: {error}") from None
    else:
        from diffusers import DiffusionPipeline

        try:
            pipe = DiffusionPipeline.from_pretrained(
                source.location, torch_dtype=torch.float32, local_files_only=source.kind == "local" or None
            )
        except Exception as error:  # missing files, network errors while downloading: the user's input to fix
            if not isinstance(error, OSError | ValueError) and not type(error).__module__.startswith(
                ("huggingface_hub", "requests", "httpx", "urllib3")
            ):
                raise
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise where.error(
                "pipeline",
                f"cannot load {source.describe()}: {first} (place the missing file there, or run "
                f"`hf download {source.location}` where there is network, and rerun)",
            ) from None
        family = registry.families[source.family]() if source.family else registry.family_for_class(type(pipe).__name__)
    pipe.set_progress_bar_config(disable=True)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # built modules start in training mode: dropout would make every run differ
    seconds = time.perf_counter() - start
    identity = PipelineIdentity(source.to_dict(), fingerprint_pipeline(pipe, source), component_digests(pipe))
    return LoadedPipeline(pipe, family, source, identity.digest(), seconds, identity)


def fingerprint_pipeline(pipe: Any, source: PipelineSource) -> str:
    """What identifies the weights: their bytes for built-ins, file names and sizes for files on disk.

    Hashing gigabytes of real checkpoints on every run is too slow; the listing of file
    names and sizes changes whenever a weight file is replaced by a different one.
    """
    import torch

    if source.kind in ("builtin", "object"):  # built in memory: hash the weights themselves
        modules = {k: v for k, v in pipe.components.items() if isinstance(v, torch.nn.Module)}
        return weights_digest(modules)
    root = Path(source.location)
    if source.kind == "hub":
        from huggingface_hub import snapshot_download

        root = Path(snapshot_download(source.location, local_files_only=True))
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    listing = [(str(p.relative_to(root.parent if root.is_file() else root)), p.stat().st_size) for p in files]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()
