"""Run a suite: plan the samples, generate every configuration in isolation, score, check.

One configuration that raises is recorded as ``error`` with its message and a short
traceback; the others still run. ``results.json`` is rewritten (atomically) after
every configuration, so results already computed survive a crash or Ctrl-C.
"""

from __future__ import annotations

import functools
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harness import distributed, environment, phases, references
from harness.cache import SampleCache
from harness.checks import coverage_warnings, exit_code, run_checks
from harness.compare import compare_runs
from harness.configs.base import ConfigKind, ConfigSpec
from harness.errors import EXIT_INPUT, InputError
from harness.generate import BaseLoader, ConfigGenerator, batches, make_context, plan
from harness.isolation import IsolatedJob, run_isolated
from harness.memory import PeakMemory
from harness.metrics.base import Metric, ScoringContext
from harness.reference_source import LIVE, ReferenceFailure, ReferenceSource
from harness.references import ReferenceSet
from harness.report.console import make_console
from harness.results import STATUS_OK, RunResult, read_results, write_results
from harness.scoring import score_config, score_references
from harness.suite import Suite


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
    use_cache: bool = True
    baseline: Path | None = None
    timing_repeats: int | None = 0  # extra timed passes per configuration; None: what the speed gate needs
    references: str | None = None  # blessed | live; None: the suite's reference_images


@dataclass(frozen=True)
class RunOutput:
    result: RunResult
    run_dir: Path
    main: bool = True  # False on the other ranks of a multi-process run: rank 0 reports
    exit_code: int | None = None

    @property
    def code(self) -> int:
        return int(self.exit_code if self.exit_code is not None else self.result.exit_code or 0)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class Runner:
    """Drives generation, scoring and checks; kinds and metrics are passed in."""

    def __init__(
        self, kinds: Mapping[str, ConfigKind], metrics: Mapping[str, type[Metric]], console: Console | None = None
    ):
        self.kinds = kinds
        self.metric_classes = metrics
        self.console = console or make_console(stderr=True)

    @staticmethod
    def _cache(request: RunRequest) -> SampleCache:
        return SampleCache(request.cache_dir, read=request.use_cache)

    def _progress(self, enabled: bool = True) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
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
            context = make_context(suite, device, loader, request.cache_dir, work)
            generator = ConfigGenerator(self.kinds, self._cache(request), suite, device)
            with self._progress() as progress:
                task = progress.add_task(f"bless {spec.name}", total=len(suite.samples()))
                result = generator.generate(
                    spec,
                    plan(suite, spec.name),
                    context,
                    work / "images",
                    work,
                    request.batch_size,
                    functools.partial(progress.advance, task),
                )
            if result.status != STATUS_OK:
                raise BlessError(f"configuration {spec.name!r} {result.status}: {result.message}\n{result.traceback}")
            unhealthy = [s.key for s in result.samples if s.nonfinite_fraction > 0 or s.blank]
            if unhealthy:
                raise BlessError(
                    f"reference images contain NaN/Inf or are blank: {', '.join(unhealthy)}; not blessing them"
                )
            files = {s.key: work / str(s.image) for s in result.samples}
            return references.bless(suite, files, loader().fingerprint, environment.describe(device), now())

    # ---- run --------------------------------------------------------------------------
    def run(self, request: RunRequest, on_config_done: Callable[[RunResult, Path], None] | None = None) -> RunOutput:
        """Generate, score and check; returns the final result (also written to results.json)."""
        suite = request.suite
        startup_s, run_start = phases.since_process_start(), time.perf_counter()
        selected, support = self._select(request)
        ranks = distributed.detect(request.device)
        if ranks is not None and request.isolate:
            raise InputError(
                "--isolate cannot be combined with a multi-process launch: each rank is already its own process"
            )
        device = ranks.device if ranks is not None else environment.resolve_device(request.device)
        main = ranks is None or ranks.main
        source = ReferenceSource(suite, request.references or suite.reference_images)
        baseline = read_results(request.baseline) if request.baseline is not None else None
        scoring_context = ScoringContext(device=device, cache_dir=request.cache_dir, references_digest=source.digest)
        metrics, left_out = self._metrics(suite, scoring_context)
        environment.quiet_libraries()

        run_id = new_run_id() if ranks is None else ranks.broadcast(new_run_id())
        run_dir = request.out_dir or (request.reports_root / suite.name / run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        described = environment.describe(device)
        if ranks is not None:
            described["processes"] = ranks.world
        result = RunResult(suite=suite.to_dict(), run_id=run_id, started=now(), environment=described)
        results_path = run_dir / "results.json"
        if main:
            write_results(result, results_path)
            source.start(run_dir)

        loader = BaseLoader(suite)
        if any(self.kinds[suite.config(name).kind].needs_pipeline for name in selected):
            try:
                loaded = loader()
                source.check_pipeline(loaded.fingerprint)
                result = replace(
                    result, environment={**result.environment, "pipeline_load_s": round(loaded.load_seconds, 3)}
                )
            except RuntimeError:
                pass  # recorded per configuration: each pipeline configuration errors with the load failure
        context = make_context(suite, device, loader, request.cache_dir, run_dir)
        cache = self._cache(request)
        generator = ConfigGenerator(self.kinds, cache, suite, device, request.timing_repeats)
        pipeline_load_s = float(result.environment.get("pipeline_load_s", 0.0))
        setup_s = time.perf_counter() - run_start - pipeline_load_s  # references, metrics, device, imports
        try:
            with self._progress(enabled=main) as progress:
                for name in selected:
                    spec = suite.config(name)
                    jobs = plan(suite, name)
                    task = progress.add_task(name, total=len(jobs) if ranks is None else None)
                    advance = functools.partial(progress.advance, task)
                    image_dir = run_dir / "images" / name
                    if request.isolate:
                        config_result = run_isolated(self._isolated_job(request, spec, device, run_dir), advance)
                    elif ranks is not None:
                        size = generator.batch_size(spec, request.batch_size)
                        part = generator.generate(
                            spec, ranks.share(batches(jobs, size)), context, image_dir, run_dir, size, advance
                        )
                        parts = ranks.gather_parts(part, run_dir)
                        config_result = distributed.merge_parts([job.key for job in jobs], parts)
                    else:
                        label = functools.partial(_relabel, progress, task, name)
                        config_result = generator.generate(
                            spec, jobs, context, image_dir, run_dir, request.batch_size, advance, label
                        )
                    result = result.with_config(config_result)
                    if main:
                        write_results(result, results_path)
                    if on_config_done and main:
                        on_config_done(result, run_dir)
                if ranks is not None:
                    hits = ranks.gather((cache.hits, cache.misses))
                    cache.hits, cache.misses = sum(h for h, _ in hits), sum(m for _, m in hits)
                if not main:
                    assert ranks is not None
                    code = ranks.broadcast(None)
                    return RunOutput(result, run_dir, main=False, exit_code=code)
                scoring = progress.add_task("scoring", total=len(metrics) * (len(selected) + 1))

                def advance_scoring(n: float) -> None:
                    progress.advance(scoring, n)

                refs = self._references(source, result, run_dir, results_path)
                scoring_context.references_digest = refs.manifest.digest
                with PeakMemory() as scoring_memory:  # bounded: images are scored in chunks
                    reference = score_references(metrics, refs, advance_scoring, cache_dir=request.cache_dir)
                    for config in result.configs:
                        result = result.with_config(
                            score_config(config, metrics, refs, reference, run_dir, advance_scoring)
                        )
        except KeyboardInterrupt:
            write_results(replace(result, state="interrupted", finished=now()), results_path)
            raise
        result = replace(result, reference_scores=reference.scores, references=source.describe(refs))
        checks_start = time.perf_counter()
        result = self._finish_kinds(suite, result, run_dir)
        blank_refs = list(reference.blank)
        judged = [name for name in selected if name not in support]
        thresholds = {name: suite.thresholds_for(name) for name in judged}
        controls = [name for name in judged if suite.config(name).expect == "fail"]
        outcomes = run_checks(result, thresholds, blank_refs, controls, left_out, support)
        if baseline is not None:
            comparison = compare_runs(result, baseline, suite.regression, str(request.baseline))
            outcomes = (*outcomes, *comparison.outcomes())
            result = replace(result, comparison=comparison.to_dict())
        code = exit_code(outcomes)
        if any(c.error_type == "input" for c in result.configs):
            code = EXIT_INPUT  # a bad input file (e.g. a range file for another model) ends as an input error
        result = replace(
            result,
            checks=outcomes,
            counters={**scoring_context.counters, "sample_cache_hits": cache.hits, "sample_cache_misses": cache.misses},
            warnings=(
                *source.warnings,
                *source.environment_warnings(described),
                *coverage_warnings(outcomes, thresholds, controls),
                *(
                    f"also ran {name!r}, not judged: {why} (name it with --config to judge it)"
                    for name, why in support.items()
                ),
                *scoring_context.warnings,
            ),
            phases=phases.run_phases(
                result.configs,
                startup_s,
                pipeline_load_s,
                reference.seconds,
                time.perf_counter() - checks_start,
                scoring_memory=scoring_memory.report(),
                setup_s=setup_s,
            ),
            verdict="pass" if code == 0 else "fail",
            exit_code=code,
            state="complete",
            finished=now(),
        )
        write_results(result, results_path)
        if ranks is not None:
            ranks.broadcast(code)
        return RunOutput(result, run_dir)

    def _isolated_job(self, request: RunRequest, spec: ConfigSpec, device: str, run_dir: Path) -> IsolatedJob:
        return IsolatedJob(
            suite=request.suite.path,
            config=spec.name,
            kind=spec.kind,
            device=device,
            cache_dir=request.cache_dir.resolve(),
            run_dir=run_dir.resolve(),
            image_dir=(run_dir / "images" / spec.name).resolve(),
            kinds=self.kinds,
            metrics=self.metric_classes,
            use_cache=request.use_cache,
            batch_size=request.batch_size,
            timing_repeats=request.timing_repeats,
        )

    @staticmethod
    def _references(source: ReferenceSource, result: RunResult, run_dir: Path, results_path: Path) -> ReferenceSet:
        try:
            return source.resolve(result, run_dir, result.environment)
        except ReferenceFailure as error:
            write_results(replace(result, state="failed", warnings=(str(error),), finished=now()), results_path)
            raise

    def _finish_kinds(self, suite: Suite, result: RunResult, run_dir: Path) -> RunResult:
        """Each kind's own step after scoring (ConfigKind.finish), for the configurations that ran."""
        for config in result.configs:
            if config.status != STATUS_OK:
                continue
            spec = suite.config(config.name)
            finished = self.kinds[spec.kind].finish(spec, config, suite.configs, result.config, run_dir)
            if finished is not config:
                result = result.with_config(finished)
        return result

    def _select(self, request: RunRequest) -> tuple[list[str], dict[str, str]]:
        """The configurations to run, and those run only because a chosen one's gates compare with them."""
        names = [spec.name for spec in request.suite.configs]
        if not request.configs:
            return names, {}
        from harness.errors import unknown

        for name in request.configs:
            if name not in names:
                raise InputError(unknown("configuration", name, names) + " (from --config)")
        support = request.suite.comparisons_needed([name for name in names if name in request.configs])
        reference = request.suite.reference
        if (request.references or request.suite.reference_images) == LIVE and reference not in request.configs:
            support.setdefault(reference, "live references: every configuration is judged against its images")
        return [name for name in names if name in request.configs or name in support], support

    def _metrics(self, suite: Suite, context: ScoringContext) -> tuple[list[Metric], dict[str, str]]:
        """The metrics to compute, and the optional ones left out here with the reason."""
        metrics, left_out = [], {}
        for request in suite.metrics:
            metric = self.metric_classes[request.name](request.options, context)
            reason = metric.unavailable()
            if reason and metric.optional:
                left_out[request.name] = reason
                context.warn(f"{request.name} not computed: {reason}")
            elif reason:
                raise InputError(reason, file=suite.path, key=f"metrics.{request.name}")
            else:
                metrics.append(metric)
        return metrics, left_out


def _relabel(progress: Progress, task: TaskID, name: str, text: str) -> None:
    progress.update(task, description=f"{name} {text}".strip())


class BlessError(RuntimeError):
    """The reference configuration could not produce healthy images."""
