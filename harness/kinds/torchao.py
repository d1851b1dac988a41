"""``kind = "torchao"`` (optional extra): torchao's ``quantize_`` on pipeline components."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.kinds.base import BuildContext, Notes
from harness.kinds.optional import component_modules, missing_package, probe, weights_mb
from harness.kinds.pipeline import PipelineKind, PipelineOptions
from harness.options import option
from harness.pipelines.family import Family

MODES = ("int8_weight_only", "int4_weight_only", "float8_weight_only", "int8_dynamic")


def config_for(mode: str) -> Any:
    from torchao import quantization as q

    return {
        "int8_weight_only": lambda: q.Int8WeightOnlyConfig(),
        "int4_weight_only": lambda: q.Int4WeightOnlyConfig(),
        "float8_weight_only": lambda: q.Float8WeightOnlyConfig(),
        "int8_dynamic": lambda: q.Int8DynamicActivationInt8WeightConfig(),
    }[mode]()


@dataclass(frozen=True)
class TorchaoOptions:
    mode: str = option("torchao's quantization", default="int8_weight_only", choices=MODES, what="mode")
    components: tuple[str, ...] = option("components or submodules to quantize", nonempty=True, example="['unet']")


class TorchaoKind(PipelineKind):
    name: ClassVar[str] = "torchao"
    packages: ClassVar[tuple[str, ...]] = ("torchao",)
    summary: ClassVar[str] = (
        "torchao quantize_: int8/int4/float8 weight-only or int8 dynamic (optional: pip install torchao)"
    )
    own_options: ClassVar[type] = TorchaoOptions
    example: ClassVar[Mapping[str, Any]] = {"components": ["unet"]}

    def backend_unavailable(self, options: PipelineOptions, device: str) -> str | None:
        missing = missing_package("torchao", "torchao")
        if missing:
            return missing
        from torchao.quantization import quantize_

        mode = options.extra.mode
        return probe(lambda layer: quantize_(layer, config_for(mode)), device, f"torchao {mode}")

    def modify(self, pipe: Any, options: PipelineOptions, context: BuildContext, family: Family, notes: Notes) -> Any:
        from torchao.quantization import quantize_

        extra: TorchaoOptions = options.extra
        pipe.to(context.device)  # torchao packs weights for the device they are on
        sizes = {}
        for name, module in component_modules(pipe, extra.components).items():
            before = weights_mb(module)
            quantize_(module, config_for(extra.mode))
            sizes[name] = {"weights_mb_before": before, "weights_mb_after": weights_mb(module)}
        notes["torchao"] = {"mode": extra.mode, "components": sizes}
        notes["weights_mb"] = round(sum(s["weights_mb_after"] for s in sizes.values()), 3)
        return pipe
