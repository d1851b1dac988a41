"""Configuration kinds, one per module behind :class:`harness.configs.base.ConfigKind`."""

from __future__ import annotations

from harness.configs.base import ConfigKind


def default_kinds() -> dict[str, ConfigKind]:
    """A fresh mapping of every configuration kind by name (pass it where it is needed)."""
    from harness.configs.command import CommandKind
    from harness.configs.gguf import GGUFKind
    from harness.configs.int8 import Int8Kind
    from harness.configs.layerwise import LayerwiseCastingKind
    from harness.configs.precision import PrecisionKind
    from harness.configs.quanto import QuantoKind
    from harness.configs.single_file import SingleFileKind
    from harness.configs.streaming import StreamingKind
    from harness.configs.torchao import TorchaoKind

    kinds: list[ConfigKind] = [
        PrecisionKind(),
        Int8Kind(),
        GGUFKind(),
        SingleFileKind(),
        StreamingKind(),
        LayerwiseCastingKind(),
        TorchaoKind(),
        QuantoKind(),
        CommandKind(),
    ]
    return {kind.name: kind for kind in kinds}
