"""Run a suite: plan the samples, generate every configuration in isolation, score, check.

One configuration that raises is recorded as ``error`` with its message and a short
traceback; the others still run. ``results.json`` is rewritten (atomically) after
every configuration, so results already computed survive a crash or Ctrl-C.
"""

from __future__ import annotations

import functools
import secrets
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness import environment, references
from harness.checks import exit_code, run_checks
from harness.configs.base import BuildContext, ConfigKind, ConfigSpec, Notes, Runtime, jsonable
from harness.configs.streaming import StreamingOptions
from harness.errors import EXIT_INPUT, InputError, Where
from harness.isolation import run_isolated
from harness.memory import PeakMemory
from harness.metrics.base import Metric, ScoringContext
from harness.pipelines.source import LoadedPipeline, load_pipeline
from harness.results import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SKIPPED,
    ConfigResult,
    RunResult,
    SampleResult,
    write_results,
)
from harness.samples import SampleJob, inspect_float_image, save_png, to_uint8
from harness.scoring import equivalence, reference_scores, score_config
from harness.suite import Suite

TRACEBACK_LINES = 12


@dataclass(frozen=True)
class RunRequest:
    """What the user asked ``run`` or ``bless`` to do."""

    suite: Suite
    configs: tuple[str, ...] = ()
    out_dir: Path | None = None
    reports_root: Path = Path("reports")
    device: str = "auto"
    batch_size: int | None = None
    cache_dir: Path = Path(".harness_cache")
    isolate: bool = False


@dataclass(frozen=True)
class RunOutput:
    result: RunResult
    run_dir: Path


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def plan(suite: Suite, config: str) -> list[SampleJob]:
    """The sample jobs of one configuration, prompt-major."""
    return [SampleJob(config, index, prompt, seed) for index, prompt, seed in suite.samples()]


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


class Runner:
    """Drives generation, scoring and checks; kinds and metrics are passed in."""

    def __init__(
        self, kinds: Mapping[str, ConfigKind], metrics: Mapping[str, type[Metric]], console: Console | None = None
    ):
        self.kinds = kinds
        self.metric_classes = metrics
        self.console = console or Console(stderr=True)

    # ---- generation -------------------------------------------------------------------
    def _context(self, request: RunRequest, device: str, loader: BaseLoader, work_dir: Path) -> BuildContext:
        return BuildContext(
            device=device,
            generation=request.suite.generation,
            load_base=loader,
            cache_dir=request.cache_dir,
            work_dir=work_dir,
            suite_dir=request.suite.directory,
            prompts=request.suite.prompts,
            seeds=request.suite.seeds,
        )

    def generate_config(
        self,
        spec: ConfigSpec,
        jobs: Sequence[SampleJob],
        context: BuildContext,
        image_dir: Path,
        run_dir: Path,
        batch_size: int | None,
        advance: Callable[[int], None],
    ) -> ConfigResult:
        """Generate every sample of one configuration; never raises for the configuration's own failures."""
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
        samples: list[SampleResult] = []
        runtime: Runtime | None = None
        timing: dict[str, float] = {}
        peak = PeakMemory(context.device)
        try:
            with peak:
                start = time.perf_counter()
                runtime = kind.build(spec.options, context)
                timing["load_s"] = round(time.perf_counter() - start, 4)
                peak.mark("rss_after_load_mb")
                size = batch_size or context.generation.batch_size or runtime.preferred_batch_size() or 1
                generate_start = time.perf_counter()
                for first in range(0, len(jobs), size):
                    batch = jobs[first : first + size]
                    batch_start = time.perf_counter()
                    images = runtime.generate(batch)
                    seconds = (time.perf_counter() - batch_start) / len(batch)
                    samples.extend(self._store(batch, images, seconds, image_dir, run_dir, context))
                    advance(len(batch))
                timing["generate_s"] = round(time.perf_counter() - generate_start, 4)
                timing["images"] = len(samples)
                timing["per_image_s"] = round(timing["generate_s"] / max(1, len(samples)), 4)
                timing["batch_size"] = size
            notes = jsonable(runtime.notes.snapshot())
            return replace(base, samples=tuple(samples), timing=timing, memory=peak.report(), notes=notes)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            advance(len(jobs) - len(samples))
            notes = jsonable((runtime.notes if runtime is not None else context.notes).snapshot())
            is_input = isinstance(error, InputError)
            return replace(
                base,
                status=STATUS_ERROR,
                error_type="input" if is_input else "runtime",
                message=str(error) if is_input else f"{type(error).__name__}: {error}",
                traceback="" if is_input else short_traceback(error),
                samples=tuple(samples),
                timing=timing,
                memory=peak.report(),
                notes=notes,
            )
        finally:
            if runtime is not None:
                runtime.close()

    def _store(
        self,
        jobs: Sequence[SampleJob],
        images: Sequence[np.ndarray],
        seconds: float,
        image_dir: Path,
        run_dir: Path,
        context: BuildContext,
    ) -> list[SampleResult]:
        if len(images) != len(jobs):
            raise RuntimeError(f"the runtime returned {len(images)} images for {len(jobs)} samples")
        expected = (context.generation.height, context.generation.width, 3)
        results = []
        for job, image in zip(jobs, images, strict=True):
            if tuple(image.shape) != expected:
                raise RuntimeError(
                    f"sample {job.key}: image of shape {tuple(image.shape)}, expected {expected} (HxWx3)"
                )
            health = inspect_float_image(image)
            path = image_dir / f"{job.key}.png"
            save_png(to_uint8(image), path)
            results.append(
                SampleResult(
                    key=job.key,
                    prompt_index=job.prompt_index,
                    prompt=job.prompt,
                    seed=job.seed,
                    image=str(path.relative_to(run_dir)),
                    seconds=round(seconds, 4),
                    nonfinite_fraction=health.nonfinite_fraction,
                    blank=health.blank,
                )
            )
        return results

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )

    # ---- bless ------------------------------------------------------------------------
    def bless(self, request: RunRequest) -> references.Manifest:
        """Generate the reference configuration's images and store them with a manifest."""
        suite = request.suite
        device = environment.resolve_device(request.device)
        environment.quiet_libraries()
        loader = BaseLoader(suite)
        spec = suite.reference_config
        with tempfile.TemporaryDirectory(prefix="harness-bless-") as temporary:
            work = Path(temporary)
            context = self._context(request, device, loader, work)
            with self._progress() as progress:
                task = progress.add_task(f"bless {spec.name}", total=len(suite.samples()))
                result = self.generate_config(
                    spec,
                    plan(suite, spec.name),
                    context,
                    work / "images",
                    work,
                    request.batch_size,
                    lambda n: progress.advance(task, n),
                )
            if result.status != STATUS_OK:
                raise BlessError(f"configuration {spec.name!r} {result.status}: {result.message}\n{result.traceback}")
            unhealthy = [s.key for s in result.samples if s.nonfinite_fraction > 0 or s.blank]
            if unhealthy:
                raise BlessError(
                    f"reference images contain NaN/Inf or are blank: {', '.join(unhealthy)}; not blessing them"
                )
            from harness.samples import load_png

            images = {s.key: load_png(work / str(s.image)) for s in result.samples}
            return references.bless(suite, images, loader().fingerprint, environment.describe(device), now())

    # ---- run --------------------------------------------------------------------------
    def run(self, request: RunRequest, on_config_done: Callable[[RunResult, Path], None] | None = None) -> RunOutput:
        """Generate, score and check; returns the final result (also written to results.json)."""
        suite = request.suite
        selected = self._select(request)
        device = environment.resolve_device(request.device)
        refs = references.verify(suite)
        scoring_context = ScoringContext(
            device=device, cache_dir=request.cache_dir, references_digest=refs.manifest.digest
        )
        metrics = self._metrics(suite, scoring_context)
        environment.quiet_libraries()

        run_id = new_run_id()
        run_dir = request.out_dir or (request.reports_root / suite.name / run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        result = RunResult(
            suite=suite.to_dict(), run_id=run_id, started=now(), environment=environment.describe(device)
        )
        results_path = run_dir / "results.json"
        write_results(result, results_path)
        copy_references(refs, run_dir / "images" / "reference")

        loader = BaseLoader(suite)
        if any(self.kinds[suite.config(name).kind].needs_pipeline for name in selected):
            try:
                loaded = loader()
                references.check_pipeline(refs, loaded.fingerprint)
                result = replace(
                    result, environment={**result.environment, "pipeline_load_s": round(loaded.load_seconds, 3)}
                )
            except RuntimeError:
                pass  # recorded per configuration: each pipeline configuration errors with the load failure
        context = self._context(request, device, loader, run_dir)
        try:
            with self._progress() as progress:
                for name in selected:
                    spec = suite.config(name)
                    task = progress.add_task(name, total=len(suite.samples()))
                    advance = functools.partial(progress.advance, task)
                    if request.isolate:
                        config_result = run_isolated(self._isolation_payload(request, spec, device, run_dir), advance)
                    else:
                        config_result = self.generate_config(
                            spec,
                            plan(suite, name),
                            context,
                            run_dir / "images" / name,
                            run_dir,
                            request.batch_size,
                            advance,
                        )
                    result = result.with_config(config_result)
                    write_results(result, results_path)
                    if on_config_done:
                        on_config_done(result, run_dir)
                scoring = progress.add_task("scoring", total=len(metrics) * (len(selected) + 1))

                def advance_scoring(n: int) -> None:
                    progress.advance(scoring, n)

                ref_scores = reference_scores(metrics, refs)
                advance_scoring(len(metrics))
                for config in result.configs:
                    result = result.with_config(score_config(config, metrics, refs, run_dir, advance_scoring))
        except KeyboardInterrupt:
            write_results(replace(result, state="interrupted", finished=now()), results_path)
            raise
        result = replace(result, reference_scores=ref_scores)
        result = self._equivalences(suite, result, run_dir)
        blank_refs = [key for key in refs.sample_keys() if inspect_float_image(refs.image(key) / 255.0).blank]
        thresholds = {name: suite.thresholds_for(name) for name in selected}
        controls = [name for name in selected if suite.config(name).expect == "fail"]
        outcomes = run_checks(result, thresholds, blank_refs, controls)
        code = exit_code(outcomes)
        if any(c.error_type == "input" for c in result.configs):
            code = EXIT_INPUT  # a bad input file (e.g. a range file for another model) ends as an input error
        result = replace(
            result,
            checks=outcomes,
            counters=dict(scoring_context.counters),
            warnings=tuple(scoring_context.warnings),
            verdict="pass" if code == 0 else "fail",
            exit_code=code,
            state="complete",
            finished=now(),
        )
        write_results(result, results_path)
        return RunOutput(result, run_dir)

    @staticmethod
    def _isolation_payload(request: RunRequest, spec: ConfigSpec, device: str, run_dir: Path) -> dict[str, object]:
        return {
            "suite": str(request.suite.path),
            "config": spec.name,
            "kind": spec.kind,
            "device": device,
            "batch_size": request.batch_size,
            "cache_dir": str(request.cache_dir.resolve()),
            "run_dir": str(run_dir.resolve()),
            "image_dir": str((run_dir / "images" / spec.name).resolve()),
        }

    def _equivalences(self, suite: Suite, result: RunResult, run_dir: Path) -> RunResult:
        """Streaming configurations must reproduce the plain configuration of the same precision."""
        for config in result.configs:
            spec = suite.config(config.name)
            extra = getattr(spec.options, "extra", None)
            if config.status != STATUS_OK or not isinstance(extra, StreamingOptions):
                continue
            target_name = extra.equivalent_to or next(
                (
                    other.name
                    for other in suite.configs
                    if other.kind == "precision"
                    and other.name != spec.name
                    and other.options.precision == spec.options.precision
                ),
                None,
            )
            target = result.config(target_name) if target_name else None
            if target is None or target.status != STATUS_OK:
                found = {
                    "target": target_name,
                    "note": "no plain configuration of the same precision ran to compare with",
                }
            else:
                found = equivalence(config, target, run_dir)
            result = result.with_config(replace(config, notes={**config.notes, "equivalence": found}))
        return result

    def _select(self, request: RunRequest) -> list[str]:
        names = [spec.name for spec in request.suite.configs]
        if not request.configs:
            return names
        from harness.errors import unknown

        for name in request.configs:
            if name not in names:
                raise InputError(unknown("configuration", name, names) + " (from --config)")
        return [name for name in names if name in request.configs]

    def _metrics(self, suite: Suite, context: ScoringContext) -> list[Metric]:
        metrics = []
        for request in suite.metrics:
            metric = self.metric_classes[request.name](request.options, context)
            reason = metric.unavailable()
            if reason:
                raise InputError(reason, file=suite.path, key=f"metrics.{request.name}")
            metrics.append(metric)
        return metrics


def copy_references(refs: references.ReferenceSet, target: Path) -> None:
    """Copy the blessed images into the run folder, so it is a complete artifact on its own."""
    target.mkdir(parents=True, exist_ok=True)
    for key in refs.sample_keys():
        shutil.copyfile(refs.path(key), target / f"{key}.png")


class BlessError(RuntimeError):
    """The reference configuration could not produce healthy images."""


def short_traceback(error: BaseException) -> str:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    text = "".join(lines).rstrip().splitlines()
    return "\n".join(text[-TRACEBACK_LINES:])
