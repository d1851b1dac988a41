"""The shapes world in other architectures: FLUX.1, SD3.x, SDXL, Sana and PixArt-Σ, trained on the same scenes and
captions, and Wan 2.1 on the moving shapes world's clips.

Each architecture is one module behind :class:`harness.world.families.base.WorldArch`:
the real diffusers classes at a small size, the real scheduler, and the loss that
architecture is trained with. :mod:`harness.world.families.train` trains them.
"""

from __future__ import annotations

from harness.world.families.base import WorldArch


def world_archs() -> dict[str, WorldArch]:
    """Every trained architecture by name (a fresh mapping)."""
    from harness.world.families.flux import FluxWorld
    from harness.world.families.pixart import PixArtWorld
    from harness.world.families.sana import SanaWorld
    from harness.world.families.sd3 import SD3World
    from harness.world.families.sdxl import SDXLWorld
    from harness.world.families.wan import WanWorld

    archs: list[WorldArch] = [FluxWorld(), SD3World(), SDXLWorld(), SanaWorld(), PixArtWorld(), WanWorld()]
    return {arch.name: arch for arch in archs}
