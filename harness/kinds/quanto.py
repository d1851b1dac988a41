"""``kind = "quanto"`` (optional extra): optimum-quanto weight (and optional activation) quantization."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.kinds.base import BuildContext, Notes
from harness.kinds.optional import component_modules, missing_package, probe, weights_mb
from harness.kinds.pipeline import PipelineKind, PipelineOptions
from harness.options import option
from harness.pipelines.family import Family

WEIGHTS = ("qint8", "qint4", "qint2", "qfloat8")
ACTIVATIONS = ("none", "qint8", "qfloat8")


@dataclass(frozen=True)
class QuantoOptions:
    weights: str = option("weight type", default="qint8", choices=WEIGHTS)
    activations: str = option(
        "activation type (with activations, calibration is not run)", default="none", choices=ACTIVATIONS
    )
    components: tuple[str, ...] = option("components or submodules to quantize", nonempty=True, example="['unet']")


def _quantize(module: Any, weights: str, activations: str) -> None:
    from optimum import quanto

    quanto.quantize(
        module,
        weights=getattr(quanto, weights),
        activations=None if activations == "none" else getattr(quanto, activations),
    )
    quanto.freeze(module)


class QuantoKind(PipelineKind):
    name: ClassVar[str] = "quanto"
    packages: ClassVar[tuple[str, ...]] = ("optimum-quanto",)
    summary: ClassVar[str] = (
        "optimum-quanto: qint8/qint4/qint2/qfloat8 weights, optional activations (optional: pip install optimum-quanto)"
    )
    own_options: ClassVar[type] = QuantoOptions
    example: ClassVar[Mapping[str, Any]] = {"weights": "qint8", "components": ["unet"]}

    def backend_unavailable(self, options: PipelineOptions, device: str) -> str | None:
        missing = missing_package("optimum.quanto", "optimum-quanto")
        if missing:
            return missing
        extra: QuantoOptions = options.extra
        return probe(
            lambda layer: _quantize(layer, extra.weights, extra.activations), device, f"quanto {extra.weights}"
        )

    def modify(self, pipe: Any, options: PipelineOptions, context: BuildContext, family: Family, notes: Notes) -> Any:
        extra: QuantoOptions = options.extra
        sizes = {}
        for name, module in component_modules(pipe, extra.components).items():
            before = weights_mb(module)
            _quantize(module, extra.weights, extra.activations)
            sizes[name] = {"weights_mb_before": before, "weights_mb_after": weights_mb(module)}
        notes["quanto"] = {"weights": extra.weights, "activations": extra.activations, "components": sizes}
        notes["weights_mb"] = round(sum(s["weights_mb_after"] for s in sizes.values()), 3)
        return pipe
