"""LPIPS: learned perceptual distance to the reference image, through torchmetrics.

The linear heads ship with torchmetrics; the backbone (AlexNet, VGG16 or SqueezeNet)
is torchvision's ImageNet checkpoint, which must already be in torch's hub cache:
nothing is downloaded, and a missing file is one clear message naming it. Images go in
as [-1, 1] (torchmetrics' ``normalize=False`` convention; the same as ``normalize=True``
on [0, 1] images, nunchaku's setting), 16 pairs at a time, float32 on the run's device.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import Where
from harness.metrics.base import NO_EVALUATORS, Evaluators, PairMetric
from harness.metrics.tensors import Pairs
from harness.options import option

NETS = ("alex", "vgg", "squeeze")
_WEIGHTS = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights", "squeeze": "SqueezeNet1_1_Weights"}


def backbone_file(net: str) -> tuple[str, Path]:
    """The download URL of the torchvision backbone and where torch looks for it."""
    import torchvision.models as models

    url = getattr(models, _WEIGHTS[net]).IMAGENET1K_V1.url
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    return url, torch_home / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class LPIPSOptions:
    net: str = option("the backbone LPIPS compares features of", default="alex", choices=NETS)


class LPIPS(PairMetric):
    name: ClassVar[str] = "lpips"
    default_tolerance: ClassVar[Mapping[str, float] | None] = {"max_rise": 0.01}
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    summary: ClassVar[str] = "LPIPS perceptual distance to the reference image (needs torchvision backbone weights)"
    Options: ClassVar[type] = LPIPSOptions

    def __init__(self, options: Mapping[str, Any] | None = None, context: Any = None):
        super().__init__(options, context)
        self._model: Any = None

    @classmethod
    def check_options(cls, options: Mapping[str, Any], where: Where, evaluators: Evaluators = NO_EVALUATORS) -> None:
        reason = cls._missing(options.get("net", "alex"))
        if reason:
            raise where.error("net", reason)

    @staticmethod
    def _missing(net: str) -> str | None:
        url, path = backbone_file(net)
        if path.is_file():
            return None
        return f"LPIPS needs the torchvision {net} backbone: download {url} and place it at {path}"

    def unavailable(self) -> str | None:
        return self._missing(self.options.get("net", "alex"))

    def score_chunk(self, pairs: Pairs) -> list[float]:
        import torch
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        device = self.device
        if self._model is None:
            self._model = LearnedPerceptualImagePatchSimilarity(
                net_type=self.options.get("net", "alex"), reduction="none"
            ).to(device)
        values: list[float] = []
        for batch, refs in pairs.batches(device):
            with torch.no_grad():
                values.extend(self._model(batch / 127.5 - 1.0, refs / 127.5 - 1.0).reshape(-1).tolist())
            self._model.reset()
        return values
