"""The base of every kind that runs the suite's diffusers pipeline in this process.

Each configuration gets its own deep copy of the once-loaded base pipeline, so one
configuration's casts, hooks or replaced modules never leak into the next. The steps
are always: copy -> precision -> the kind's own change -> placement on the device ->
the user's transform -> the speed-ups (attention backend, step cache, compile:
:mod:`harness.kinds.speedup`), which any in-process kind combines.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from harness import options, tomlread
from harness.errors import InputError, Where
from harness.kinds.base import OMIT_WHEN_UNSET, BuildContext, ConfigKind, Notes, Runtime
from harness.kinds.casting import CastLog, Precision, apply_precision
from harness.kinds.cpu_half import accumulate_in_float32
from harness.kinds.speedup import Speedups, apply_speedups
from harness.kinds.transform import apply_transform, parse_transform, resolve_transform
from harness.options import option
from harness.pipelines.family import Family
from harness.samples import SampleJob


@dataclass(frozen=True)
class PipelineOptions:
    """Options shared by every in-process pipeline kind (the precision's keys and ``transform``), plus the kind's own
    (``extra``: its ``own_options`` class)."""

    precision: Precision
    transform: str | None = None
    extra: Any = None
    speedups: Speedups = field(default_factory=Speedups, metadata={OMIT_WHEN_UNSET: True})


@dataclass(frozen=True)
class _Transform:
    transform: str | None = option(
        "'package.module:function' called with the pipeline; returns it or a replacement",
        default=None,
        read=lambda value, where, _: parse_transform(
            tomlread.require({"transform": value}, "transform", str, where), where
        ),
    )


COMMON_KEYS: Mapping[str, str] = {**options.keys(Precision), **options.keys(_Transform), **options.keys(Speedups)}
T = TypeVar("T")
COMMON_DECLARATIONS = (Precision, _Transform, Speedups)  # what every in-process configuration reads beside its kind


def copy_pipeline(pipe: Any) -> Any:
    """A fully independent copy: new modules, new scheduler state, no hooks carried over."""
    components = {name: copy.deepcopy(value) for name, value in pipe.components.items()}
    fresh = type(pipe)(**components)
    fresh.set_progress_bar_config(disable=True)
    return fresh


class PipelineKind(ConfigKind):
    """Base for kinds that modify the suite's pipeline; subclasses declare ``own_options`` and override
    ``modify``/``place``."""

    own_options: ClassVar[type | None] = None  # the kind's declared options (harness.options): PipelineOptions.extra

    def declarations(self) -> tuple[type, ...]:
        return (*COMMON_DECLARATIONS, *((self.own_options,) if self.own_options else ()))

    def parse(self, table: Mapping[str, Any], where: Where, suite_dir: Path) -> PipelineOptions:
        tomlread.check_keys(table, list(self.keys), where)
        common = {key: value for key, value in table.items() if key in COMMON_KEYS}
        own = {key: value for key, value in table.items() if key not in COMMON_KEYS}

        def read(cls: type[T]) -> T:
            also = tuple(key for key in COMMON_KEYS if key not in options.keys(cls))
            return options.parse(cls, common, where, suite_dir, also=also)

        precision, transform, speedups = read(Precision), read(_Transform), read(Speedups)
        extra = options.parse(self.own_options, own, where, suite_dir) if self.own_options else None
        return PipelineOptions(precision=precision, transform=transform.transform, extra=extra, speedups=speedups)

    def unavailable(self, options: PipelineOptions, device: str) -> str | None:
        return options.speedups.unavailable(device) or self.backend_unavailable(options, device)

    def backend_unavailable(self, options: PipelineOptions, device: str) -> str | None:
        """Why the kind's own backend cannot run here (a package, the device); ``None`` if it can."""
        return None

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

        from harness.identity import content_fingerprint

        module = options.transform.partition(":")[0]
        sys.path.insert(0, str(suite_dir))
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        finally:
            sys.path.remove(str(suite_dir))
        return {"transform_source": content_fingerprint(spec.origin) if spec and spec.origin else None}

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
        notes.update(accumulate_in_float32(pipe, context.device, context.cache_dir))
        pipe = self.place(pipe, options, context)
        if options.transform:
            function = resolve_transform(options.transform, context.suite_dir)
            pipe = apply_transform(function, options.transform, pipe)
            notes["transform"] = options.transform
        runtime = DiffusersRuntime(pipe, base.family, context, log)
        if options.speedups.any:
            self._speed_up(runtime, options.speedups, context, notes)
        notes.update(runtime.notes)
        notes.live.extend(runtime.notes.live)
        runtime.notes = notes
        return runtime

    @staticmethod
    def _speed_up(runtime: DiffusersRuntime, speedups: Speedups, context: BuildContext, notes: Notes) -> None:
        denoiser = runtime.denoiser()
        if denoiser is None:
            raise InputError(f"{speedups.describe()}: this pipeline's family names no denoiser to apply it to")
        first = (
            [SampleJob("calibration", 0, context.prompts[0], context.seeds[0])]
            if context.prompts and context.seeds
            else []
        )
        found, cleanups = apply_speedups(
            runtime.pipe,
            speedups,
            denoiser,
            context.generation.steps,
            functools.partial(runtime.generate, first),
        )
        notes["speedups"] = {"describe": speedups.describe(), **found}
        notes.on_close.extend(cleanups)


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
                "(`python -m harness ls families`: the ones marked clips)"
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
