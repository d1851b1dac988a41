"""CLIP score: how well each image matches its prompt, with open_clip.

Score = 100 x cosine(image embedding, text embedding), computed directly (torchmetrics'
CLIPScore breaks with transformers 5). It is not clamped at 0 as torchmetrics does,
so paired differences between configurations stay unbiased. Prompts longer than the
model's context are truncated, and each truncation is recorded as a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.errors import Where
from harness.metrics.base import NO_EVALUATORS, Evaluators, ImageMetric
from harness.metrics.clip_model import (
    check_clip,
    load_clip,
    parse_clip_options,
    random_weights_warning,
    values_id,
)

BATCH = 32


def clip_scores(clip: Any, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
    """100 x cos(image, prompt) per pair, in batches."""
    scores: list[float] = []
    for start in range(0, len(images), BATCH):
        image_features = clip.encode_images(list(images[start : start + BATCH]))
        text_features = clip.encode_prompts(prompts[start : start + BATCH])
        scores.extend((100.0 * (image_features * text_features).sum(dim=-1)).tolist())
    return scores


class ClipScore(ImageMetric):
    name: ClassVar[str] = "clip_score"
    default_tolerance: ClassVar[Mapping[str, float] | None] = {"max_drop": 0.5}
    unit: ClassVar[str] = ""  # 100 x cosine similarity
    higher_is_better: ClassVar[bool] = True
    summary: ClassVar[str] = "CLIP score of each image against its prompt (open_clip, 100 x cosine)"
    option_keys: ClassVar[Mapping[str, str]] = {
        "model": "builtin:tiny | local-dir:PATH | an open_clip model name",
        "pretrained": "pretrained tag (e.g. openai) or checkpoint path, with a model name",
    }

    def __init__(self, options: Mapping[str, Any] | None = None, context: Any = None):
        super().__init__(options, context)
        self._checked: set[str] = set()  # prompts whose length was checked

    @classmethod
    def resolve_defaults(cls, options: Mapping[str, Any], evaluator: str) -> dict[str, Any]:
        resolved = dict(options)
        if not resolved.get("model"):
            resolved["model"] = evaluator
        return resolved

    @classmethod
    def parse_options(cls, table: Mapping[str, Any], where: Where, suite_dir: Path) -> dict[str, Any]:
        super().parse_options(table, where, suite_dir)
        return parse_clip_options(table, where, suite_dir)

    @classmethod
    def check_options(cls, options: Mapping[str, Any], where: Where, evaluators: Evaluators = NO_EVALUATORS) -> None:
        from harness.errors import InputError

        try:
            check_clip(options, evaluators)
        except InputError as error:
            raise where.error("model", error.detail) from None

    def values_id(self) -> str | None:
        return values_id(self.name, self.options, self.device, self.evaluators)

    def score_images(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        clip = load_clip(self.options, self.device, self.evaluators)
        warning = random_weights_warning(self.name, self.options)
        if warning and self.context is not None:
            self.context.warn(warning)
        for prompt in [p for p in dict.fromkeys(prompts) if p not in self._checked]:
            self._checked.add(prompt)
            count = clip.token_count(prompt)
            if count > clip.context_length and self.context is not None:
                self.context.warn(
                    f"clip_score: prompt of {count} tokens truncated to the model's {clip.context_length}: {prompt[:60]!r}..."
                )
        return clip_scores(clip, images, prompts)
