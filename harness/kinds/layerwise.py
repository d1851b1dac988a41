"""``kind = "layerwise_casting"``: weights stored in float8 and upcast layer by layer (diffusers' layerwise casting).

``enable_layerwise_casting(storage_dtype=float8, compute_dtype=...)`` keeps each layer's
weights in the storage dtype and casts them to the compute dtype (the configuration's
``dtype``) just for that layer's forward call. It halves a bf16 model's weight memory
without any quantization kernel; diffusers skips norms, embeddings and other layers it
knows to be sensitive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.errors import InputError
from harness.kinds.base import BuildContext, Notes
from harness.kinds.optional import component_modules, weights_mb
from harness.kinds.pipeline import PipelineKind, PipelineOptions
from harness.options import option
from harness.pipelines.family import Family

STORAGE = ("float8_e4m3fn", "float8_e5m2")


@dataclass(frozen=True)
class LayerwiseOptions:
    storage_dtype: str = option("dtype the weights are stored in", default=STORAGE[0], choices=STORAGE)
    components: tuple[str, ...] = option(
        "diffusers models to store in float8", nonempty=True, example="['transformer'] or ['unet']"
    )


class LayerwiseCastingKind(PipelineKind):
    name: ClassVar[str] = "layerwise_casting"
    summary: ClassVar[str] = (
        "weights stored in float8, upcast per layer to the compute dtype (diffusers layerwise casting)"
    )
    own_options: ClassVar[type] = LayerwiseOptions
    example: ClassVar[Mapping[str, Any]] = {"components": ["unet"]}

    def modify(self, pipe: Any, options: PipelineOptions, context: BuildContext, family: Family, notes: Notes) -> Any:
        import torch

        extra: LayerwiseOptions = options.extra
        sizes: dict[str, dict[str, Any]] = {}
        for name, module in component_modules(pipe, extra.components).items():
            if not hasattr(module, "enable_layerwise_casting"):
                raise InputError(
                    f"components: {name!r} ({type(module).__name__}) is not a diffusers model; "
                    "layerwise casting applies to diffusers models (unet, transformer, vae)"
                )
            compute = options.precision.dtype_of(name.split(".")[0])
            before = weights_mb(module)
            module.enable_layerwise_casting(
                storage_dtype=getattr(torch, extra.storage_dtype), compute_dtype=getattr(torch, compute)
            )
            sizes[name] = {"weights_mb_before": before, "weights_mb_after": weights_mb(module), "compute": compute}
        notes["layerwise_casting"] = {"storage_dtype": extra.storage_dtype, "components": sizes}
        notes["weights_mb"] = round(sum(s["weights_mb_after"] for s in sizes.values()), 3)
        return pipe
