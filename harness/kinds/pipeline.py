"""The base of every kind that runs the suite's diffusers pipeline in this process.

Each configuration gets its own deep copy of the once-loaded base pipeline, so one
configuration's casts, hooks or replaced modules never leak into the next. The steps
are always: copy -> precision -> the kind's own change -> placement on the device ->
the user's transform.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness import tomlread
from harness.errors import InputError, Where
from harness.kinds.base import BuildContext, ConfigKind, Notes, Runtime
from harness.kinds.casting import DTYPE_NAMES, CastLog, Precision, apply_precision
from harness.kinds.cpu_half import accumulate_in_float32
from harness.kinds.transform import apply_transform, parse_transform, resolve_transform
from harness.pipelines.family import Family
from harness.samples import SampleJob

COMMON_KEYS: Mapping[str, str] = {
    "dtype": "float32 | float16 | bfloat16 for the whole pipeline (default float32)",
    "component_dtypes": "per-component dtypes for mixed precision, e.g. { vae = 'bfloat16' }",
    "transform": "'package.module:function' called with the pipeline; returns it or a replacement",
}


@dataclass(frozen=True)
class PipelineOptions:
    """Options shared by every in-process pipeline kind, plus the kind's own (``extra``)."""

    precision: Precision
    transform: str | None = None
    extra: Any = None


def parse_precision(table: Mapping[str, Any], where: Where) -> Precision:
    dtype = tomlread.get_choice(table, "dtype", DTYPE_NAMES, where, "float32")
    components = tomlread.get_table(table, "component_dtypes", where) or {}
    pairs = []
    for component, value in components.items():
        inner = where.child("component_dtypes")
        if not isinstance(value, str) or value not in DTYPE_NAMES:
            raise inner.error(component, f"expected one of {', '.join(DTYPE_NAMES)}, got {value!r}")
        pairs.append((component, value))
    return Precision(dtype=dtype, component_dtypes=tuple(sorted(pairs)))


def copy_pipeline(pipe: Any) -> Any:
    """A fully independent copy: new modules, new scheduler state, no hooks carried over."""
    components = {name: copy.deepcopy(value) for name, value in pipe.components.items()}
    fresh = type(pipe)(**components)
    fresh.set_progress_bar_config(disable=True)
    return fresh


class PipelineKind(ConfigKind):
    """Base for kinds that modify the suite's pipeline; subclasses override ``modify``/``place``."""

    extra_keys: ClassVar[Mapping[str, str]] = {}

    @property
    def keys(self) -> Mapping[str, str]:  # type: ignore[override]
        return {**COMMON_KEYS, **self.extra_keys}

    def parse(self, table: Mapping[str, Any], where: Where, suite_dir: Path) -> PipelineOptions:
        tomlread.check_keys(table, list(self.keys), where)
        transform = tomlread.get(table, "transform", str, where)
        return PipelineOptions(
            precision=parse_precision(table, where),
            transform=parse_transform(transform, where) if transform is not None else None,
            extra=self.parse_extra(table, where, suite_dir),
        )

    def check(self, options: PipelineOptions, where: Where) -> None:
        if options.transform:
            resolve_transform(options.transform, Path(where.file).resolve().parent, where)

    def default_batch_size(self, options: PipelineOptions, device: str) -> int:
        # Batched generation is 1.5x faster on the tiny CPU model and more on GPUs; see docs/performance.md.
        return 8 if device.startswith("cuda") else 4

    def cache_inputs(self, options: PipelineOptions, suite_dir: Path) -> dict[str, Any]:
        if not options.transform:
            return {}
        import importlib.util
        import sys

        from harness.generate.cache import content_fingerprint

        module = options.transform.partition(":")[0]
        sys.path.insert(0, str(suite_dir))
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        finally:
            sys.path.remove(str(suite_dir))
        return {"transform_source": content_fingerprint(spec.origin) if spec and spec.origin else None}

    def parse_extra(self, table: Mapping[str, Any], where: Where, suite_dir: Path) -> Any:
        """The kind's own options (frozen dataclass); none by default."""
        return None

    def modify(self, pipe: Any, options: PipelineOptions, context: BuildContext, family: Family, notes: Notes) -> Any:
        """The kind's change to the cast pipeline (quantize, load weights...); returns the pipeline."""
        return pipe

    def place(self, pipe: Any, options: PipelineOptions, context: BuildContext) -> Any:
        """Put the pipeline on the device (offloading kinds override this)."""
        return pipe.to(context.device)

    def build(self, options: PipelineOptions, context: BuildContext) -> Runtime:
        base = context.load_base()
        pipe = copy_pipeline(base.pipe)
        log = CastLog()
        notes = context.notes
        notes.casts = log
        notes.update(apply_precision(pipe, options.precision, log))
        pipe = self.modify(pipe, options, context, base.family, notes)
        # before placing: offloading wraps each layer's forward in hooks that bring its weights in, and a
        # forward routed after that would bypass them (from disk: computing with weights not loaded)
        notes.update(accumulate_in_float32(pipe, context.device))
        pipe = self.place(pipe, options, context)
        if options.transform:
            function = resolve_transform(options.transform, context.suite_dir)
            pipe = apply_transform(function, options.transform, pipe)
            notes["transform"] = options.transform
        runtime = DiffusersRuntime(pipe, base.family, context, log)
        notes.update(runtime.notes)
        notes.live.extend(runtime.notes.live)
        runtime.notes = notes
        return runtime


class DiffusersRuntime(Runtime):
    """Runs a diffusers pipeline: one call per batch, one CPU generator per sample."""

    def __init__(self, pipe: Any, family: Family, context: BuildContext, log: CastLog | None = None):
        super().__init__()
        self.pipe = pipe
        self.family = family
        self.generation = context.generation
        self.device = context.device
        self.log = log or CastLog()

    def generate(self, jobs: Sequence[SampleJob]) -> list[np.ndarray]:
        import torch

        gen = self.generation
        seeds = [job.seed for job in jobs]
        kwargs: dict[str, Any] = {
            "prompt": [job.prompt for job in jobs],
            "num_inference_steps": gen.steps,
            "guidance_scale": gen.guidance,
            "height": gen.height,
            "width": gen.width,
            "generator": [torch.Generator("cpu").manual_seed(seed) for seed in seeds],
            "output_type": "np",
        }
        if gen.negative_prompt:
            kwargs["negative_prompt"] = [gen.negative_prompt] * len(jobs)
        latents = self.family.initial_latents(self.pipe, seeds, gen.height, gen.width)
        if latents is not None:
            kwargs["latents"] = latents.to(self.device)
        kwargs.update(self.family.call_kwargs())
        if self.family.video:
            kwargs.update(self.family.frame_kwargs(gen.frames))
        elif gen.frames > 1:
            raise InputError(
                f"frames = {gen.frames}: the {self.family.name!r} family makes images; clips need a video family "
                "(wan, ltx)"
            )
        # no_grad, not inference_mode: some quantized tensor types (quanto's packed int4) reject inference tensors
        with torch.no_grad():
            output = self.pipe(**kwargs)
        images = self.family.images(output)
        if self.log.lines():
            self.notes["boundary_casts"] = self.log.lines()
        return [images[i] for i in range(len(jobs))]

    def denoiser(self) -> Any | None:
        return self.family.denoiser_module(self.pipe) if self.pipe is not None else None

    def close(self) -> None:
        self.pipe = None
        for cleanup in self.notes.on_close:
            cleanup()
        self.notes.on_close.clear()
