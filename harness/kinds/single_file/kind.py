"""``kind = "single_file"``: a component loaded from an original-layout checkpoint through ``from_single_file``.

The checkpoint is the user's (``file = "..."``) or one the harness exports from the
suite's pipeline with its own diffusers-to-LDM key mapping. Before loading, the key
audit runs diffusers' converter and compares the result with what the model expects;
any missing or shape-mismatched key makes the configuration an ``error`` naming them,
so it never runs with uninitialised weights.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness import atomic
from harness.errors import InputError, Where
from harness.kinds.base import BuildContext, Notes
from harness.kinds.casting import torch_dtype
from harness.kinds.pipeline import PipelineKind, PipelineOptions
from harness.options import option
from harness.pipelines.family import Family

COMPONENTS = ("unet", "vae", "transformer")


@dataclass(frozen=True)
class SingleFileOptions:
    component: str = option("the component loaded from the checkpoint", default="unet", choices=COMPONENTS)
    file: str | None = option(
        "original-layout .safetensors (default: exported by the harness from the suite's pipeline)",
        default=None,
        path=True,
    )


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A safetensors checkpoint as a dict of tensors; unreadable files are input errors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise InputError("single-file checkpoint not found", file=path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"not a readable safetensors checkpoint: {error}", file=path) from None


class SingleFileKind(PipelineKind):
    name: ClassVar[str] = "single_file"
    summary: ClassVar[str] = (
        "a component loaded from an original-layout checkpoint (LDM, SD3, FLUX) with from_single_file, after a key audit"
    )
    own_options: ClassVar[type] = SingleFileOptions
    example: ClassVar[Mapping[str, Any]] = {"component": "unet"}

    def cache_inputs(self, options: PipelineOptions, suite_dir: Path) -> dict[str, Any]:
        from harness.identity import file_fingerprint

        return {**super().cache_inputs(options, suite_dir), "file": file_fingerprint(options.extra.file)}

    def check(self, options: PipelineOptions, where: Where) -> None:
        super().check(options, where)
        if options.extra.file and not Path(options.extra.file).is_file():
            raise where.error("file", f"single-file checkpoint not found: place it at {options.extra.file}")

    def modify(self, pipe: Any, options: PipelineOptions, context: BuildContext, family: Family, notes: Notes) -> Any:
        from safetensors.torch import save_file

        from harness.convert.ldm import component_to_ldm
        from harness.kinds.single_file.audit import ConversionAuditError, audit_checkpoint

        extra: SingleFileOptions = options.extra
        base = context.load_base()
        module = pipe.components.get(extra.component)
        if module is None:
            raise InputError(f"the pipeline has no {extra.component!r} component")
        if extra.file:
            path = Path(extra.file)
            exported = False
        else:
            path = context.cache_dir / "single_file" / f"{base.fingerprint[:20]}-{extra.component}.safetensors"
            if not path.is_file():
                with atomic.replacing(path) as temporary:
                    save_file(component_to_ldm(extra.component, base.pipe.components[extra.component]), str(temporary))
            exported = True
        checkpoint = read_checkpoint(path)
        audit = audit_checkpoint(extra.component, type(module), module.config, checkpoint)
        notes["single_file"] = {"file": str(path), "exported_by_harness": exported, "audit": audit.to_notes()}
        if not audit.ok:
            raise ConversionAuditError(
                f"{extra.component} from {path.name}: {audit.describe()}. Loading would leave these weights "
                "uninitialised; fix the conversion or the checkpoint"
            )
        config_dir = context.cache_dir / "single_file" / f"{base.fingerprint[:20]}-{extra.component}-config"
        if not (config_dir / "config.json").is_file():
            atomic.save_config(module, config_dir)
        start = time.perf_counter()
        loaded = type(module).from_single_file(
            str(path),
            config=str(config_dir),
            local_files_only=True,
            torch_dtype=torch_dtype(options.precision.dtype_of(extra.component)),
        )
        notes["single_file"]["load_s"] = round(time.perf_counter() - start, 3)
        pipe.register_modules(**{extra.component: loaded})
        return pipe
