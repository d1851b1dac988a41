"""What a run decides before it generates: which configurations run and why, on which device and ranks, with
which strategy, metrics, references and stopping rule; its folder and first results.json.

:func:`plan_run` builds the frozen :class:`RunPlan` the runner's later phases read (:mod:`harness.runner`).
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import environment, phases
from harness.errors import InputError, unknown
from harness.generate import distributed
from harness.generate.isolation import IsolatedJob
from harness.generate.strategies import GenerationStrategy, make_strategy
from harness.generate.workbench import Workbench, workbench
from harness.judge.sequential import Sequential
from harness.kinds import cpu_half
from harness.kinds.base import ConfigSpec
from harness.metrics.base import Metric, ScoringContext
from harness.plan.suite import Suite
from harness.references.source import LIVE, ReferenceSource
from harness.registry import Registry
from harness.results import Journal, RunResult, now, read_results
from harness.score.references import RunReferences


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
    reports: bool = True  # write report.html, summary.md and junit.xml as the last phase


@dataclass(frozen=True)
class RunPlan:
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
    journal: Journal
    described: Mapping[str, Any]
    bench: Workbench
    strategy: GenerationStrategy
    refs: RunReferences
    sequential: Sequential | None  # None: every configuration runs to full n
    startup_s: float
    pipeline_load_s: float
    setup_s: float


@dataclass(frozen=True)
class _Place:
    """Where a run happens: its folder with the first results.json written, and the machine described."""

    main: bool
    run_dir: Path
    journal: Journal
    described: Mapping[str, Any]
    result: RunResult


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def plan_run(registry: Registry, request: RunRequest) -> tuple[RunPlan, RunResult]:
    """What runs, on which device, with which strategy, metrics and references; the run folder and its first
    results.json."""
    suite = request.suite
    startup_s, run_start = phases.since_process_start(), time.perf_counter()
    selected, support = select(request)
    source = ReferenceSource(suite, request.references or suite.reference_images, registry.kinds)
    baseline = read_results(request.baseline) if request.baseline is not None else None
    ranks, device = _device(request)
    scoring_context = ScoringContext(
        device=device, cache_dir=request.cache_dir, references_digest=source.digest, evaluators=registry.evaluators
    )
    metrics, left_out = _metrics(registry, suite, scoring_context)
    place = _open(registry, request, ranks, device)
    if place.main:
        source.start(place.run_dir)
    bench = workbench(
        suite, registry, device, request.cache_dir, place.run_dir, request.use_cache, request.timing_repeats
    )
    result = _load_pipeline(registry, bench, source, selected, place.result)
    isolated = functools.partial(_isolated_job, registry, request, device=device, run_dir=place.run_dir)
    strategy = make_strategy(bench, place.run_dir, request.batch_size, ranks, isolated if request.isolate else None)
    pipeline_load_s = float(result.environment.get("pipeline_load_s", 0.0))
    refs = RunReferences(source, place.run_dir, tuple(metrics), request.cache_dir)
    sequential, why_off = _sequential(request, ranks, selected, refs, place.described, metrics)
    if why_off:
        scoring_context.warn(why_off)
    if sequential is not None and source.live and suite.reference in selected:  # its images judge the rest
        selected = [suite.reference, *(name for name in selected if name != suite.reference)]
    return RunPlan(
        request=request,
        selected=tuple(selected),
        support=support,
        ranks=ranks,
        main=place.main,
        source=source,
        baseline=baseline,
        scoring_context=scoring_context,
        metrics=tuple(metrics),
        left_out=left_out,
        run_dir=place.run_dir,
        journal=place.journal,
        described=place.described,
        bench=bench,
        strategy=strategy,
        refs=refs,
        sequential=sequential,
        startup_s=startup_s,
        pipeline_load_s=pipeline_load_s,
        setup_s=time.perf_counter() - run_start - pipeline_load_s,  # references, metrics, device, imports
    ), result


def kind_packages(registry: Registry) -> list[str]:
    """The distributions every kind runs on beyond the core libraries, recorded with their versions."""
    return [package for kind in registry.kinds.values() for package in kind.packages]


def describe_machine(registry: Registry, device: str, cache_dir: Path) -> dict[str, Any]:
    """The machine and libraries a run or a blessing happens on, with the kinds' packages and, on a CPU, the path
    half precision takes there (kept per machine: harness/kinds/cpu_half.py)."""
    described = environment.describe(device, kind_packages(registry))
    if device == "cpu":
        described["cpu_half"] = cpu_half.paths(cache_dir)
    return described


def select(request: RunRequest) -> tuple[list[str], dict[str, str]]:
    """The configurations to run, and those run only because a chosen one's gates compare with them."""
    names = [spec.name for spec in request.suite.configs]
    if not request.configs:
        return names, {}
    for name in request.configs:
        if name not in names:
            raise InputError(unknown("configuration", name, names) + " (from --config)")
    support = request.suite.comparisons_needed([name for name in names if name in request.configs])
    reference = request.suite.reference
    if (request.references or request.suite.reference_images) == LIVE and reference not in request.configs:
        support.setdefault(reference, "live references: every configuration is judged against its images")
    return [name for name in names if name in request.configs or name in support], support


def _device(request: RunRequest) -> tuple[distributed.Ranks | None, str]:
    """The ranks of a multi-process launch (``None`` for one process) and this process's device."""
    ranks = distributed.detect(request.device)
    if ranks is not None and request.isolate:
        raise InputError(
            "--isolate cannot be combined with a multi-process launch: each rank is already its own process"
        )
    return ranks, ranks.device if ranks is not None else environment.resolve_device(request.device)


def _open(registry: Registry, request: RunRequest, ranks: distributed.Ranks | None, device: str) -> _Place:
    """The run folder and the run's first results.json."""
    main = ranks is None or ranks.main
    environment.quiet_libraries()
    run_id = new_run_id() if ranks is None else ranks.broadcast(new_run_id())
    run_dir = request.out_dir or (request.reports_root / request.suite.name / run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    described = describe_machine(registry, device, request.cache_dir)
    if ranks is not None:
        described["processes"] = ranks.world
    journal = Journal(run_dir / "results.json", main)
    result = RunResult(suite=request.suite.to_dict(), run_id=run_id, started=now(), environment=described)
    return _Place(main, run_dir, journal, described, journal.write(result))


def _load_pipeline(
    registry: Registry, bench: Workbench, source: ReferenceSource, selected: list[str], result: RunResult
) -> RunResult:
    """Load the pipeline once (when a selected configuration runs it) and check it against the references."""
    if not any(registry.kinds[bench.suite.config(name).kind].needs_pipeline for name in selected):
        return result
    try:
        loaded = bench.loader()
    except RuntimeError:
        return result  # recorded per configuration: each pipeline configuration errors with the load failure
    source.check_pipeline(loaded.fingerprint)
    return replace(result, environment={**result.environment, "pipeline_load_s": round(loaded.load_seconds, 3)})


def _isolated_job(
    registry: Registry, request: RunRequest, spec: ConfigSpec, *, device: str, run_dir: Path
) -> IsolatedJob:
    return IsolatedJob(
        suite=request.suite.path,
        config=spec.name,
        kind=spec.kind,
        device=device,
        cache_dir=request.cache_dir.resolve(),
        run_dir=run_dir.resolve(),
        image_dir=(run_dir / "images" / spec.name).resolve(),
        registry=registry,
        use_cache=request.use_cache,
        batch_size=request.batch_size,
        timing_repeats=request.timing_repeats,
    )


def _sequential(
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


def _metrics(registry: Registry, suite: Suite, context: ScoringContext) -> tuple[list[Metric], dict[str, str]]:
    """The metrics to compute, and the optional ones left out here with the reason."""
    metrics, left_out = [], {}
    for request in suite.metrics:
        metric = registry.metrics[request.name](request.options, context)
        reason = metric.unavailable()
        if reason and metric.optional:
            left_out[request.name] = reason
            context.warn(f"{request.name} not computed: {reason}")
        elif reason:
            raise InputError(reason, file=suite.path, key=f"metrics.{request.name}")
        else:
            metrics.append(metric)
    return metrics, left_out
