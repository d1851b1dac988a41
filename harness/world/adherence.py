"""Prompt adherence in the shapes world: the fraction of named objects in their colour at their position.

Exact, and only possible in this world (see :mod:`harness.world.oracle`). Prompts must be
world captions ("a red circle on the left and a blue square at the top"); the suite is
refused otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from harness.errors import Where
from harness.metrics.base import ImageMetric


class Adherence(ImageMetric):
    name: ClassVar[str] = "adherence"
    default_tolerance: ClassVar[Mapping[str, float] | None] = {"max_drop": 0.05}
    unit: ClassVar[str] = ""  # a fraction of the caption's objects, 0 to 1
    higher_is_better: ClassVar[bool] = True
    summary: ClassVar[str] = (
        "shapes world only: fraction of the caption's objects present in their colour at the named position"
    )

    @classmethod
    def check_prompts(cls, prompts: Sequence[str], where: Where) -> None:
        from harness.world.scene import parse_caption

        for index, prompt in enumerate(prompts):
            if not parse_caption(prompt):
                raise where.error(
                    "metrics.adherence",
                    f"prompt {index} ({prompt[:50]!r}) is not a shapes-world caption; adherence needs captions like "
                    "'a red circle on the left and a blue square at the top'",
                )

    def values_id(self) -> str | None:
        """The oracle's own code: exact numpy maths, the same on every device."""
        import hashlib
        from pathlib import Path

        from harness.world import oracle, scene

        code = b"".join(Path(module.__file__ or "").read_bytes() for module in (oracle, scene))
        return f"{self.name}|{hashlib.sha256(code).hexdigest()[:16]}"

    def score_images(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        from harness.world.oracle import adherence

        return [adherence(image, prompt) for image, prompt in zip(images, prompts, strict=True)]
