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
    evaluator: str = "builtin:tiny"  # the CLIP model (and feature space) metrics default to on this pipeline


def builtin_pipelines() -> dict[str, Builtin]:
    """Every built-in pipeline by name, the core's and the plug-ins' (a fresh mapping; pass it where it is needed)."""
    from harness.pipelines.flux import FluxFamily, build_tiny_flux
    from harness.pipelines.ltx import TinyLTXFamily, build_tiny_ltx
    from harness.pipelines.pixart import PixArtFamily, build_tiny_pixart
    from harness.pipelines.sana import TinySanaFamily, build_tiny_sana
    from harness.pipelines.sd import StableDiffusionFamily, build_tiny_sd
    from harness.pipelines.sd3 import SD3Family, build_tiny_sd3
    from harness.pipelines.sdxl import SDXLFamily, build_tiny_sdxl
    from harness.pipelines.wan import TinyWanFamily, build_tiny_wan
    from harness.plugins import plugin_builtins

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
        Builtin(
            "tiny-flux",
            "random tiny FLUX.1-dev (1 double + 2 single blocks of width 256, CLIP 32 + T5 64, guidance embedding, 64 px)",
            FluxFamily,
            build_tiny_flux,
        ),
        Builtin(
            "tiny-sd3",
            "random tiny SD3.5 (MM-DiT 2 blocks of width 256, two CLIPs 32 + T5 64, 16-channel VAE, 64 px)",
            SD3Family,
            build_tiny_sd3,
        ),
        Builtin(
            "tiny-sdxl",
            "random tiny SDXL (UNet 32/64 with text-time conditioning, two CLIPs; its VAE overflows float16 like SDXL's)",
            SDXLFamily,
            build_tiny_sdxl,
        ),
        Builtin(
            "tiny-pixart",
            "random tiny PixArt-Sigma (DiT 2 blocks of width 256, adaLN-single, T5 64, 64 px)",
            PixArtFamily,
            build_tiny_pixart,
        ),
        Builtin(
            "tiny-wan",
            "random tiny Wan 2.1 text-to-video (3D DiT 2 blocks of width 64, 16-channel causal VAE, T5 32; 4k+1 frames)",
            TinyWanFamily,
            build_tiny_wan,
        ),
        Builtin(
            "tiny-ltx",
            "random tiny LTX-Video (3D DiT 1 block of width 32, 8-channel video VAE, T5 32; 8k+1 frames)",
            TinyLTXFamily,
            build_tiny_ltx,
        ),
    ]
    return {entry.name: entry for entry in (*entries, *plugin_builtins())}
