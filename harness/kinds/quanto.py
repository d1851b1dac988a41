"""``kind = "quanto"`` (optional extra): optimum-quanto weight (and optional activation) quantization."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness import tomlread
from harness.errors import Where
from harness.kinds.base import BuildContext, Notes
from harness.kinds.optional import component_modules, missing_package, parse_components, probe, weights_mb
from harness.kinds.pipeline import PipelineKind, PipelineOptions
from harness.pipelines.family import Family

WEIGHTS = ("qint8", "qint4", "qint2", "qfloat8")
ACTIVATIONS = ("none", "qint8", "qfloat8")


@dataclass(frozen=True)
class QuantoOptions:
    weights: str
    activations: str
    components: tuple[str, ...]


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
    summary: ClassVar[str] = (
        "optimum-quanto: qint8/qint4/qint2/qfloat8 weights, optional activations (optional: pip install optimum-quanto)"
    )
    extra_keys: ClassVar[Mapping[str, str]] = {
        "weights": " | ".join(WEIGHTS),
        "activations": " | ".join(ACTIVATIONS) + " (default none; with activations, calibration is not run)",
        "components": "components or submodules to quantize, e.g. ['unet']",
    }

    def parse_extra(self, table: Mapping[str, Any], where: Where, suite_dir: Path) -> QuantoOptions:
        weights = tomlread.get_choice(table, "weights", WEIGHTS, where, "qint8")
        activations = tomlread.get_choice(table, "activations", ACTIVATIONS, where, "none")
        return QuantoOptions(weights, activations, parse_components(table, where))

    def unavailable(self, options: PipelineOptions, device: str) -> str | None:
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
