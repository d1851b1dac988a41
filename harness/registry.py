"""One registry of everything the harness can be extended with, and the plug-ins that add to it.

Six sections, each a name -> entry mapping: configuration kinds, metrics, pipeline
families, built-in pipelines, negative controls and evaluators (built-in CLIP models
for metrics). The core registers its own first (:func:`core`, the one list of each),
then the bundled plug-in (the shapes world, :mod:`harness.world.plugin`), then every
installed package's entry point in the group ``harness.plugins``. A plug-in is a module
offering any of ``kinds()``, ``metrics()``, ``families()``, ``builtins()``,
``controls()`` and ``evaluators()``, each returning a list (evaluators: a name ->
folder-finder mapping). A name taken twice is refused, naming both owners: a plug-in
can add, never silently replace.

The registry is built once per command (:func:`build_registry`) and passed to what needs
it; nothing reads a global list.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from harness.errors import InputError, unknown

if TYPE_CHECKING:
    from harness.controls import Control
    from harness.kinds.base import ConfigKind
    from harness.metrics.base import Metric
    from harness.pipelines.family import Builtin, Family

T = TypeVar("T")
CORE = "harness"
BUNDLED = ("harness.world.plugin",)
ENTRY_POINT_GROUP = "harness.plugins"
HOOKS = ("kinds", "metrics", "families", "builtins", "controls", "evaluators")


class Section(Mapping[str, T], Generic[T]):
    """One kind of entry, by name, remembering who registered each."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}
        self._owners: dict[str, str] = {}

    def add(self, name: str, entry: T, owner: str) -> None:
        if name in self._entries:
            raise InputError(
                f"{self.what} {name!r} is registered twice: by {self._owners[name]} and by {owner}; a plug-in may add "
                "names, not replace them (rename one)"
            )
        self._entries[name] = entry
        self._owners[name] = owner

    def owner(self, name: str) -> str:
        return self._owners[name]

    def get_or_fail(self, name: str, where: str = "") -> T:
        """The entry, or an input error naming the known ones."""
        if name not in self._entries:
            raise InputError(unknown(self.what, name, self._entries) + (f" ({where})" if where else ""))
        return self._entries[name]

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class Registry:
    """Kinds, metrics, families, built-in pipelines, controls and evaluators, by name."""

    def __init__(self) -> None:
        self.kinds: Section[ConfigKind] = Section("configuration kind")
        self.metrics: Section[type[Metric]] = Section("metric")
        self.families: Section[type[Family]] = Section("pipeline family")
        self.builtins: Section[Builtin] = Section("built-in pipeline")
        self.controls: Section[Control] = Section("negative control")
        self.evaluators: Section[Callable[[], Path]] = Section("built-in evaluator")
        # pipelines built in Python and handed to harness.api (a pipeline, or a function making one), by name:
        # ``pipeline = "object:NAME"`` and kind = "object"; empty for the command line
        self.objects: dict[str, Any] = {}

    def offer(self, plugin: Any, owner: str) -> None:
        """Register what ``plugin`` offers through its hooks (see the module's docstring)."""
        for hook in HOOKS:
            offered = getattr(plugin, hook, None)
            if offered is None:
                continue
            items = offered()
            section: Section[Any] = getattr(self, hook)
            if isinstance(items, Mapping):
                for name, entry in items.items():
                    section.add(name, entry, owner)
                continue
            for entry in items:
                section.add(_name(entry), entry, owner)

    def family_for_class(self, class_name: str) -> Family:
        """The family of a pipeline class name (``model_index.json``'s ``_class_name``); the generic one if none."""
        for family in self.families.values():
            if family.pipeline_class == class_name:
                return family()
        return self.families["generic"]()


def _name(entry: Any) -> str:
    return str(entry.name)


def plugins() -> Iterator[tuple[str, ModuleType]]:
    """The bundled plug-ins, then those installed packages register, with their owners' names."""
    for name in BUNDLED:
        yield name, importlib.import_module(name)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        yield f"{entry.value} (entry point {entry.name!r})", entry.load()


def build_registry(with_plugins: bool = True) -> Registry:
    """The core's entries, then every plug-in's (``with_plugins=False``: the core alone)."""
    registry = Registry()
    registry.offer(CorePlugin, CORE)
    if with_plugins:
        for owner, module in plugins():
            registry.offer(module, owner)
    return registry


class CorePlugin:
    """The core's own entries, offered through the same hooks as a plug-in's: the one list of each."""

    @staticmethod
    def kinds() -> list[ConfigKind]:
        from harness.kinds.bitsandbytes import BitsAndBytesKind
        from harness.kinds.command import CommandKind
        from harness.kinds.gguf.kind import GGUFKind
        from harness.kinds.int8.kind import Int8Kind
        from harness.kinds.layerwise import LayerwiseCastingKind
        from harness.kinds.precision import PrecisionKind
        from harness.kinds.quanto import QuantoKind
        from harness.kinds.single_file.kind import SingleFileKind
        from harness.kinds.streaming.kind import StreamingKind
        from harness.kinds.torchao import TorchaoKind

        return [
            PrecisionKind(),
            Int8Kind(),
            GGUFKind(),
            SingleFileKind(),
            StreamingKind(),
            LayerwiseCastingKind(),
            TorchaoKind(),
            QuantoKind(),
            BitsAndBytesKind(),
            CommandKind(),
        ]

    @staticmethod
    def metrics() -> list[type[Metric]]:
        from harness.metrics.clip_iqa import ClipIQA
        from harness.metrics.clip_score import ClipScore
        from harness.metrics.cmmd import CMMD
        from harness.metrics.fid import FID
        from harness.metrics.hpsv2 import HPSv2
        from harness.metrics.image_reward import ImageRewardMetric
        from harness.metrics.kid import KID
        from harness.metrics.lpips import LPIPS
        from harness.metrics.psnr import PSNR
        from harness.metrics.ssim import SSIM
        from harness.metrics.temporal import TemporalError
        from harness.metrics.video import (
            FrameLPIPS,
            FrameLPIPSWorst,
            FramePSNR,
            FramePSNRWorst,
            FrameSSIM,
            FrameSSIMWorst,
        )

        return [
            PSNR,
            SSIM,
            ClipScore,
            FID,
            KID,
            CMMD,
            LPIPS,
            ClipIQA,
            HPSv2,
            ImageRewardMetric,
            FramePSNR,
            FramePSNRWorst,
            FrameSSIM,
            FrameSSIMWorst,
            FrameLPIPS,
            FrameLPIPSWorst,
            TemporalError,
        ]

    @staticmethod
    def _family_modules() -> list[ModuleType]:
        from harness.pipelines import flux, ltx, pixart, sana, sd, sd3, sdxl, wan

        return [sd, sdxl, sd3, flux, pixart, sana, wan, ltx]

    @classmethod
    def families(cls) -> list[type[Family]]:
        from harness.pipelines.family import Family

        return [*(module.FAMILY for module in cls._family_modules()), Family]

    @classmethod
    def builtins(cls) -> list[Builtin]:
        return [builtin for module in cls._family_modules() for builtin in module.BUILTINS]

    @staticmethod
    def controls() -> list[Control]:
        from harness.controls import CONTROLS

        return list(CONTROLS)
