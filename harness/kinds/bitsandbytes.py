"""``kind = "bitsandbytes"`` (optional extra, CUDA): NF4/FP4 or LLM.int8() weights through the libraries' loaders.

This is how many users run FLUX.1 on small GPUs: ``from_pretrained(...,
quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4"))``.
The kind takes that same path: each named component of the reference pipeline is saved
to a temporary folder and loaded back with diffusers' ``BitsAndBytesConfig`` (a diffusers
model: the denoiser, the VAE) or transformers' (a text encoder), so the weights are
quantized by the quantizer users run, not by a copy of it. diffusers' and transformers'
bitsandbytes quantizers need a GPU ("No GPU found"): on a CPU the configuration is
skipped with that reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import InputError
from harness.kinds.base import BuildContext, Notes, scratch_folder
from harness.kinds.casting import torch_dtype
from harness.kinds.optional import missing_package, weights_mb
from harness.kinds.pipeline import PipelineKind, PipelineOptions
from harness.options import option
from harness.pipelines.family import Family

MODES = ("nf4", "fp4", "int8")


@dataclass(frozen=True)
class BitsAndBytesOptions:
    mode: str = option("nf4 | fp4 (4-bit weights) | int8 (LLM.int8())", default="nf4", choices=MODES)
    double_quant: bool = option(
        "4-bit: quantize the quantization constants too (QLoRA's double quantization)", default=False
    )
    components: tuple[str, ...] = option(
        "pipeline components to load quantized (diffusers or transformers models)",
        nonempty=True,
        example="['transformer']",
    )


def quantization_config(extra: BitsAndBytesOptions, compute_dtype: str, library: str) -> Any:
    """The library's own ``BitsAndBytesConfig`` for ``extra``."""
    import diffusers
    import transformers

    config_class: Any = (diffusers if library == "diffusers" else transformers).BitsAndBytesConfig
    if extra.mode == "int8":
        return config_class(load_in_8bit=True)
    return config_class(
        load_in_4bit=True,
        bnb_4bit_quant_type=extra.mode,
        bnb_4bit_compute_dtype=torch_dtype(compute_dtype),
        bnb_4bit_use_double_quant=extra.double_quant,
    )


class BitsAndBytesKind(PipelineKind):
    name: ClassVar[str] = "bitsandbytes"
    packages: ClassVar[tuple[str, ...]] = ("bitsandbytes",)
    summary: ClassVar[str] = (
        "bitsandbytes NF4/FP4/int8 weights via diffusers' and transformers' BitsAndBytesConfig (CUDA; optional: "
        "pip install bitsandbytes)"
    )
    own_options: ClassVar[type] = BitsAndBytesOptions
    example: ClassVar[Mapping[str, Any]] = {"mode": "nf4", "components": ["transformer"]}

    def backend_unavailable(self, options: PipelineOptions, device: str) -> str | None:
        missing = missing_package("bitsandbytes", "bitsandbytes")
        if missing:
            return missing
        if not device.startswith("cuda"):
            return (
                f"bitsandbytes through diffusers' and transformers' quantizers needs a CUDA GPU (this run is on "
                f"{device}; their loaders stop with 'No GPU found')"
            )
        return None

    def modify(self, pipe: Any, options: PipelineOptions, context: BuildContext, family: Family, notes: Notes) -> Any:
        extra: BitsAndBytesOptions = options.extra
        folder = scratch_folder(context, "bitsandbytes", notes)
        sizes: dict[str, Any] = {}
        try:
            for name in extra.components:
                module = pipe.components.get(name)
                if module is None or not hasattr(module, "save_pretrained"):
                    raise InputError(
                        f"components: {name!r} is not a model component of this pipeline "
                        f"(components: {', '.join(k for k, v in pipe.components.items() if hasattr(v, 'save_pretrained'))})"
                    )
                before = weights_mb(module)
                loaded = self._reload(module, folder / name, extra, options.precision.dtype_of(name), context.device)
                setattr(pipe, name, loaded)
                sizes[name] = {"weights_mb_before": before, "weights_mb_after": weights_mb(loaded)}
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        shutil.rmtree(folder, ignore_errors=True)  # loaded into memory: the saved copy is no longer needed
        notes["bitsandbytes"] = {"mode": extra.mode, "double_quant": extra.double_quant, "components": sizes}
        notes["weights_mb"] = round(sum(s["weights_mb_after"] for s in sizes.values()), 3)
        return pipe

    @staticmethod
    def _reload(module: Any, folder: Path, extra: BitsAndBytesOptions, dtype: str, device: str) -> Any:
        library = "diffusers" if type(module).__module__.startswith("diffusers") else "transformers"
        module.save_pretrained(folder)
        config = quantization_config(extra, dtype, library)
        return type(module).from_pretrained(
            folder, quantization_config=config, torch_dtype=torch_dtype(dtype), device_map={"": device}
        )

    def place(self, pipe: Any, options: PipelineOptions, context: BuildContext) -> Any:
        # bitsandbytes modules are on the GPU already and refuse .to(); place only the others
        quantized = set(options.extra.components)
        for name, value in pipe.components.items():
            if name not in quantized and hasattr(value, "to"):
                value.to(context.device)
        return pipe
