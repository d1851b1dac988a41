"""``kind = "object"``: a pipeline built in Python and handed to :mod:`harness.api`, run as it is.

This is how a backend applied in code is judged without a ``transform`` indirection: a transformer swapped for
another runtime's, a ``quantize_`` call, a pipeline loaded with a quantization config. The harness does not cast,
copy or quantize it; it generates with it the way it generates with every diffusers pipeline (one call per batch,
one CPU generator per sample, the family's starting latents) and moves it to the run's device. Its weights are
part of the samples' identity: they are hashed once per run, so an object changed between runs is never served
from the cache.

The kind exists in the registries the API builds (:func:`harness.api.registry_for`), holding the objects; a suite
file run from the command line has none to name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness import options
from harness.errors import Where, unknown
from harness.kinds.base import BuildContext, ConfigKind, Runtime
from harness.options import option
from harness.pipelines.family import Family, made


@dataclass(frozen=True)
class ObjectOptions:
    object: str = option("the name a pipeline (or a function making one) was handed to harness.api under")


class ObjectKind(ConfigKind):
    name: ClassVar[str] = "object"
    summary: ClassVar[str] = (
        "a pipeline object built in Python (harness.api), run as it is: no cast, copy or quantization"
    )
    example: ClassVar[Mapping[str, Any]] = {"object": "mine"}

    def __init__(self, objects: Mapping[str, Any], family_for_class: Callable[[str], Family]):
        """``objects``: the pipelines (or functions making them) by name; ``family_for_class``: the registry's
        family for a pipeline class name."""
        self.objects = objects
        self.family_for_class = family_for_class
        self._pipelines: dict[str, Any] = {}
        self._fingerprints: dict[str, str] = {}

    def declarations(self) -> tuple[type, ...]:
        return (ObjectOptions,)

    def parse(self, table: Mapping[str, Any], where: Where, suite_dir: Path) -> ObjectOptions:
        parsed = options.parse(ObjectOptions, table, where, suite_dir)
        if parsed.object not in self.objects:
            raise where.error("object", unknown("pipeline object", parsed.object, self.objects))
        return parsed

    def pipeline(self, name: str) -> Any:
        """The object's pipeline, made once (a function handed over is called on first use)."""
        if name not in self._pipelines:
            self._pipelines[name] = made(self.objects[name])
        return self._pipelines[name]

    def cache_inputs(self, options: ObjectOptions, suite_dir: Path) -> dict[str, Any]:
        """The object's content: its weights and its other components' configurations, hashed once."""
        if options.object not in self._fingerprints:
            import torch

            from harness.identity import component_digests, digest, weights_digest

            pipe = self.pipeline(options.object)
            modules = {k: v for k, v in pipe.components.items() if isinstance(v, torch.nn.Module)}
            self._fingerprints[options.object] = digest(
                {"weights": weights_digest(modules), "components": component_digests(pipe)}
            )
        return {"object": self._fingerprints[options.object]}

    def default_batch_size(self, options: Any, device: str) -> int:
        return 8 if device.startswith("cuda") else 4

    def build(self, options: ObjectOptions, context: BuildContext) -> Runtime:
        from harness.kinds.pipeline import DiffusersRuntime

        pipe = self.pipeline(options.object)
        pipe.set_progress_bar_config(disable=True)
        pipe.to(context.device)
        runtime = DiffusersRuntime(pipe, self.family_for_class(type(pipe).__name__), context)
        runtime.notes["object"] = f"{options.object}: {type(pipe).__name__} handed to harness.api, run as it is"
        return runtime
