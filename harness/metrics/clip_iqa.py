"""CLIP-IQA (optional): no-reference image quality from a CLIP model.

Each image's score is the probability CLIP gives the positive prompt of an antonym pair
("Good photo." against "Bad photo." for ``prompt = "quality"``): the softmax over the
two cosine similarities x 100 (Wang et al., AAAI 2023; torchmetrics' prompt pairs and
formula). The CLIP is a transformers CLIP: a hub id (default
``openai/clip-vit-large-patch14``) found in the local hub cache, or a local folder written
by ``save_pretrained`` (model and processor). Nothing is downloaded while the machine is
offline; without the weights the metric is skipped with that reason.

Computed here rather than through torchmetrics' ``CLIPImageQualityAssessment``: with a
transformers CLIP, torchmetrics hands the processor images already divided by the data
range, and the processor divides by 255 again, so the model sees near-black images; it
also accepts only hub ids containing "openai". Here the processor gets the 8-bit images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness import tomlread
from harness.errors import Where
from harness.metrics.base import ImageMetric
from harness.options import option, resolve_path

DEFAULT_MODEL = "openai/clip-vit-large-patch14"
# torchmetrics' antonym pairs (clip_image_quality_assessment's prompt names)
PROMPTS: dict[str, tuple[str, str]] = {
    "quality": ("Good photo.", "Bad photo."),
    "brightness": ("Bright photo.", "Dark photo."),
    "noisiness": ("Clean photo.", "Noisy photo."),
    "colorfullness": ("Colorful photo.", "Dull photo."),
    "sharpness": ("Sharp photo.", "Blurry photo."),
    "contrast": ("High contrast photo.", "Low contrast photo."),
    "complexity": ("Complex photo.", "Simple photo."),
    "natural": ("Natural photo.", "Synthetic photo."),
    "happy": ("Happy photo.", "Sad photo."),
    "scary": ("Scary photo.", "Peaceful photo."),
    "new": ("New photo.", "Old photo."),
    "warm": ("Warm photo.", "Cold photo."),
    "real": ("Real photo.", "Abstract photo."),
    "beautiful": ("Beautiful photo.", "Ugly photo."),
    "lonely": ("Lonely photo.", "Sociable photo."),
    "relaxing": ("Relaxing photo.", "Stressful photo."),
}
BATCH = 32


def missing_clip(model: str) -> str | None:
    """Why the transformers CLIP ``model`` (hub id or folder) cannot be loaded here, or ``None``."""
    folder = Path(model)
    if folder.is_dir() or model.startswith((".", "/", "~")):
        if not (folder / "config.json").is_file():
            return f"no transformers CLIP at {folder}: place its save_pretrained folder (config.json, weights, processor) there"
        return None
    from huggingface_hub import constants, try_to_load_from_cache

    if not constants.HF_HUB_OFFLINE:
        return None
    weights = [try_to_load_from_cache(model, name) for name in ("model.safetensors", "pytorch_model.bin")]
    if not isinstance(try_to_load_from_cache(model, "config.json"), str) or not any(
        isinstance(w, str) for w in weights
    ):
        return (
            f"CLIP-IQA needs the CLIP model {model} in the local hub cache and this machine is offline: "
            f"run `hf download {model}` where there is network, or set model = a local folder"
        )
    return None


def _model(value: Any, where: Where, suite_dir: Path | None) -> str:
    """A hub id as given; a local folder (``./``, ``/``, ``~``) made absolute."""
    model = tomlread.require({"model": value}, "model", str, where)
    return resolve_path(model, suite_dir) if model.startswith((".", "/", "~")) else model


@dataclass(frozen=True)
class ClipIQAOptions:
    model: str = option(
        "a transformers CLIP: hub id or a local save_pretrained folder", default=DEFAULT_MODEL, read=_model
    )
    prompt: str = option("which antonym pair", default="quality", choices=tuple(PROMPTS))


class ClipIQA(ImageMetric):
    name: ClassVar[str] = "clip_iqa"
    unit: ClassVar[str] = ""  # a probability, 0 to 1
    higher_is_better: ClassVar[bool] = True
    optional: ClassVar[bool] = True
    summary: ClassVar[str] = "CLIP-IQA no-reference quality: P(positive prompt) from a CLIP (optional; torchmetrics)"
    Options: ClassVar[type] = ClipIQAOptions

    def __init__(self, options: Mapping[str, Any] | None = None, context: Any = None):
        super().__init__(options, context)
        self._loaded: tuple[Any, Any, Any] | None = None

    def unavailable(self) -> str | None:
        return missing_clip(self.options.get("model", DEFAULT_MODEL))

    def _load(self) -> tuple[Any, Any, Any]:
        """The CLIP, its processor and the two normalised anchor embeddings."""
        if self._loaded is None:
            import torch
            from transformers import CLIPModel, CLIPProcessor

            source = self.options.get("model", DEFAULT_MODEL)
            model = CLIPModel.from_pretrained(source).eval().to(self.device)
            processor = CLIPProcessor.from_pretrained(source)
            text = processor(
                text=list(PROMPTS[self.options.get("prompt", "quality")]), return_tensors="pt", padding=True
            ).to(self.device)
            with torch.no_grad():
                anchors = _pooled(model.get_text_features(**text)).float()
            self._loaded = (model, processor, anchors / anchors.norm(dim=-1, keepdim=True))
        return self._loaded

    def score_images(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        import torch
        from PIL import Image

        model, processor, anchors = self._load()
        scores: list[float] = []
        for start in range(0, len(images), BATCH):
            batch = [Image.fromarray(image) for image in images[start : start + BATCH]]
            pixels = processor(images=batch, return_tensors="pt")["pixel_values"].to(self.device)
            with torch.no_grad():
                features = _pooled(model.get_image_features(pixel_values=pixels)).float()
            features = features / features.norm(dim=-1, keepdim=True)
            scores.extend(torch.softmax(100.0 * features @ anchors.T, dim=-1)[:, 0].cpu().tolist())
        return scores


def _pooled(output: Any) -> Any:
    """The projected embedding: transformers 5 may wrap it in an output object."""
    return getattr(output, "pooler_output", output)
