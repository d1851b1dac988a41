"""Running one configuration in a fresh process, so its memory is its own (``run --isolate``).

In one process, RSS carries what earlier configurations and the loaded base pipeline
left behind. An isolated configuration runs in a new interpreter (multiprocessing
``spawn``) that imports, loads the pipeline and generates only that configuration.
It reports its own high-water mark (``VmHWM``) over its whole life, which includes the
interpreter and libraries (about 0.7 GB for torch + diffusers) and the pipeline. Progress
and the result come back over a queue; a worker that dies (segfault, OOM kill) becomes
an ``error`` with its exit code.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.memory import status_bytes
from harness.results import STATUS_ERROR, ConfigResult

if TYPE_CHECKING:
    from harness.registry import Registry

POLL_S = 0.1


@dataclass(frozen=True)
class IsolatedJob:
    """What the worker process needs: the suite and configuration, the folders, the options of the run, and the
    caller's registry (what a plug-in registered reaches the worker too; its entries pickle by reference)."""

    suite: Path
    config: str
    kind: str
    device: str
    cache_dir: Path
    run_dir: Path
    image_dir: Path
    registry: Registry
    use_cache: bool = True
    batch_size: int | None = None
    timing_repeats: int | None = 0


def _worker(channel: Any, job: IsolatedJob) -> None:
    """Child process: load the suite, generate one configuration, send back the result."""
    from harness import environment
    from harness.generate.generator import plan
    from harness.generate.workbench import workbench
    from harness.plan.suite import load_suite

    suite = load_suite(job.suite, job.registry)
    environment.quiet_libraries()
    bench = workbench(suite, job.registry, job.device, job.cache_dir, job.run_dir, job.use_cache, job.timing_repeats)
    before = status_bytes("VmHWM") or 0  # imports; the configuration's own measurement resets the counter
    spec = suite.config(job.config)
    result = bench.generator.generate(
        spec,
        plan(suite, spec.name),
        bench.context,
        job.image_dir,
        job.run_dir,
        job.batch_size,
        lambda n: channel.put(("progress", n)),
    )
    memory = dict(result.memory)
    memory["isolated_process_peak_rss_mb"] = round(
        max(before, (status_bytes("VmHWM") or 0), int(memory.get("peak_rss_mb", 0) * 2**20)) / 2**20, 1
    )
    memory["isolation"] = "own process (spawn): peak includes interpreter, libraries and pipeline"
    channel.put(("result", replace(result, memory=memory).to_dict()))


def run_isolated(job: IsolatedJob, advance: Callable[[int], None]) -> ConfigResult:
    """Generate one configuration in a fresh process."""
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    process = context.Process(target=_worker, args=(channel, job), name=f"harness-{job.config}")
    process.start()
    result: ConfigResult | None = None
    while result is None:
        try:
            kind, value = channel.get(timeout=POLL_S)
        except queue_module.Empty:
            if not process.is_alive():
                break
            continue
        if kind == "progress":
            advance(int(value))
        else:
            result = ConfigResult.from_dict(value)
    process.join()
    if result is not None:
        return result
    return ConfigResult(
        name=job.config,
        kind=job.kind,
        status=STATUS_ERROR,
        error_type="runtime",
        message=f"the isolated worker process died with exit code {process.exitcode} before returning a result",
    )
