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
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.memory import status_bytes
from harness.results import STATUS_ERROR, ConfigResult

POLL_S = 0.1


def _worker(channel: Any, payload: dict[str, Any]) -> None:
    """Child process: load the suite, generate one configuration, send back the result."""
    from harness import environment
    from harness.cache import SampleCache
    from harness.configs import default_kinds
    from harness.generate import BaseLoader, ConfigGenerator, make_context, plan
    from harness.metrics import default_metrics
    from harness.suite import load_suite

    kinds, metrics = default_kinds(), default_metrics()
    suite = load_suite(Path(payload["suite"]), kinds, metrics)
    cache_dir = Path(payload["cache_dir"])
    environment.quiet_libraries()
    loader = BaseLoader(suite)
    context = make_context(suite, payload["device"], loader, cache_dir, Path(payload["run_dir"]))
    before = status_bytes("VmHWM") or 0  # imports; the configuration's own measurement resets the counter
    spec = suite.config(payload["config"])
    cache = SampleCache(cache_dir, read=payload["use_cache"])
    generator = ConfigGenerator(kinds, cache, suite, payload["device"], payload.get("timing_repeats", 0))
    result = generator.generate(
        spec,
        plan(suite, spec.name),
        context,
        Path(payload["image_dir"]),
        Path(payload["run_dir"]),
        payload["batch_size"],
        lambda n: channel.put(("progress", n)),
    )
    memory = dict(result.memory)
    memory["isolated_process_peak_rss_mb"] = round(
        max(before, (status_bytes("VmHWM") or 0), int(memory.get("peak_rss_mb", 0) * 2**20)) / 2**20, 1
    )
    memory["isolation"] = "own process (spawn): peak includes interpreter, libraries and pipeline"
    channel.put(("result", replace(result, memory=memory).to_dict()))


def run_isolated(payload: dict[str, Any], advance: Callable[[int], None]) -> ConfigResult:
    """Generate one configuration in a fresh process; ``payload`` names the suite, config and folders."""
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    process = context.Process(target=_worker, args=(channel, payload), name=f"harness-{payload['config']}")
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
        name=payload["config"],
        kind=payload["kind"],
        status=STATUS_ERROR,
        error_type="runtime",
        message=f"the isolated worker process died with exit code {process.exitcode} before returning a result",
    )
