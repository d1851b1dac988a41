"""Configuration kinds, one per module behind :class:`harness.kinds.base.ConfigKind`."""

from __future__ import annotations

from harness.kinds.base import ConfigKind


def default_kinds() -> dict[str, ConfigKind]:
    """A fresh mapping of every configuration kind by name (pass it where it is needed)."""
    from harness.kinds.command import CommandKind
    from harness.kinds.gguf.kind import GGUFKind
    from harness.kinds.int8.kind import Int8Kind
    from harness.kinds.layerwise import LayerwiseCastingKind
    from harness.kinds.precision import PrecisionKind
    from harness.kinds.quanto import QuantoKind
    from harness.kinds.single_file.kind import SingleFileKind
    from harness.kinds.streaming.kind import StreamingKind
    from harness.kinds.torchao import TorchaoKind

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
