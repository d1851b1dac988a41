"""``kind = "precision"`` (the default): the pipeline in a dtype, optionally mixed per component."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from harness.kinds.pipeline import PipelineKind


class PrecisionKind(PipelineKind):
    """fp32 / fp16 / bf16, or a per-component mix such as UNet fp16 with VAE and text encoder bf16."""

    name: ClassVar[str] = "precision"
    summary: ClassVar[str] = "the pipeline cast to dtype, with optional per-component dtypes (mixed precision)"
    example: ClassVar[Mapping[str, Any]] = {"dtype": "float16", "component_dtypes": {"vae": "bfloat16"}}
