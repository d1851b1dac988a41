"""The small base classes every configuration kind implements.

A kind turns its TOML table into frozen options (``parse``), says when it cannot run
here (``unavailable``, a skip reason), and builds a :class:`Runtime` that turns
sample jobs into float images (``build``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness import options
from harness.errors import Where
from harness.samples import Generation, SampleJob

if TYPE_CHECKING:
    from harness.pipelines.family import LoadedPipeline
    from harness.results import ConfigResult


class Notes(dict[str, Any]):
    """What the report says about a configuration (casts, tensor counts, sizes, ...), JSON-ready.

    ``live`` sources are called at the end, for figures gathered while generating.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: list[Callable[[], Mapping[str, Any]]] = []
        self.casts: Any = None  # the configuration's CastLog, for kinds that add boundary casts
        self.on_close: list[Callable[[], None]] = []  # clean-ups when the runtime is closed (temp files)

    def snapshot(self) -> dict[str, Any]:
        merged = dict(self)
        for source in self.live:
            merged.update(source())
        return merged


@dataclass
class BuildContext:
    """What a kind may use to build its runtime."""

    device: str
    generation: Generation
    load_base: Callable[[], LoadedPipeline]
    cache_dir: Path
    work_dir: Path
    suite_dir: Path
    prompts: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    notes: Notes = field(default_factory=Notes)  # this configuration's notes; kept when building fails
    write_suite_files: bool = False  # only `ranges calibrate` may write into the suite's files; a run never does


def scratch_folder(context: BuildContext, name: str, notes: Notes) -> Path:
    """A new folder under the cache folder's ``name/`` for what building writes (offloaded weights, a saved
    component), removed when the configuration's runtime closes."""
    import shutil
    import tempfile

    parent = context.cache_dir / name
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"harness-{name}-", dir=parent))
    notes.on_close.append(lambda: shutil.rmtree(folder, ignore_errors=True))
    return folder


class Runtime(ABC):
    """Something that generates images for sample jobs; ``notes`` is what the report says about it."""

    def __init__(self) -> None:
        self.notes = Notes()

    @abstractmethod
    def generate(self, jobs: Sequence[SampleJob]) -> list[np.ndarray]:
        """Float32 HxWx3 images in [0, 1], one per job, in order (NaN/Inf allowed)."""

    def denoiser(self) -> Any | None:
        """The module whose forward calls are the denoising steps, timed on their own; ``None`` if unknown."""
        return None

    def close(self) -> None:
        """Release what the runtime holds (models, temp files)."""
        return None


class ConfigKind(ABC):
    """One configuration kind (``kind = "..."`` in a suite)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    needs_pipeline: ClassVar[bool] = True  # False for kinds that never touch the suite's pipeline (command)
    # distributions the kind runs on beyond the core libraries (environment.LIBRARIES): their versions are part of
    # its samples' identity and of every run's recorded libraries
    packages: ClassVar[tuple[str, ...]] = ()
    # a small configuration table of this kind that parses (beside the suite's folder): the docs' example and what
    # the conformance test (tests/test_conformance.py) varies key by key
    example: ClassVar[Mapping[str, Any]] = {}

    def declarations(self) -> tuple[type, ...]:
        """The declared option classes (:mod:`harness.options`) a configuration of this kind is read into."""
        return ()

    @property
    def keys(self) -> Mapping[str, str]:
        """Every key a configuration of this kind may hold, with its help: from the declarations, nothing else."""
        return {key: text for cls in self.declarations() for key, text in options.keys(cls).items()}

    @abstractmethod
    def parse(self, table: Mapping[str, Any], where: Where, suite_dir: Path) -> Any:
        """Validate the kind's keys and return frozen, JSON-ready options."""

    def check(self, options: Any, where: Where) -> None:
        """Deeper checks for ``validate`` that need files but no compute (e.g. a file exists)."""
        return None

    def unavailable(self, options: Any, device: str) -> str | None:
        """Why this configuration cannot run here (missing package, needs CUDA); ``None`` if it can."""
        return None

    def default_batch_size(self, options: Any, device: str) -> int:
        """Samples per call when neither the suite nor the command line sets one."""
        return 1

    def cache_inputs(self, options: Any, suite_dir: Path) -> dict[str, Any]:
        """Fingerprints of files the configuration reads, beyond its options (part of the sample cache key)."""
        return {}

    @abstractmethod
    def build(self, options: Any, context: BuildContext) -> Runtime:
        """Make the runtime. Exceptions here mark the configuration ``error``."""

    def prepare(self, spec: ConfigSpec, context: BuildContext, where: Where) -> str | None:
        """The kind's own preparation outside a run, ``python -m harness prepare`` (the int8 kind calibrates and
        writes its range file); returns what was done for the console, ``None`` when the kind prepares nothing.
        ``context.write_suite_files`` is true here: unlike a run, preparing may write the suite's files."""
        return None

    def finish(
        self,
        spec: ConfigSpec,
        result: ConfigResult,
        specs: Sequence[ConfigSpec],
        result_of: Callable[[str], ConfigResult | None],
        run_dir: Path,
    ) -> ConfigResult:
        """A kind's own step once every configuration is generated and scored, before the checks: ``result`` with
        whatever the kind adds (the streaming kind's pixel equivalence with its plain sibling). ``specs`` are the
        suite's configurations, ``result_of`` finds another's result, ``run_dir`` holds the images."""
        return result


@dataclass(frozen=True)
class ConfigSpec:
    """A named configuration from a suite."""

    name: str
    kind: str
    options: Any
    description: str = ""
    thresholds: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    expect: str = "pass"
    min_speedup: float | None = None  # the speed gate: its speedup over ``speedup_vs`` (harness/judge/speed.py)
    speedup_vs: str | None = None  # the configuration its speed is judged against; None: the suite's reference
    effects: tuple[str, ...] = ()  # effects it must show against its base, or fail as a no-op: pixels, speed, memory

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "expect": self.expect,
            "options": jsonable(self.options),
            **({"min_speedup": self.min_speedup} if self.min_speedup is not None else {}),
            **({"speedup_vs": self.speedup_vs} if self.speedup_vs else {}),
            **({"effects": list(self.effects)} if self.effects else {}),
        }


OMIT_WHEN_UNSET = "omit_when_unset"  # field metadata: left out of the JSON while it holds its default


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples and paths to plain JSON values.

    A field marked ``OMIT_WHEN_UNSET`` is left out while it holds its default: an option added later (the speed-ups)
    leaves the JSON, and so every identity and reference hash made before it, unchanged until a suite sets it."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.metadata.get(OMIT_WHEN_UNSET) and getattr(value, f.name) == _default(f))
        }
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _default(field: Any) -> Any:
    import dataclasses

    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
