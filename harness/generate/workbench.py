"""What generating a suite's configurations needs, built in one place (run, bless, the isolated worker, a kind's
own preparation): the pipeline loader, the build context, the sample cache and the generator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import InputError, Where
from harness.generate.cache import SampleCache
from harness.generate.generator import ConfigGenerator
from harness.generate.loading import load_pipeline
from harness.kinds.base import BuildContext
from harness.pipelines.family import LoadedPipeline
from harness.plan.suite import Suite

if TYPE_CHECKING:
    from harness.registry import Registry


class BaseLoader:
    """Loads the suite's pipeline once, on first use, and remembers a failure too."""

    def __init__(self, suite: Suite, registry: Registry):
        self.suite = suite
        self.registry = registry
        self._loaded: LoadedPipeline | None = None
        self._error: BaseException | None = None

    def __call__(self) -> LoadedPipeline:
        if self._loaded is None and self._error is None:
            try:
                self._loaded = load_pipeline(self.suite.pipeline, Where(self.suite.path), self.registry)
            except InputError:
                raise
            except Exception as error:
                self._error = error
        if self._error is not None:
            raise RuntimeError(
                f"loading the pipeline failed: {type(self._error).__name__}: {self._error}"
            ) from self._error
        assert self._loaded is not None
        return self._loaded


def make_context(suite: Suite, device: str, loader: BaseLoader, cache_dir: Path, work_dir: Path) -> BuildContext:
    """What every configuration of a run builds from."""
    return BuildContext(
        device=device,
        generation=suite.generation,
        load_base=loader,
        cache_dir=cache_dir,
        work_dir=work_dir,
        suite_dir=suite.directory,
        prompts=suite.prompts,
        seeds=suite.seeds,
    )


@dataclass(frozen=True)
class Workbench:
    """What generating a suite's configurations needs, built in one place (run, bless, the isolated worker,
    a kind's own preparation): the pipeline loader, the build context, the sample cache and the generator."""

    suite: Suite
    loader: BaseLoader
    context: BuildContext
    cache: SampleCache
    generator: ConfigGenerator


def workbench(
    suite: Suite,
    registry: Registry,
    device: str,
    cache_dir: Path,
    work_dir: Path,
    use_cache: bool = True,
    timing_repeats: int | None = 0,
) -> Workbench:
    """The loader, context, cache and generator of one run of ``suite`` on ``device``."""
    loader = BaseLoader(suite, registry)
    cache = SampleCache(cache_dir, read=use_cache)
    return Workbench(
        suite=suite,
        loader=loader,
        context=make_context(suite, device, loader, cache_dir, work_dir),
        cache=cache,
        generator=ConfigGenerator(registry.kinds, cache, suite, device, loader, timing_repeats),
    )
