"""Generating one configuration's samples: cache lookup, isolated build, batched generation, storage.

A configuration never raises out of here for its own failures: an exception while
building or generating becomes an ``error`` result with its message and a short
traceback (an :class:`InputError` keeps its one-line message and marks the error as
the user's input). Samples already in the content-addressed cache are not generated
again; when all are cached, the configuration is not even built.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness import environment
from harness.errors import InputError, Where
from harness.generate.cache import CACHE_VERSION, SampleCache, digest
from harness.judge.sequential import Monitor
from harness.kinds.base import BuildContext, ConfigKind, ConfigSpec, Notes, Runtime, jsonable
from harness.memory import PeakMemory
from harness.pipelines.source import LoadedPipeline, load_pipeline, source_fingerprint
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


def plan(suite: Suite, config: str) -> list[SampleJob]:
    """The sample jobs of one configuration, prompt-major."""
    return [SampleJob(config, index, prompt, seed) for index, prompt, seed in suite.samples()]


def batches(jobs: Sequence[SampleJob], size: int) -> list[list[SampleJob]]:
    return [list(jobs[first : first + size]) for first in range(0, len(jobs), size)]


def short_traceback(error: BaseException) -> str:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return "\n".join("".join(lines).rstrip().splitlines()[-TRACEBACK_LINES:])


class BaseLoader:
    """Loads the suite's pipeline once, on first use, and remembers a failure too."""

    def __init__(self, suite: Suite):
        self.suite = suite
        self._loaded: LoadedPipeline | None = None
        self._error: BaseException | None = None

    def __call__(self) -> LoadedPipeline:
        if self._loaded is None and self._error is None:
            try:
                self._loaded = load_pipeline(self.suite.pipeline, Where(self.suite.path))
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


class ConfigGenerator:
    """Generates configurations for one run: shared kinds, cache and device."""

    def __init__(
        self,
        kinds: dict[str, ConfigKind] | Any,
        cache: SampleCache | None,
        suite: Suite,
        device: str,
        timing_repeats: int | None = 0,
    ):
        self.kinds = kinds
        self.cache = cache
        self.suite = suite
        self.device = device
        self.timing_repeats = timing_repeats  # extra timed passes per configuration; None: what the speed gate needs
        self._environment = {
            "libraries": environment.library_versions(),
            "device_class": environment.device_class(device),
            "pipeline": source_fingerprint(suite.pipeline),
        }

    def batch_size(self, spec: ConfigSpec, requested: int | None) -> int:
        kind = self.kinds[spec.kind]
        return int(requested or self.suite.generation.batch_size or kind.default_batch_size(spec.options, self.device))

    def config_key(self, spec: ConfigSpec, size: int) -> str:
        kind = self.kinds[spec.kind]
        gen = self.suite.generation
        return digest(
            {
                "version": CACHE_VERSION,
                "environment": self._environment,
                "kind": spec.kind,
                "options": jsonable(spec.options),
                "files": kind.cache_inputs(spec.options, self.suite.directory),
                "generation": [gen.steps, gen.width, gen.height, gen.guidance, gen.negative_prompt],
                "batch_size": size,
                "cpu_half": os.environ.get("HARNESS_CPU_HALF", "auto") if self.device == "cpu" else None,
            }
        )

    @staticmethod
    def sample_key(config_key: str, job: SampleJob) -> str:
        return digest({"config": config_key, "prompt": job.prompt, "seed": job.seed})

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
        monitor: Monitor | None = None,
    ) -> ConfigResult:
        """Every sample of one configuration, from the cache or generated; never raises for the configuration.

        ``status`` hears what is going on besides generating (building, timing passes), for a progress label.
        ``monitor`` (sequential sampling) sees every sample in ``jobs`` order, cached ones first, and may stop
        generation early; the result then holds the samples generated so far and the monitor's record.
        """
        say = status or (lambda _text: None)
        kind = self.kinds[spec.kind]
        context = replace(context, notes=Notes())
        base = ConfigResult(
            name=spec.name,
            kind=spec.kind,
            status=STATUS_OK,
            description=spec.description,
            options=jsonable(spec.options),
        )
        reason = kind.unavailable(spec.options, context.device)
        if reason:
            advance(len(jobs))
            return replace(base, status=STATUS_SKIPPED, message=reason)
        size = self.batch_size(spec, batch_size)
        config_key = self.config_key(spec, size)
        keys = {job.key: self.sample_key(config_key, job) for job in jobs}
        done: dict[str, SampleResult] = {}
        for job in jobs:
            hit = self.cache.get(keys[job.key]) if self.cache else None
            if hit is not None:
                path = image_dir / f"{job.key}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(hit.path, path)
                done[job.key] = _sample(job, path, run_dir, hit.seconds, hit.nonfinite_fraction, hit.blank, cached=True)
        advance(len(done))
        missing = [job for job in jobs if job.key not in done]
        if monitor is not None:
            cached = [job for job in jobs if job.key in done]
            monitor.observe(
                cached,
                [load_png(run_dir / str(done[job.key].image)) for job in cached],
                [ImageHealth(done[job.key].nonfinite_fraction, done[job.key].blank) for job in cached],
            )
            if monitor.stop():
                advance(len(missing))
                missing = []
            base = replace(base, sequential=monitor.record())
        timing: dict[str, float] = {"batch_size": size, "cache_hits": len(done), "cache_misses": len(missing)}
        if not missing:
            record = (self.cache.get_config(config_key) if self.cache else None) or {}
            ordered = tuple(done[job.key] for job in jobs if job.key in done)
            notes = {
                **record.get("notes", {}),
                "from_cache": "every sample came from the sample cache; nothing was generated",
                "timing": NOT_MEASURED,
            }
            return replace(base, samples=ordered, timing={**timing, "images": len(ordered), "measured": 0}, notes=notes)
        if done:
            context.notes["timing"] = f"partly cached: timed on the {len(missing)} samples generated in this run"
        runtime: Runtime | None = None
        peak = PeakMemory(context.device)
        clock: BatchClock | None = None
        generated: list[SampleResult] = []
        writer = FileWriter(0 if context.device == "cpu" else io_threads())
        try:
            with peak:
                start = time.perf_counter()
                say("(building: loading, casting, calibrating, writing files)")
                runtime = kind.build(spec.options, context)
                say("")
                timing["load_s"] = round(time.perf_counter() - start, 4)
                peak.mark("rss_after_load_mb")
                peak.mark_built()
                clock = BatchClock(context.device, runtime.denoiser())
                generate_start = time.perf_counter()
                for batch in batches(missing, size):
                    images = clock.time(functools.partial(runtime.generate, batch), len(batch))
                    seconds = clock.timings[-1].image_s
                    stored = self._store(batch, images, seconds, image_dir, run_dir, keys, writer)
                    generated.extend(sample for sample, _, _ in stored)
                    advance(len(batch))
                    if monitor is not None:
                        monitor.observe(batch, [pixels for _, pixels, _ in stored], [h for _, _, h in stored])
                        if monitor.stop():
                            advance(len(missing) - len(generated))
                            break
                writer.drain()
                ran = missing[: len(generated)]  # generated in order; a sequential stop cuts the tail
                timing["generate_s"] = round(time.perf_counter() - generate_start, 4)
                timing["per_image_s"] = round(timing["generate_s"] / max(1, len(generated)), 4)
                repeats_start = time.perf_counter()
                passes = timing_passes(self.timing_repeats, len(measured(clock.timings)), len(batches(ran, size)))
                for repeat in range(1, passes + 1):
                    say(f"(timing pass {repeat}/{passes})")
                    for batch in batches(ran, size):
                        clock.time(functools.partial(runtime.generate, batch), len(batch), repeat)
                if passes:
                    timing["repeats_s"] = round(time.perf_counter() - repeats_start, 4)
                    say("")
                if self.timing_repeats is None:
                    timing["auto_timing_passes"] = passes
                timing.update(summarize_timings(clock.timings))
            notes = jsonable(runtime.notes.snapshot())
            memory = peak.report()
            if self.cache:
                self.cache.put_config(config_key, {"notes": notes})
            done.update({s.key: s for s in generated})
            ordered = tuple(done[job.key] for job in jobs if job.key in done)
            return replace(
                base,
                samples=ordered,
                timing={**timing, "images": len(ordered)},
                memory=memory,
                notes=notes,
                batches=tuple(clock.timings),
                sequential=monitor.record() if monitor is not None else {},
            )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            advance(len(missing) - len(generated))
            notes = jsonable((runtime.notes if runtime is not None else context.notes).snapshot())
            is_input = isinstance(error, InputError)
            done.update({s.key: s for s in generated})
            return replace(
                base,
                status=STATUS_ERROR,
                error_type="input" if is_input else "runtime",
                message=str(error) if is_input else f"{type(error).__name__}: {error}",
                traceback="" if is_input else short_traceback(error),
                samples=tuple(done[job.key] for job in jobs if job.key in done),
                timing=timing,
                memory=peak.report(),
                notes=notes,
                batches=tuple(clock.timings) if clock is not None else (),
                sequential=monitor.record() if monitor is not None else {},
            )
        finally:
            writer.close()
            if clock is not None:
                clock.close()
            if runtime is not None:
                runtime.close()

    def _write(self, pixels: np.ndarray, path: Path, cache_key: str, health: ImageHealth, seconds: float) -> None:
        save_png(pixels, path)
        if self.cache:
            self.cache.put(cache_key, path, health.nonfinite_fraction, health.blank, seconds)

    def _store(
        self,
        jobs: Sequence[SampleJob],
        images: Sequence[np.ndarray],
        seconds: float,
        image_dir: Path,
        run_dir: Path,
        keys: dict[str, str],
        writer: FileWriter,
    ) -> list[tuple[SampleResult, np.ndarray, ImageHealth]]:
        """Each sample's record, with its 8-bit pixels (as written) and health."""
        if len(images) != len(jobs):
            raise RuntimeError(f"the runtime returned {len(images)} images for {len(jobs)} samples")
        expected = self.suite.generation.image_shape
        results = []
        for job, image in zip(jobs, images, strict=True):
            if tuple(image.shape) != expected:
                raise RuntimeError(
                    f"sample {job.key}: image of shape {tuple(image.shape)}, expected {expected} (HxWx3; a clip's "
                    "frames stacked top to bottom)"
                )
            health = inspect_float_image(image)
            path = image_dir / f"{job.key}.png"
            pixels = to_uint8(image)
            writer.submit(self._write, pixels, path, keys[job.key], health, round(seconds, 4))
            sample = _sample(job, path, run_dir, round(seconds, 4), health.nonfinite_fraction, health.blank)
            results.append((sample, pixels, health))
        return results


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
    kinds: Mapping[str, ConfigKind],
    device: str,
    cache_dir: Path,
    work_dir: Path,
    use_cache: bool = True,
    timing_repeats: int | None = 0,
) -> Workbench:
    """The loader, context, cache and generator of one run of ``suite`` on ``device``."""
    loader = BaseLoader(suite)
    cache = SampleCache(cache_dir, read=use_cache)
    return Workbench(
        suite=suite,
        loader=loader,
        context=make_context(suite, device, loader, cache_dir, work_dir),
        cache=cache,
        generator=ConfigGenerator(kinds, cache, suite, device, timing_repeats),
    )


def _sample(
    job: SampleJob,
    path: Path,
    run_dir: Path,
    seconds: float | None,
    nonfinite: float,
    blank: bool,
    cached: bool = False,
) -> SampleResult:
    return SampleResult(
        key=job.key,
        prompt_index=job.prompt_index,
        prompt=job.prompt,
        seed=job.seed,
        image=str(path.relative_to(run_dir)),
        seconds=seconds,
        nonfinite_fraction=nonfinite,
        blank=blank,
        cached=cached,
    )
