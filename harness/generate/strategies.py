"""How a run generates one configuration's samples: in this process, in a fresh process of its own
(``--isolate``), or shared among the ranks of a multi-process launch. One factory picks the strategy.

Every strategy returns the configuration's whole :class:`ConfigResult` (on every rank for the multi-rank
strategy, merged in sample order) and never raises for the configuration's own failures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.generate import distributed
from harness.generate.generator import Observer, batches
from harness.generate.isolation import IsolatedJob, run_isolated
from harness.generate.workbench import Workbench
from harness.kinds.base import ConfigSpec
from harness.results import ConfigResult
from harness.samples import SampleJob

Advance = Callable[[int], None]
Label = Callable[[str], None]


@dataclass(frozen=True)
class GenerationCall:
    """One configuration to generate: its jobs (in the order to generate them), where its images go, progress
    callbacks, and sequential sampling's monitor (``None``: every job)."""

    spec: ConfigSpec
    jobs: Sequence[SampleJob]
    image_dir: Path
    advance: Advance
    label: Label
    monitor: Observer | None = None


class GenerationStrategy(ABC):
    """Generates one configuration's sample jobs into ``image_dir``."""

    def __init__(self, bench: Workbench, run_dir: Path, batch_size: int | None):
        self.bench = bench
        self.run_dir = run_dir
        self.batch_size = batch_size

    @abstractmethod
    def generate(self, call: GenerationCall) -> ConfigResult:
        """The configuration's result for ``call.jobs``; ``call.monitor`` (sequential sampling, in-process only) may
        stop it early."""

    def settle(self) -> None:
        """After the last configuration: whatever the strategy must gather (the ranks' cache counters)."""
        return None


class InProcess(GenerationStrategy):
    """In this process, sharing the loaded pipeline with the other configurations (the default)."""

    def generate(self, call: GenerationCall) -> ConfigResult:
        bench, c = self.bench, call
        return bench.generator.generate(
            c.spec, c.jobs, bench.context, c.image_dir, self.run_dir, self.batch_size, c.advance, c.label, c.monitor
        )


class Isolated(GenerationStrategy):
    """In a fresh process per configuration, so its memory is its own (``--isolate``)."""

    def __init__(
        self, bench: Workbench, run_dir: Path, batch_size: int | None, job: Callable[[ConfigSpec], IsolatedJob]
    ):
        super().__init__(bench, run_dir, batch_size)
        self.job = job

    def generate(self, call: GenerationCall) -> ConfigResult:
        return run_isolated(self.job(call.spec), call.advance)


class MultiRank(GenerationStrategy):
    """Whole batches dealt round-robin to the ranks; every rank gets the merged result."""

    def __init__(self, bench: Workbench, run_dir: Path, batch_size: int | None, ranks: distributed.Ranks):
        super().__init__(bench, run_dir, batch_size)
        self.ranks = ranks

    def generate(self, call: GenerationCall) -> ConfigResult:
        bench, ranks, c = self.bench, self.ranks, call
        size = bench.generator.batch_size(c.spec, self.batch_size)
        mine = ranks.share(batches(c.jobs, size))
        part = bench.generator.generate(c.spec, mine, bench.context, c.image_dir, self.run_dir, size, c.advance)
        return distributed.merge_parts([job.key for job in c.jobs], ranks.gather_parts(part, self.run_dir))

    def settle(self) -> None:
        cache = self.bench.cache
        counts = self.ranks.gather((cache.hits, cache.misses))
        cache.hits, cache.misses = sum(h for h, _ in counts), sum(m for _, m in counts)


def make_strategy(
    bench: Workbench,
    run_dir: Path,
    batch_size: int | None,
    ranks: distributed.Ranks | None,
    isolated_job: Callable[[ConfigSpec], IsolatedJob] | None,
) -> GenerationStrategy:
    """The strategy a run asked for: ``isolated_job`` given (``--isolate``), a multi-process launch, or in-process."""
    if isolated_job is not None:
        return Isolated(bench, run_dir, batch_size, isolated_job)
    if ranks is not None:
        return MultiRank(bench, run_dir, batch_size, ranks)
    return InProcess(bench, run_dir, batch_size)
