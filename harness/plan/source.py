"""Where a suite's pipeline comes from: ``pipeline = "..."`` parsed, and checked for files without loading.

One path serves every source: a built-in pipeline, a hub id (from the local hub cache
when offline), a local diffusers folder, or a single-file checkpoint with a local config
folder. A missing file is an :class:`InputError` that says what to place where. Loading
is :mod:`harness.generate.loading`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import Where, unknown

if TYPE_CHECKING:
    from harness.registry import Registry

SOURCE_KINDS = ("builtin", "object", "hub", "local", "single_file")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
HUB_TIMEOUT_S = 10.0  # asking the hub whether a model exists, when it is not cached
DEFAULT_SINGLE_FILE_FAMILY = "sd"  # a checkpoint file without family = "...": SD1.x, the common case
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class PipelineSource:
    """A parsed ``pipeline = "..."`` value."""

    kind: str
    location: str
    family: str | None = None
    config: str | None = None

    def describe(self) -> str:
        if self.kind in ("builtin", "object"):
            return f"{self.kind}:{self.location}"
        if self.kind == "hub":
            return f"hub:{self.location}"
        return self.location

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "location": self.location, "family": self.family, "config": self.config}


def parse_source(
    text: str, where: Where, base_dir: Path, family: str | None, config: str | None, registry: Registry
) -> PipelineSource:
    """Interpret a ``pipeline`` value.

    ``builtin:NAME``; ``hub:org/name`` or a bare ``org/name``; a path (absolute, or
    starting with ``./``, ``../`` or ``~``, or naming a checkpoint file) is a local
    folder or a single-file checkpoint, relative to the suite's folder.
    """
    families = registry.families
    if family is not None and family not in families:
        raise where.error("family", unknown("pipeline family", family, families))
    if text.startswith("object:"):  # a pipeline handed to the Python API (harness.api)
        name = text.removeprefix("object:")
        if name not in registry.objects:
            raise where.error("pipeline", unknown("pipeline object", name, registry.objects) + " (harness.api)")
        return PipelineSource("object", name, family)
    if text.startswith("builtin:"):
        name = text.removeprefix("builtin:")
        builtins = registry.builtins
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
        chosen = family or DEFAULT_SINGLE_FILE_FAMILY
        if not families[chosen].single_file:
            loaders = sorted(name for name, known in families.items() if known.single_file)
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
    if source.kind in ("builtin", "object"):
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
