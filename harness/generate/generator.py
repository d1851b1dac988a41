"""Generating one configuration's samples: cache lookup, isolated build, batched generation, storage.

A configuration never raises out of here for its own failures: an exception while
building or generating becomes an ``error`` result with its message and a short
traceback (an :class:`InputError` keeps its one-line message and marks the error as
the user's input). Samples already in the content-addressed cache are not generated
again; when all are cached, the configuration is not even built. Each sample's cache key
is a function of the configuration's :class:`~harness.identity.ConfigIdentity`, which
results.json records as the configuration's provenance.
"""

from __future__ import annotations

import functools
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from harness import environment
from harness.errors import InputError
from harness.generate.cache import SampleCache
from harness.identity import ConfigIdentity, Environment, PipelineIdentity, generation_inputs
from harness.kinds import cpu_half
from harness.kinds.base import BuildContext, ConfigKind, ConfigSpec, Notes, Runtime, jsonable
from harness.memory import PeakMemory
from harness.pipelines.family import LoadedPipeline
from harness.plan.suite import Suite
from harness.results import STATUS_ERROR, STATUS_OK, STATUS_SKIPPED, ConfigResult, SampleResult
from harness.samples import (
    FileWriter,
    ImageHealth,
    SampleJob,
    inspect_float_image,
    io_threads,
    load_png,
    save_png,
    to_uint8,
)
from harness.timing import BatchClock, measured, summarize_timings, timing_passes

TRACEBACK_LINES = 12
NOT_MEASURED = "timing and memory not measured (cached): run with --no-cache to measure them"


class Observer(Protocol):
    """What watches a configuration's samples as they are generated and may stop it (sequential sampling's
    :class:`harness.judge.sequential.Monitor`): generation knows only this."""

    def observe(self, jobs: Sequence[SampleJob], images: Sequence[np.ndarray], health: Sequence[ImageHealth]) -> None:
        """Every sample, cached ones first, as uint8 HxWx3 images (as stored) with their health."""

    def stop(self) -> str:
        """Why to stop now (empty: go on)."""

    def record(self) -> dict[str, Any]:
        """What results.json says about the stop."""


def plan(suite: Suite, config: str) -> list[SampleJob]:
    """The sample jobs of one configuration, prompt-major."""
    return [SampleJob(config, index, prompt, seed) for index, prompt, seed in suite.samples()]


def batches(jobs: Sequence[SampleJob], size: int) -> list[list[SampleJob]]:
    return [list(jobs[first : first + size]) for first in range(0, len(jobs), size)]


def short_traceback(error: BaseException) -> str:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return "\n".join("".join(lines).rstrip().splitlines()[-TRACEBACK_LINES:])


@dataclass(frozen=True)
class Destination:
    """Where one configuration's images go, and what hears about its progress."""

    image_dir: Path
    run_dir: Path
    advance: Callable[[int], None]
    status: Callable[[str], None] = lambda _text: None


class ConfigGenerator:
    """Generates configurations for one run: shared kinds, cache and device."""

    def __init__(
        self,
        kinds: Mapping[str, ConfigKind],
        cache: SampleCache | None,
        suite: Suite,
        device: str,
        loader: Callable[[], LoadedPipeline],
        timing_repeats: int | None = 0,
    ):
        self.kinds = kinds
        self.cache = cache
        self.suite = suite
        self.device = device
        self.loader = loader
        self.timing_repeats = timing_repeats  # extra timed passes per configuration; None: what the speed gate needs
        self._device_class = environment.device_class(device)
        self.cache_dir = cache.directory if cache is not None else None  # where the machine's CPU half path is kept

    def batch_size(self, spec: ConfigSpec, requested: int | None) -> int:
        kind = self.kinds[spec.kind]
        return int(requested or self.suite.generation.batch_size or kind.default_batch_size(spec.options, self.device))

    def identity(self, spec: ConfigSpec, size: int) -> ConfigIdentity:
        """Everything the configuration's images depend on (the cache's key, results' provenance): the loaded
        pipeline's content for kinds that run it, every generation setting, the options and files, the batch size,
        the versions of the packages the kind uses, the device class and the CPU's half-precision path."""
        kind = self.kinds[spec.kind]
        loaded = self.loader() if kind.needs_pipeline else None
        return ConfigIdentity(
            pipeline=loaded.identity if loaded is not None else PipelineIdentity(self.suite.pipeline.to_dict()),
            generation=generation_inputs(self.suite.generation),
            kind=spec.kind,
            options=jsonable(spec.options),
            files=kind.cache_inputs(spec.options, self.suite.directory),
            batch_size=size,
            environment=Environment(
                packages=environment.library_versions(kind.packages),
                device_class=self._device_class,
                numerics={"cpu_half": cpu_half.paths(self.cache_dir)} if self.device == "cpu" else {},
            ),
        )

    def generate(
        self,
        spec: ConfigSpec,
        jobs: Sequence[SampleJob],
        context: BuildContext,
        image_dir: Path,
        run_dir: Path,
        batch_size: int | None,
        advance: Callable[[int], None],
        status: Callable[[str], None] | None = None,
        monitor: Observer | None = None,
    ) -> ConfigResult:
        """Every sample of one configuration, from the cache or generated; never raises for the configuration.

        ``status`` hears what is going on besides generating (building, timing passes), for a progress label.
        ``monitor`` (sequential sampling) sees every sample in ``jobs`` order, cached ones first, and may stop
        generation early; the result then holds the samples generated so far and the monitor's record.
        """
        kind = self.kinds[spec.kind]
        context = replace(context, notes=Notes())
        base = ConfigResult(spec.name, spec.kind, STATUS_OK, spec.description, options=jsonable(spec.options))
        reason = kind.unavailable(spec.options, context.device)
        if reason:
            advance(len(jobs))
            return replace(base, status=STATUS_SKIPPED, message=reason)
        size = self.batch_size(spec, batch_size)
        try:
            identity = self.identity(spec, size)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # the pipeline did not load: this configuration cannot run
            advance(len(jobs))
            return _failed(base, error, Notes())
        where = Destination(image_dir, run_dir, advance, status or (lambda _text: None))
        work = _ConfigWork(self, kind, spec, jobs, context, where, size, identity, monitor)
        return work.run(replace(base, identity={"digest": identity.digest(), **identity.to_dict()}))

    def write(self, pixels: np.ndarray, path: Path, cache_key: str, health: ImageHealth, seconds: float) -> None:
        save_png(pixels, path)
        if self.cache:
            self.cache.put(cache_key, path, health.nonfinite_fraction, health.blank, seconds)


@dataclass
class _ConfigWork:
    """One configuration's generation: the cached samples first, then the build, the batches and the timing
    passes, each step a method, all of them sharing what the configuration has so far."""

    generator: ConfigGenerator
    kind: ConfigKind
    spec: ConfigSpec
    jobs: Sequence[SampleJob]
    context: BuildContext
    where: Destination
    size: int
    identity: ConfigIdentity
    monitor: Observer | None
    keys: dict[str, str] = field(init=False)
    done: dict[str, SampleResult] = field(init=False, default_factory=dict)
    generated: list[SampleResult] = field(init=False, default_factory=list)
    timing: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.keys = {job.key: self.identity.sample_key(job.prompt, job.seed) for job in self.jobs}

    @property
    def cache(self) -> SampleCache | None:
        return self.generator.cache

    @property
    def timed(self) -> bool:
        """Whether a gate needs this configuration's timings: then the cache is not read and timing passes are
        added as a run with a baseline adds them (harness/judge/speed.py)."""
        return self.spec.name in self.generator.suite.timed()

    def run(self, base: ConfigResult) -> ConfigResult:
        missing = list(self.jobs) if self.timed else self._from_cache()
        if self.monitor is not None:
            missing = self._observe_cached(missing)
            base = replace(base, sequential=self.monitor.record())
        self.timing = {"batch_size": self.size, "cache_hits": len(self.done), "cache_misses": len(missing)}
        if not missing:
            return self._all_cached(base)
        if self.timed:
            self.context.notes["timing"] = "timed: a speed gate needs it, so the sample cache was not read"
        elif self.done:
            self.context.notes["timing"] = f"partly cached: timed on the {len(missing)} samples generated in this run"
        return self._generate(base, missing)

    def _from_cache(self) -> list[SampleJob]:
        for job in self.jobs:
            hit = self.cache.get(self.keys[job.key]) if self.cache else None
            if hit is not None:
                path = self.where.image_dir / f"{job.key}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(hit.path, path)
                self.done[job.key] = self._sample(
                    job, path, hit.seconds, ImageHealth(hit.nonfinite_fraction, hit.blank)
                )
                self.done[job.key] = replace(self.done[job.key], cached=True)
        self.where.advance(len(self.done))
        return [job for job in self.jobs if job.key not in self.done]

    def _observe_cached(self, missing: list[SampleJob]) -> list[SampleJob]:
        assert self.monitor is not None
        cached = [job for job in self.jobs if job.key in self.done]
        self.monitor.observe(
            cached,
            [load_png(self.where.run_dir / str(self.done[job.key].image)) for job in cached],
            [ImageHealth(self.done[job.key].nonfinite_fraction, self.done[job.key].blank) for job in cached],
        )
        if self.monitor.stop():
            self.where.advance(len(missing))
            return []
        return missing

    def _ordered(self) -> tuple[SampleResult, ...]:
        return tuple(self.done[job.key] for job in self.jobs if job.key in self.done)

    def _all_cached(self, base: ConfigResult) -> ConfigResult:
        record = (self.cache.get_config(self.identity.digest()) if self.cache else None) or {}
        notes = {
            **record.get("notes", {}),
            "from_cache": "every sample came from the sample cache; nothing was generated",
            "timing": NOT_MEASURED,
        }
        ordered = self._ordered()
        return replace(
            base, samples=ordered, timing={**self.timing, "images": len(ordered), "measured": 0}, notes=notes
        )

    def _generate(self, base: ConfigResult, missing: list[SampleJob]) -> ConfigResult:
        runtime: Runtime | None = None
        peak = PeakMemory(self.context.device)
        clock: BatchClock | None = None
        writer = FileWriter(0 if self.context.device == "cpu" else io_threads())
        try:
            with peak:
                runtime, clock = self._build(peak)
                ran = self._batches(runtime, clock, missing, writer)
                self._timing_passes(runtime, clock, ran)
                self.timing.update(summarize_timings(clock.timings))
            notes = jsonable(runtime.notes.snapshot())
            if self.cache:
                self.cache.put_config(self.identity.digest(), {"notes": notes})
            self.done.update({s.key: s for s in self.generated})
            ordered = self._ordered()
            return replace(
                base,
                samples=ordered,
                timing={**self.timing, "images": len(ordered)},
                memory=peak.report(),
                notes=notes,
                batches=tuple(clock.timings),
                sequential=self.monitor.record() if self.monitor is not None else {},
            )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            self.where.advance(len(missing) - len(self.generated))
            self.done.update({s.key: s for s in self.generated})
            failed = _failed(base, error, runtime.notes if runtime is not None else self.context.notes)
            return replace(
                failed,
                samples=self._ordered(),
                timing=self.timing,
                memory=peak.report(),
                batches=tuple(clock.timings) if clock is not None else (),
                sequential=self.monitor.record() if self.monitor is not None else {},
            )
        finally:
            writer.close()
            if clock is not None:
                clock.close()
            if runtime is not None:
                runtime.close()

    def _build(self, peak: PeakMemory) -> tuple[Runtime, BatchClock]:
        start = time.perf_counter()
        self.where.status("(building: loading, casting, calibrating, writing files)")
        runtime = self.kind.build(self.spec.options, self.context)
        self.where.status("")
        self.timing["load_s"] = round(time.perf_counter() - start, 4)
        peak.mark("rss_after_load_mb")
        peak.mark_built()
        return runtime, BatchClock(self.context.device, runtime.denoiser())

    def _batches(
        self, runtime: Runtime, clock: BatchClock, missing: list[SampleJob], writer: FileWriter
    ) -> list[SampleJob]:
        """Generate the missing samples batch by batch (a monitor may stop it); the jobs that ran, in order."""
        start = time.perf_counter()
        for batch in batches(missing, self.size):
            images = clock.time(functools.partial(runtime.generate, batch), len(batch))
            stored = self._store(batch, images, clock.timings[-1].image_s, writer)
            self.generated.extend(sample for sample, _, _ in stored)
            self.where.advance(len(batch))
            if self.monitor is not None:
                self.monitor.observe(batch, [pixels for _, pixels, _ in stored], [h for _, _, h in stored])
                if self.monitor.stop():
                    self.where.advance(len(missing) - len(self.generated))
                    break
        writer.drain()
        self.timing["generate_s"] = round(time.perf_counter() - start, 4)
        self.timing["per_image_s"] = round(self.timing["generate_s"] / max(1, len(self.generated)), 4)
        return missing[: len(self.generated)]  # generated in order; a sequential stop cuts the tail

    def _timing_passes(self, runtime: Runtime, clock: BatchClock, ran: list[SampleJob]) -> None:
        start = time.perf_counter()
        repeats = self.generator.timing_repeats
        if self.timed and not repeats:
            repeats = None  # as many passes as bring its timed calls to what an interval needs
        passes = timing_passes(repeats, len(measured(clock.timings)), len(batches(ran, self.size)))
        for repeat in range(1, passes + 1):
            self.where.status(f"(timing pass {repeat}/{passes})")
            for batch in batches(ran, self.size):
                clock.time(functools.partial(runtime.generate, batch), len(batch), repeat)
        if passes:
            self.timing["repeats_s"] = round(time.perf_counter() - start, 4)
            self.where.status("")
        if repeats is None:
            self.timing["auto_timing_passes"] = passes

    def _store(
        self, jobs: Sequence[SampleJob], images: Sequence[np.ndarray], seconds: float, writer: FileWriter
    ) -> list[tuple[SampleResult, np.ndarray, ImageHealth]]:
        """Each sample's record, with its 8-bit pixels (as written) and health."""
        if len(images) != len(jobs):
            raise RuntimeError(f"the runtime returned {len(images)} images for {len(jobs)} samples")
        expected = self.generator.suite.generation.image_shape
        results = []
        for job, image in zip(jobs, images, strict=True):
            if tuple(image.shape) != expected:
                raise RuntimeError(
                    f"sample {job.key}: image of shape {tuple(image.shape)}, expected {expected} (HxWx3; a clip's "
                    "frames stacked top to bottom)"
                )
            health = inspect_float_image(image)
            path = self.where.image_dir / f"{job.key}.png"
            pixels = to_uint8(image)
            writer.submit(self.generator.write, pixels, path, self.keys[job.key], health, round(seconds, 4))
            results.append((self._sample(job, path, round(seconds, 4), health), pixels, health))
        return results

    def _sample(
        self, job: SampleJob, path: Path, seconds: float | None, health: ImageHealth, cached: bool = False
    ) -> SampleResult:
        return SampleResult(
            key=job.key,
            prompt_index=job.prompt_index,
            prompt=job.prompt,
            seed=job.seed,
            image=str(path.relative_to(self.where.run_dir)),
            seconds=seconds,
            nonfinite_fraction=health.nonfinite_fraction,
            blank=health.blank,
            cached=cached,
        )


def _failed(base: ConfigResult, error: BaseException, notes: Notes) -> ConfigResult:
    """``base`` as an error: the user's input (one line) or a runtime failure (with a short traceback)."""
    is_input = isinstance(error, InputError)
    return replace(
        base,
        status=STATUS_ERROR,
        error_type="input" if is_input else "runtime",
        message=str(error) if is_input else f"{type(error).__name__}: {error}",
        traceback="" if is_input else short_traceback(error),
        notes=jsonable(notes.snapshot()),
    )
