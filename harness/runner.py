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
from typing import Any

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

from harness import environment, phases
from harness.errors import EXIT_INPUT, InputError
from harness.generate import distributed
from harness.generate.generator import Workbench, plan, workbench
from harness.generate.isolation import IsolatedJob
from harness.generate.strategies import GenerationCall, GenerationStrategy, make_strategy
from harness.judge.checks import coverage_warnings, exit_code, run_checks
from harness.judge.compare import compare_runs
from harness.judge.sequential import Sequential, in_plan_order, sample_order
from harness.kinds.base import ConfigKind, ConfigSpec
from harness.memory import PeakMemory
from harness.metrics.base import Metric, ScoringContext
from harness.plan.suite import Suite
from harness.references import store as references
from harness.references.source import LIVE, ReferenceSource, RunReferences
from harness.report.console import make_console
from harness.results import STATUS_OK, RunResult, now, read_results, write_results
from harness.score.scoring import ReferenceScoring, score_config


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
    sequential: bool | None = None  # stop configurations once decided; None: the suite's [sequential] enabled


@dataclass(frozen=True)
class RunOutput:
    result: RunResult
    run_dir: Path
    main: bool = True  # False on the other ranks of a multi-process run: rank 0 reports
    exit_code: int | None = None

    @property
    def code(self) -> int:
        return int(self.exit_code if self.exit_code is not None else self.result.exit_code or 0)


@dataclass(frozen=True)
class _RunPlan:
    """What the plan phase decided, read by the later phases."""

    request: RunRequest
    selected: tuple[str, ...]
    support: Mapping[str, str]  # run only because a selected configuration's gates compare with them: why
    ranks: distributed.Ranks | None
    main: bool
    source: ReferenceSource
    baseline: RunResult | None
    scoring_context: ScoringContext  # collects counters and warnings while scoring
    metrics: tuple[Metric, ...]
    left_out: Mapping[str, str]
    run_dir: Path
    results_path: Path
    described: Mapping[str, Any]
    bench: Workbench
    strategy: GenerationStrategy
    refs: RunReferences
    sequential: Sequential | None  # None: every configuration runs to full n
    startup_s: float
    pipeline_load_s: float
    setup_s: float


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
        spec = suite.reference_config
        with tempfile.TemporaryDirectory(prefix="harness-bless-") as temporary:
            work = Path(temporary)
            bench = workbench(suite, self.kinds, device, request.cache_dir, work, request.use_cache)
            with self._progress() as progress:
                task = progress.add_task(f"bless {spec.name}", total=len(suite.samples()))
                result = bench.generator.generate(
                    spec,
                    plan(suite, spec.name),
                    bench.context,
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
            return references.bless(suite, files, bench.loader().fingerprint, environment.describe(device), now())

    # ---- run --------------------------------------------------------------------------
    def run(self, request: RunRequest, on_config_done: Callable[[RunResult, Path], None] | None = None) -> RunOutput:
        """Generate, score and check; returns the final result (also written to results.json).

        Five phases: plan (what runs, where, against what), generate (one strategy for every configuration),
        score, judge (checks, baseline comparison, exit code) and finish (the final record).
        """
        plan_, result = self._plan(request)
        try:
            with self._progress(enabled=plan_.main) as progress:
                result = self._generate(plan_, result, progress, on_config_done)
                if not plan_.main:
                    assert plan_.ranks is not None
                    return RunOutput(result, plan_.run_dir, main=False, exit_code=plan_.ranks.conclude(None))
                result, reference, scoring_memory = self._score(plan_, result, progress)
        except KeyboardInterrupt:
            write_results(replace(result, state="interrupted", finished=now()), plan_.results_path)
            raise
        checks_start = time.perf_counter()
        result = self._judge(plan_, result, reference)
        result = replace(
            result,
            phases=phases.run_phases(
                result.configs,
                plan_.startup_s,
                plan_.pipeline_load_s,
                reference.seconds,
                time.perf_counter() - checks_start,
                scoring_memory=scoring_memory.report(),
                setup_s=plan_.setup_s,
            ),
        )
        return self._finish(plan_, result)

    def _plan(self, request: RunRequest) -> tuple[_RunPlan, RunResult]:
        """What runs, on which device, with which strategy, metrics and references; the run folder and its first
        results.json."""
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

        bench = workbench(
            suite, self.kinds, device, request.cache_dir, run_dir, request.use_cache, request.timing_repeats
        )
        if any(self.kinds[suite.config(name).kind].needs_pipeline for name in selected):
            try:
                loaded = bench.loader()
                source.check_pipeline(loaded.fingerprint)
                result = replace(
                    result, environment={**result.environment, "pipeline_load_s": round(loaded.load_seconds, 3)}
                )
            except RuntimeError:
                pass  # recorded per configuration: each pipeline configuration errors with the load failure
        isolated = functools.partial(self._isolated_job, request, device=device, run_dir=run_dir)
        strategy = make_strategy(bench, run_dir, request.batch_size, ranks, isolated if request.isolate else None)
        pipeline_load_s = float(result.environment.get("pipeline_load_s", 0.0))
        refs = RunReferences(source, run_dir, results_path, tuple(metrics), request.cache_dir)
        sequential, why_off = self._sequential(request, ranks, selected, refs, described, metrics)
        if why_off:
            scoring_context.warn(why_off)
        if sequential is not None and source.live and suite.reference in selected:  # its images judge the rest
            selected = [suite.reference, *(name for name in selected if name != suite.reference)]
        return _RunPlan(
            request=request,
            selected=tuple(selected),
            support=support,
            ranks=ranks,
            main=main,
            source=source,
            baseline=baseline,
            scoring_context=scoring_context,
            metrics=tuple(metrics),
            left_out=left_out,
            run_dir=run_dir,
            results_path=results_path,
            described=described,
            bench=bench,
            strategy=strategy,
            refs=refs,
            sequential=sequential,
            startup_s=startup_s,
            pipeline_load_s=pipeline_load_s,
            setup_s=time.perf_counter() - run_start - pipeline_load_s,  # references, metrics, device, imports
        ), result

    def _generate(
        self,
        plan_: _RunPlan,
        result: RunResult,
        progress: Progress,
        on_config_done: Callable[[RunResult, Path], None] | None,
    ) -> RunResult:
        """Every selected configuration through the plan's strategy; results.json rewritten after each."""
        suite = plan_.request.suite
        for name in plan_.selected:
            jobs = plan(suite, name)
            task = progress.add_task(name, total=len(jobs) if plan_.ranks is None else None)
            plan_.refs.result = result  # live references: what the reference configuration generated
            spec = suite.config(name)
            size = plan_.bench.generator.batch_size(spec, plan_.request.batch_size)
            monitor = plan_.sequential.monitor(spec, len(jobs), size) if plan_.sequential is not None else None
            config_result = plan_.strategy.generate(
                GenerationCall(
                    spec,
                    sample_order(jobs) if monitor is not None else jobs,
                    plan_.run_dir / "images" / name,
                    functools.partial(progress.advance, task),
                    functools.partial(_relabel, progress, task, name),
                    monitor,
                )
            )
            if monitor is not None:
                config_result = in_plan_order(config_result, jobs)
            result = result.with_config(config_result)
            if plan_.main:
                write_results(result, plan_.results_path)
                if on_config_done:
                    on_config_done(result, plan_.run_dir)
        plan_.strategy.settle()
        return result

    def _score(
        self, plan_: _RunPlan, result: RunResult, progress: Progress
    ) -> tuple[RunResult, ReferenceScoring, PeakMemory]:
        """The references' scores, every configuration's scores, then each kind's own step (ConfigKind.finish)."""
        scoring = progress.add_task("scoring", total=len(plan_.metrics) * (len(plan_.selected) + 1))

        def advance_scoring(n: float) -> None:
            progress.advance(scoring, n)

        plan_.refs.result = result
        refs = plan_.refs.resolve()
        plan_.scoring_context.references_digest = refs.manifest.digest
        metrics = list(plan_.metrics)
        with PeakMemory() as scoring_memory:  # bounded: images are scored in chunks
            reference = plan_.refs.scoring(advance_scoring)
            for config in result.configs:
                known = plan_.sequential.scored(config.name) if plan_.sequential is not None else {}
                result = result.with_config(
                    score_config(config, metrics, refs, reference, plan_.run_dir, advance_scoring, known=known)
                )
        result = replace(result, reference_scores=reference.scores, references=plan_.source.describe(refs))
        return self._finish_kinds(plan_.request.suite, result, plan_.run_dir), reference, scoring_memory

    def _judge(self, plan_: _RunPlan, result: RunResult, reference: ReferenceScoring) -> RunResult:
        """Thresholds and controls, the baseline comparison, the exit code and the warnings."""
        suite, request = plan_.request.suite, plan_.request
        judged = [name for name in plan_.selected if name not in plan_.support]
        thresholds = {name: suite.thresholds_for(name) for name in judged}
        controls = [name for name in judged if suite.config(name).expect == "fail"]
        outcomes = run_checks(result, thresholds, list(reference.blank), controls, plan_.left_out, plan_.support)
        if plan_.baseline is not None:
            comparison = compare_runs(result, plan_.baseline, suite.regression, str(request.baseline))
            outcomes = (*outcomes, *comparison.outcomes())
            result = replace(result, comparison=comparison.to_dict())
        code = exit_code(outcomes)
        if any(c.error_type == "input" for c in result.configs):
            code = EXIT_INPUT  # a bad input file (e.g. a range file for another model) ends as an input error
        cache, context = plan_.bench.cache, plan_.scoring_context
        return replace(
            result,
            checks=outcomes,
            counters={**context.counters, "sample_cache_hits": cache.hits, "sample_cache_misses": cache.misses},
            warnings=(
                *plan_.source.warnings,
                *plan_.source.environment_warnings(plan_.described),
                *coverage_warnings(outcomes, thresholds, controls),
                *(
                    f"also ran {name!r}, not judged: {why} (name it with --config to judge it)"
                    for name, why in plan_.support.items()
                ),
                *context.warnings,
            ),
            verdict="pass" if code == 0 else "fail",
            exit_code=code,
        )

    @staticmethod
    def _finish(plan_: _RunPlan, result: RunResult) -> RunOutput:
        """The final results.json; the other ranks hear the exit code."""
        result = replace(result, state="complete", finished=now())
        write_results(result, plan_.results_path)
        if plan_.ranks is not None:
            plan_.ranks.conclude(result.exit_code)
        return RunOutput(result, plan_.run_dir)

    def _isolated_job(self, request: RunRequest, spec: ConfigSpec, *, device: str, run_dir: Path) -> IsolatedJob:
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

    def _sequential(
        self,
        request: RunRequest,
        ranks: distributed.Ranks | None,
        selected: list[str],
        refs: RunReferences,
        described: Mapping[str, Any],
        metrics: list[Metric],
    ) -> tuple[Sequential | None, str]:
        """The run's sequential sampling, or ``None`` and why it is off where the suite or command asked for it."""
        suite = request.suite
        wanted = suite.sequential.enabled if request.sequential is None else request.sequential
        if not wanted:
            return None, ""
        off = {
            "--isolate": request.isolate,
            "a multi-process launch": ranks is not None,
            "--baseline (its regression gates pair every sample with the baseline's)": request.baseline is not None,
        }
        for why, applies in off.items():
            if applies:
                return None, f"sequential sampling is off with {why}: every configuration ran to full n"
        device_class = str(described.get("device_class", ""))
        return Sequential.for_run(suite, selected, metrics, device_class, refs.view, refs.source.live), ""

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
