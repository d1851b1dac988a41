"""Configuration kinds, one per module behind :class:`harness.configs.base.ConfigKind`."""

from __future__ import annotations

from harness.configs.base import ConfigKind


def default_kinds() -> dict[str, ConfigKind]:
    """A fresh mapping of every configuration kind by name (pass it where it is needed)."""
    from harness.configs.int8 import Int8Kind
    from harness.configs.precision import PrecisionKind

    kinds: list[ConfigKind] = [PrecisionKind(), Int8Kind()]
    return {kind.name: kind for kind in kinds}
