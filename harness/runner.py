"""Run a suite through its phases: plan, generate, score, judge, report.

Each phase is its own package (:mod:`harness.plan`, :mod:`harness.generate`,
:mod:`harness.score`, :mod:`harness.judge`, :mod:`harness.report`) and knows nothing of the
others; the runner hands each the values it needs and is the one writer of
``results.json`` (:class:`Journal`). One configuration that raises is recorded as
``error`` with its message and a short traceback; the others still run. ``results.json``
is rewritten (atomically) after every configuration, so results already computed survive
a crash or Ctrl-C.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
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

from harness import environment, phases
from harness.errors import EXIT_INPUT
from harness.generate.generator import plan
from harness.generate.strategies import GenerationCall
from harness.generate.workbench import workbench
from harness.judge.checks import coverage_warnings, exit_code, run_checks
from harness.judge.compare import compare_runs
from harness.judge.sequential import in_plan_order, sample_order
from harness.judge.speed import judge_speed
from harness.memory import PeakMemory
from harness.plan.suite import Suite
from harness.references import store as references
from harness.references.source import ReferenceFailure
from harness.registry import Registry
from harness.report.console import make_console
from harness.results import STATUS_OK, RunResult, now
from harness.run_plan import RunPlan, RunRequest, describe_machine, plan_run
from harness.score.scoring import ReferenceScoring, score_config

__all__ = ["BlessError", "RunOutput", "RunRequest", "Runner"]


@dataclass(frozen=True)
class RunOutput:
    result: RunResult
    run_dir: Path
    main: bool = True  # False on the other ranks of a multi-process run: rank 0 reports
    exit_code: int | None = None

    @property
    def code(self) -> int:
        return int(self.exit_code if self.exit_code is not None else self.result.exit_code or 0)


class Runner:
    """Drives the phases of a run; the registry (kinds, metrics, pipelines, evaluators) is passed in."""

    def __init__(self, registry: Registry, console: Console | None = None):
        self.registry = registry
        self.kinds = registry.kinds
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
            bench = workbench(suite, self.registry, device, request.cache_dir, work, request.use_cache)
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
            described = describe_machine(self.registry, device, request.cache_dir)
            return references.bless(suite, self.kinds, files, bench.loader().fingerprint, described, now())

    # ---- run --------------------------------------------------------------------------
    def run(self, request: RunRequest, on_config_done: Callable[[RunResult, Path], None] | None = None) -> RunOutput:
        """Generate, score, judge and report; returns the final result (also written to results.json)."""
        plan_, result = plan_run(self.registry, request)
        try:
            with self._progress(enabled=plan_.main) as progress:
                result = self._generate(plan_, result, progress, on_config_done)
                if not plan_.main:
                    assert plan_.ranks is not None
                    return RunOutput(result, plan_.run_dir, main=False, exit_code=plan_.ranks.conclude(None))
                result, reference, scoring_memory = self._score(plan_, result, progress)
        except KeyboardInterrupt:
            plan_.journal.ended(result, "interrupted")
            raise
        except ReferenceFailure as error:
            plan_.journal.ended(result, "failed", str(error))
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

    # ---- generate ---------------------------------------------------------------------
    def _generate(
        self,
        plan_: RunPlan,
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
            result = plan_.journal.write(result.with_config(config_result))
            if plan_.main and on_config_done:
                on_config_done(result, plan_.run_dir)
        plan_.strategy.settle()
        return result

    # ---- score ------------------------------------------------------------------------
    def _score(
        self, plan_: RunPlan, result: RunResult, progress: Progress
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

    # ---- judge ------------------------------------------------------------------------
    def _judge(self, plan_: RunPlan, result: RunResult, reference: ReferenceScoring) -> RunResult:
        """Thresholds and controls, the baseline comparison, the exit code and the warnings."""
        suite, request = plan_.request.suite, plan_.request
        judged = [name for name in plan_.selected if name not in plan_.support]
        thresholds = {name: suite.thresholds_for(name) for name in judged}
        controls = [name for name in judged if suite.config(name).expect == "fail"]
        result, speed_checks = judge_speed(result, suite, plan_.run_dir, judged)
        outcomes = run_checks(
            result, thresholds, list(reference.blank), controls, plan_.left_out, plan_.support, speed_checks
        )
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
                *coverage_warnings(
                    outcomes, thresholds, controls, {o.metric for found in speed_checks.values() for o in found}
                ),
                *(
                    f"also ran {name!r}, not judged: {why} (name it with --config to judge it)"
                    for name, why in plan_.support.items()
                ),
                *context.warnings,
            ),
            verdict="pass" if code == 0 else "fail",
            exit_code=code,
        )

    # ---- report and finish --------------------------------------------------------------
    @staticmethod
    def _finish(plan_: RunPlan, result: RunResult) -> RunOutput:
        """The final results.json, and the reports (the last phase); the other ranks hear the exit code."""
        result = plan_.journal.write(replace(result, state="complete", finished=now()))
        if plan_.request.reports:
            from harness.report import write_reports

            report_start = time.perf_counter()
            write_reports(result, plan_.run_dir)
            result = plan_.journal.write(phases.with_report_time(result, time.perf_counter() - report_start))
        if plan_.ranks is not None:
            plan_.ranks.conclude(result.exit_code)
        return RunOutput(result, plan_.run_dir)


def _relabel(progress: Progress, task: TaskID, name: str, text: str) -> None:
    progress.update(task, description=f"{name} {text}".strip())


class BlessError(RuntimeError):
    """The reference configuration could not produce healthy images."""
