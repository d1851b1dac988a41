"""The built-in pipelines: constructed deterministically in code, needing no files or network."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.pipelines.family import Family


@dataclass(frozen=True)
class Builtin:
    """A named pipeline the harness can build offline."""

    name: str
    description: str
    family: Callable[[], Family]
    build: Callable[[], Any]


def builtin_pipelines() -> dict[str, Builtin]:
    """Every built-in pipeline by name (a fresh mapping; pass it where it is needed)."""
    from harness.pipelines.sana import TinySanaFamily, build_tiny_sana
    from harness.pipelines.sd import StableDiffusionFamily, build_tiny_sd

    entries = [
        Builtin(
            "tiny-sd",
            "random tiny Stable Diffusion (UNet 32/64, CLIP text 32, 64 px)",
            StableDiffusionFamily,
            build_tiny_sd,
        ),
        Builtin(
            "tiny-sd-lcm",
            "tiny-sd with an LCM-style UNet (time_cond_proj_dim=32, has time_embedding.cond_proj)",
            StableDiffusionFamily,
            lambda: build_tiny_sd(time_cond_proj_dim=32),
        ),
        Builtin(
            "tiny-sana", "random tiny Sana (DiT 2x16 heads, DC-AE, Gemma2 32, 64 px)", TinySanaFamily, build_tiny_sana
        ),
    ]
    return {entry.name: entry for entry in entries}
