"""Audit a single-file checkpoint against the model it is loaded into, before loading it.

diffusers converts original-layout keys to its own with converters that skip keys they
do not know, and a model loaded from the result keeps whatever its missing weights
were initialised to (random, or meta tensors). The audit runs the same converter
diffusers' ``from_single_file`` uses and compares its output with the keys and
shapes the model expects: missing, unexpected and shape-mismatched keys, by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SHOWN = 10


@dataclass(frozen=True)
class KeyAudit:
    component: str
    source_keys: int
    converted_keys: int
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.mismatched)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing: {', '.join(self.missing[:SHOWN])}")
        if self.mismatched:
            shown = ", ".join(f"{k} (file {tuple(a)}, model {tuple(b)})" for k, a, b in self.mismatched[:SHOWN])
            parts.append(f"{len(self.mismatched)} shape-mismatched: {shown}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected: {', '.join(self.unexpected[:SHOWN])}")
        return "; ".join(parts) or "all keys present with matching shapes"

    def to_notes(self) -> dict[str, Any]:
        return {
            "source_keys": self.source_keys,
            "converted_keys": self.converted_keys,
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "shape_mismatched": [[k, list(a), list(b)] for k, a, b in self.mismatched],
        }


class ConversionAuditError(RuntimeError):
    """A single-file checkpoint lacks weights the model needs (or has them in the wrong shape)."""


def converter_for(component: str, model_class: Any = None) -> Any:
    """diffusers' own converter for a component (for ``transformer``, chosen by the model class)."""
    from diffusers.loaders import single_file_utils as sfu

    converters = {
        "unet": sfu.convert_ldm_unet_checkpoint,
        "vae": sfu.convert_ldm_vae_checkpoint,
        "SD3Transformer2DModel": sfu.convert_sd3_transformer_checkpoint_to_diffusers,
        "FluxTransformer2DModel": sfu.convert_flux_transformer_checkpoint_to_diffusers,
    }
    name = getattr(model_class, "__name__", "") if component == "transformer" else component
    if name not in converters:
        raise ValueError(f"no single-file audit for component {component!r} {name} (unet, vae, SD3/FLUX transformer)")
    return converters[name]


def audit_checkpoint(
    component: str, model_class: Any, config: Mapping[str, Any], checkpoint: Mapping[str, Any]
) -> KeyAudit:
    """Convert ``checkpoint`` as diffusers does and compare with an empty model built from ``config``."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = model_class.from_config(dict(config))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    converted = converter_for(component, model_class)(checkpoint=dict(checkpoint), config=dict(config))
    got = {k: tuple(v.shape) for k, v in converted.items()}
    missing = tuple(k for k in expected if k not in got)
    unexpected = tuple(k for k in got if k not in expected)
    mismatched = tuple((k, got[k], expected[k]) for k in expected if k in got and got[k] != expected[k])
    return KeyAudit(component, len(checkpoint), len(converted), missing, unexpected, mismatched)
