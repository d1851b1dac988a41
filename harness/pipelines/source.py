"""Where a suite's pipeline comes from, and loading it.

One path serves every source: a built-in tiny model, a hub id (from the local hub
cache when offline), a local diffusers folder, or a single-file checkpoint with a
local config folder. A missing file is an :class:`InputError` that says what to
place where.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import Where, unknown
from harness.pipelines.builtin import builtin_pipelines
from harness.pipelines.family import Family
from harness.pipelines.flux import FluxFamily
from harness.pipelines.ltx import LTXFamily
from harness.pipelines.pixart import PixArtFamily
from harness.pipelines.sana import SanaFamily
from harness.pipelines.sd import StableDiffusionFamily
from harness.pipelines.sd3 import SD3Family
from harness.pipelines.sdxl import SDXLFamily
from harness.pipelines.wan import WanFamily

SOURCE_KINDS = ("builtin", "hub", "local", "single_file")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
HUB_TIMEOUT_S = 10.0  # asking the hub whether a model exists, when it is not cached
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def families() -> dict[str, type[Family]]:
    """The known pipeline families by name."""
    known = (
        StableDiffusionFamily,
        SDXLFamily,
        SD3Family,
        FluxFamily,
        PixArtFamily,
        SanaFamily,
        WanFamily,
        LTXFamily,
        Family,
    )
    return {family.name: family for family in known}


def family_for_class(class_name: str) -> Family:
    """Pick the family from a pipeline class name (``model_index.json``'s ``_class_name``)."""
    for family in families().values():
        if family.pipeline_class == class_name:
            return family()
    return Family()


@dataclass(frozen=True)
class PipelineSource:
    """A parsed ``pipeline = "..."`` value."""

    kind: str
    location: str
    family: str | None = None
    config: str | None = None

    def describe(self) -> str:
        if self.kind == "builtin":
            return f"builtin:{self.location}"
        if self.kind == "hub":
            return f"hub:{self.location}"
        return self.location

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "location": self.location, "family": self.family, "config": self.config}


def parse_source(text: str, where: Where, base_dir: Path, family: str | None, config: str | None) -> PipelineSource:
    """Interpret a ``pipeline`` value.

    ``builtin:NAME``; ``hub:org/name`` or a bare ``org/name``; a path (absolute, or
    starting with ``./``, ``../`` or ``~``, or naming a checkpoint file) is a local
    folder or a single-file checkpoint, relative to the suite's folder.
    """
    if family is not None and family not in families():
        raise where.error("family", unknown("pipeline family", family, families()))
    if text.startswith("builtin:"):
        name = text.removeprefix("builtin:")
        builtins = builtin_pipelines()
        if name not in builtins:
            raise where.error("pipeline", unknown("built-in pipeline", name, builtins))
        return PipelineSource("builtin", name, family)
    looks_like_path = text.startswith(("/", "./", "../", "~")) or text.endswith(SINGLE_FILE_SUFFIXES)
    if text.startswith("hub:") or (not looks_like_path and _HUB_ID.match(text)):
        return PipelineSource("hub", text.removeprefix("hub:"), family)
    if not looks_like_path:
        raise where.error(
            "pipeline",
            f"cannot tell what {text!r} is; write builtin:NAME, hub:org/name, or a path starting with ./ or /",
        )
    path = (base_dir / Path(text).expanduser()).resolve()
    if path.suffix in SINGLE_FILE_SUFFIXES:
        config_path = None
        if config is not None:
            config_path = str((base_dir / Path(config).expanduser()).resolve())
        chosen = family or "sd"
        if not families()[chosen].single_file:
            loaders = sorted(name for name, known in families().items() if known.single_file)
            raise where.error(
                "pipeline",
                f"diffusers cannot load a whole {chosen!r} pipeline from one checkpoint file (it can for "
                f"{', '.join(loaders)}): point pipeline at a diffusers folder, or load the file as one component "
                "(kind = 'single_file' or 'gguf')",
            )
        return PipelineSource("single_file", str(path), chosen, config_path)
    return PipelineSource("local", str(path), family)


def check_available(source: PipelineSource, where: Where) -> None:
    """Raise an :class:`InputError` naming what to place where, without loading any weights."""
    if source.kind == "builtin":
        return
    if source.kind == "local":
        path = Path(source.location)
        if not (path / "model_index.json").is_file():
            raise where.error(
                "pipeline",
                f"no diffusers pipeline folder at {path}: place a folder with model_index.json and one "
                "subfolder per component there (as written by save_pretrained)",
            )
        return
    if source.kind == "single_file":
        path = Path(source.location)
        if not path.is_file():
            raise where.error("pipeline", f"checkpoint file not found: place the single-file checkpoint at {path}")
        if source.config is None:
            raise where.error(
                "pipeline_config",
                "a single-file checkpoint needs pipeline_config = a local diffusers folder holding the "
                "component configs (model_index.json, unet/config.json, ...); offline it cannot be fetched",
            )
        if not (Path(source.config) / "model_index.json").is_file():
            raise where.error("pipeline_config", f"no model_index.json in {source.config}")
        return
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(source.location, local_files_only=True)
        return  # every file is in the local hub cache
    except LocalEntryNotFoundError:
        pass
    fix = (
        f"run `hf download {source.location}` where there is network (it fills {constants.HF_HUB_CACHE}), "
        "or point pipeline at a local folder"
    )
    if constants.HF_HUB_OFFLINE:
        raise where.error(
            "pipeline", f"hub model {source.location!r} is not in the local hub cache and HF_HUB_OFFLINE is set: {fix}"
        )
    from huggingface_hub import HfApi

    try:  # online: from_pretrained will download it, if the hub answers and knows the model
        HfApi().model_info(source.location, timeout=HUB_TIMEOUT_S)
    except Exception as error:  # network errors, unknown or gated repositories: all the user's to fix
        raise where.error(
            "pipeline",
            f"hub model {source.location!r} is not in the local hub cache and the hub could not be asked for it "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no answer'}): {fix}",
        ) from None


@dataclass
class LoadedPipeline:
    """A pipeline loaded once per suite (float32, on the CPU); configurations derive copies from it."""

    pipe: Any
    family: Family
    source: PipelineSource
    fingerprint: str
    load_seconds: float


def load_pipeline(source: PipelineSource, where: Where) -> LoadedPipeline:
    """Load ``source`` in float32 on the CPU."""
    import diffusers  # imported here so its loading bars can be switched off before any load
    import torch

    from harness.environment import quiet_libraries

    quiet_libraries()
    check_available(source, where)
    start = time.perf_counter()
    family: Family
    if source.kind == "builtin":
        builtin = builtin_pipelines()[source.location]
        pipe = builtin.build()
        family = families()[source.family]() if source.family else builtin.family()
    elif source.kind == "single_file":
        import diffusers

        family = families()[source.family or "sd"]()
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
        family = families()[source.family]() if source.family else family_for_class(type(pipe).__name__)
    pipe.set_progress_bar_config(disable=True)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # built modules start in training mode: dropout would make every run differ
    seconds = time.perf_counter() - start
    return LoadedPipeline(pipe, family, source, fingerprint_pipeline(pipe, source), seconds)


def source_fingerprint(source: PipelineSource) -> str:
    """A fingerprint that needs no loading: built-ins by name and harness version, files by listing."""
    if source.kind == "builtin":
        from harness import __version__

        return f"builtin:{source.location}:harness-{__version__}"
    return fingerprint_pipeline(None, source)


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


def fingerprint_pipeline(pipe: Any, source: PipelineSource) -> str:
    """What identifies the weights: their bytes for built-ins, file names and sizes for files on disk.

    Hashing gigabytes of real checkpoints on every run is too slow; the listing of file
    names and sizes changes whenever a weight file is replaced by a different one.
    """
    import torch

    if source.kind == "builtin":
        modules = {k: v for k, v in pipe.components.items() if isinstance(v, torch.nn.Module)}
        return weights_digest(modules)
    root = Path(source.location)
    if source.kind == "hub":
        from huggingface_hub import snapshot_download

        root = Path(snapshot_download(source.location, local_files_only=True))
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    listing = [(str(p.relative_to(root.parent if root.is_file() else root)), p.stat().st_size) for p in files]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()
