"""HPSv2 (optional): the Human Preference Score v2, a CLIP fine-tuned on human choices between images.

Score = 100 x cosine(image, prompt) under the HPSv2 checkpoint (Wu et al., 2023): an
open_clip ViT-H-14 whose weights are replaced by ``HPS_v2.1_compressed.pt`` (a
``{"state_dict": ...}`` file, loaded by open_clip as the hpsv2 package does). The hpsv2
package prints the raw cosine (about 0.27); papers print it x 100 (27), as here.

The checkpoint comes from ``checkpoint = PATH`` or the local hub cache
(``hf download xswu/HPSv2 HPS_v2.1_compressed.pt``). Without it the metric is skipped
with that reason; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from harness.metrics.base import ImageMetric
from harness.metrics.clip_model import load_clip, values_id
from harness.metrics.clip_score import clip_scores
from harness.options import option

REPO, FILE = "xswu/HPSv2", "HPS_v2.1_compressed.pt"
ARCH = "ViT-H-14"


@dataclass(frozen=True)
class HPSv2Options:
    checkpoint: str | None = option(f"path of {FILE} (default: the local hub cache of {REPO})", default=None, path=True)
    arch: str = option("open_clip architecture of the checkpoint", default=ARCH)


class HPSv2(ImageMetric):
    name: ClassVar[str] = "hpsv2"
    unit: ClassVar[str] = ""  # 100 x cosine similarity
    higher_is_better: ClassVar[bool] = True
    optional: ClassVar[bool] = True
    summary: ClassVar[str] = "HPSv2 human-preference score of each image for its prompt (optional; open_clip, x 100)"
    Options: ClassVar[type] = HPSv2Options

    def checkpoint(self) -> Path | None:
        if self.options.get("checkpoint"):
            return Path(self.options["checkpoint"])
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(REPO, FILE)
        return Path(found) if isinstance(found, str) else None

    def unavailable(self) -> str | None:
        import open_clip

        arch = self.options.get("arch", ARCH)
        if arch not in open_clip.list_models():
            return f"HPSv2: open_clip has no architecture {arch!r}"
        path = self.checkpoint()
        if path is None:
            return (
                f"HPSv2 needs {FILE}: run `hf download {REPO} {FILE}` where there is network, "
                "or set checkpoint = its path"
            )
        if not path.is_file():
            return f"HPSv2 checkpoint not found: place {FILE} at {path}"
        return None

    def _clip_options(self) -> dict[str, str]:
        return {"model": self.options.get("arch", ARCH), "pretrained": str(self.checkpoint())}

    def values_id(self) -> str | None:
        return values_id(self.name, self._clip_options(), self.device, self.evaluators)

    def score_images(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        clip = load_clip(self._clip_options(), self.device, self.evaluators)
        return clip_scores(clip, images, prompts)
