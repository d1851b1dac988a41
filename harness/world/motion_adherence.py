"""Motion adherence in the moving shapes world: does each clip show the named shape's colour moving the named way?

Exact, and only possible in this world (see :mod:`harness.world.motion_oracle`). Prompts
must be motion captions ("a red circle moving left"); the suite is refused otherwise.
Clips arrive as their frames stacked top to bottom; ``frames`` (the suite's unless
given) says where to cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from harness.errors import Where
from harness.metrics.base import ImageMetric
from harness.metrics.video import FRAMES_KEY, split_frames


class MotionAdherence(ImageMetric):
    name: ClassVar[str] = "motion_adherence"
    default_tolerance: ClassVar[Mapping[str, float] | None] = {"max_drop": 0.1}
    unit: ClassVar[str] = ""  # the fraction of clips that pass, 0 to 1
    higher_is_better: ClassVar[bool] = True
    option_keys: ClassVar[Mapping[str, str]] = FRAMES_KEY
    clips: ClassVar[bool] = True  # the suite fills in ``frames``
    summary: ClassVar[str] = (
        "moving shapes world only: 1 if the clip's named colour is in every frame and moves the named way, else 0"
    )

    @classmethod
    def check_prompts(cls, prompts: Sequence[str], where: Where) -> None:
        from harness.world.motion import parse_motion_caption

        for index, prompt in enumerate(prompts):
            if parse_motion_caption(prompt) is None:
                raise where.error(
                    "metrics.motion_adherence",
                    f"prompt {index} ({prompt[:50]!r}) is not a motion caption; motion_adherence needs captions like "
                    "'a red circle moving left'",
                )

    def values_id(self) -> str | None:
        """The oracle's own code and the frame count: exact numpy maths, the same on every device."""
        import hashlib
        from pathlib import Path

        from harness.world import motion, motion_oracle, oracle, scene

        code = b"".join(Path(module.__file__ or "").read_bytes() for module in (motion, motion_oracle, oracle, scene))
        return f"{self.name}|{self.options.get('frames', 1)}|{hashlib.sha256(code).hexdigest()[:16]}"

    def score_images(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        from harness.world.motion_oracle import motion_adherence

        frames = int(self.options.get("frames", 1))
        return [
            motion_adherence(split_frames(clip, frames), prompt) for clip, prompt in zip(images, prompts, strict=True)
        ]
