"""ImageReward (optional): a BLIP-based reward model trained on human preferences (Xu et al., NeurIPS 2023).

Runs through the ``image-reward`` package (``import ImageReward``) with its own
``load`` and ``score``: one value per image for its prompt (roughly standard-normal;
higher is preferred). The package, ``ImageReward.pt`` and ``med_config.json`` (from
huggingface.co/THUDM/ImageReward) and BLIP's ``bert-base-uncased`` tokenizer must be on
the machine; without any of them the metric is skipped with the reason, and nothing
is downloaded while offline.

image-reward 1.5 (the current release) does not import with transformers 5: its BLIP code
imports ``apply_chunking_to_forward`` from ``transformers.modeling_utils``, which is gone.
Where that happens the metric is skipped with that error as the reason.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.metrics.base import ImageMetric
from harness.options import option

DEFAULT_ROOT = Path.home() / ".cache" / "ImageReward"  # the package's own download folder


@dataclass(frozen=True)
class ImageRewardOptions:
    folder: str = option("folder holding ImageReward.pt and med_config.json", default=str(DEFAULT_ROOT), path=True)


class ImageRewardMetric(ImageMetric):
    name: ClassVar[str] = "image_reward"
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    optional: ClassVar[bool] = True
    summary: ClassVar[str] = "ImageReward human-preference reward of each image for its prompt (optional; image-reward)"
    Options: ClassVar[type] = ImageRewardOptions

    def __init__(self, options: Mapping[str, Any] | None = None, context: Any = None):
        super().__init__(options, context)
        self._model: Any = None

    def _files(self) -> tuple[Path, Path]:
        folder = Path(self.options.get("folder", DEFAULT_ROOT))
        return folder / "ImageReward.pt", folder / "med_config.json"

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("ImageReward") is None:
            return "ImageReward needs the image-reward package: pip install image-reward"
        try:
            import ImageReward  # noqa: F401
        except Exception as error:  # the package imports BLIP code written for transformers 4
            return (
                f"the image-reward package is installed but does not import here ({type(error).__name__}: {error}); "
                "image-reward 1.5 needs transformers 4.x"
            )
        for path in self._files():
            if not path.is_file():
                return f"ImageReward needs {path.name} from huggingface.co/THUDM/ImageReward: place it at {path}"
        from huggingface_hub import constants, try_to_load_from_cache

        if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache("bert-base-uncased", "vocab.txt"), str):
            return "ImageReward's BLIP needs the bert-base-uncased tokenizer: run `hf download bert-base-uncased`"
        return None

    def score_images(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        from PIL import Image

        if self._model is None:
            import ImageReward

            checkpoint, med_config = self._files()
            self._model = ImageReward.load(str(checkpoint), device=self.device, med_config=str(med_config))
        scores = [0.0] * len(images)
        for prompt in dict.fromkeys(prompts):
            indices = [i for i, p in enumerate(prompts) if p == prompt]
            values = self._model.score(prompt, [Image.fromarray(images[i]) for i in indices])
            for index, value in zip(indices, np.atleast_1d(values).tolist(), strict=True):
                scores[index] = float(value)
        return scores
