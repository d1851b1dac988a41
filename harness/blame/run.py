"""``python -m harness blame RUN --config NAME``: which part of a configuration cost its quality.

Both pipelines are built in this process as the run built them: the configuration's and the
suite's reference configuration's. The reference's images of the chosen samples are the
yardstick (the same samples, seeds and settings as the run).

- **blame**: each part of the configuration (a component, a block of the denoiser, a tensor
  group) is put back to the reference's modules in turn, and the quality recovered is the
  paired per-sample PSNR gain over the configuration as it is;
- **sensitivity** (``--sensitivity``): the other direction, the reference with one part
  taken from the configuration, and the quality that part alone loses.

Each part gets its mean over the samples with a 95% bootstrap interval of the paired
change; the unit is one sample (a prompt and seed), generated once per part. The parts are
ranked by that mean. ``blame-NAME.json`` holds every part with its per-sample values, the
samples, the images generated and the time; the run's reports gain a section and a chart.
The cost is one generation of the samples per part: ``--samples`` bounds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.blame.parts import LEVELS, Part, find_parts, module_bytes
from harness.blame.swap import swapped
from harness.errors import InputError, unknown
from harness.kinds.base import Notes, Runtime
from harness.plan.suite import Suite
from harness.registry import Registry
from harness.samples import SampleJob, to_uint8
from harness.stats import bootstrap_interval, stable_seed


@dataclass(frozen=True)
class BlameRequest:
    run_dir: Path
    config: str
    samples: int = 8
    levels: tuple[str, ...] = LEVELS
    sensitivity: bool = False
    device: str = "cpu"
    cache_dir: Path = Path(".harness_cache")


@dataclass
class Bench:
    """The two pipelines, the samples and the reference's images of them."""

    suite: Suite
    config: Runtime
    reference: Runtime
    jobs: list[SampleJob]
    batch: int
    reference_images: list[np.ndarray]
    denoiser: str
    context: Any = None  # the build context both were built with (for a third pipeline: a recipe's keep type)
    generated: int = 0

    def images(self, runtime: Runtime) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, len(self.jobs), self.batch):
            chunk = self.jobs[start : start + self.batch]
            out += [to_uint8(image) for image in runtime.generate(chunk)]
        self.generated += len(self.jobs)
        return out

    def psnr(self, runtime: Runtime) -> np.ndarray:
        from harness.metrics.psnr import psnr_batch

        return np.asarray(psnr_batch(self.images(runtime), self.reference_images), dtype=float)

    def mse(self, runtime: Runtime) -> np.ndarray:
        """Per-sample mean squared error against the reference's images (8-bit levels squared)."""
        images = self.images(runtime)
        return np.asarray(
            [np.mean((a.astype(float) - b.astype(float)) ** 2) for a, b in zip(images, self.reference_images)]
        )


def open_bench(request: BlameRequest, registry: Registry, config: str | None = None) -> Bench:
    """The run's suite, the configuration's and the reference's pipelines, the samples and reference images."""
    import atexit
    import shutil
    import tempfile

    from harness import environment
    from harness.generate.workbench import workbench
    from harness.plan.suite import load_suite
    from harness.results import read_results

    result = read_results(request.run_dir)
    suite = load_suite(Path(str(result.suite.get("path", ""))), registry)
    name = config or request.config
    names = [spec.name for spec in suite.configs]
    if name not in names:
        raise InputError(unknown("configuration", name, names) + f" (from --config, in {suite.path})")
    if name == suite.reference:
        raise InputError(f"--config {name!r} is the suite's reference: there is nothing to blame it against")
    environment.quiet_libraries()
    device = environment.resolve_device(request.device)
    work = Path(tempfile.mkdtemp(prefix="harness-blame-"))
    atexit.register(shutil.rmtree, work, True)  # what a kind writes while building (offload folders, ...)
    bench = workbench(suite, registry, device, request.cache_dir, work)
    runtimes = [_build(registry, suite, spec_name, bench.context) for spec_name in (name, suite.reference)]
    samples = suite.samples()[: max(1, request.samples)]
    jobs = [SampleJob(name, index, prompt, seed) for index, prompt, seed in samples]
    batch = bench.generator.batch_size(suite.config(name), None)
    family = bench.loader().family
    found = Bench(suite, runtimes[0], runtimes[1], jobs, batch, [], family.denoiser, bench.context)
    found.reference_images = found.images(found.reference)
    return found


def _build(registry: Registry, suite: Suite, name: str, context: Any) -> Runtime:
    spec = suite.config(name)
    runtime = registry.kinds[spec.kind].build(spec.options, replace(context, notes=Notes()))
    if getattr(runtime, "pipe", None) is None:
        raise InputError(
            f"--config {name!r} ({spec.kind}) runs no diffusers pipeline in this process: blame swaps the modules "
            "of two in-process pipelines, so it takes the kinds that build one (precision, gguf, int8, torchao, ...)"
        )
    return runtime


def blame(request: BlameRequest, registry: Registry, advance: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Blame (or, with ``request.sensitivity``, the sensitivity of) each part; the record written to the run."""
    start = time.perf_counter()
    bench = open_bench(request, registry)
    config_pipe, reference_pipe = bench.config.pipe, bench.reference.pipe  # type: ignore[attr-defined]
    parts = find_parts(config_pipe, reference_pipe, bench.denoiser, request.levels)
    if not parts:
        raise InputError(f"{request.config!r} has no module that differs from the reference's: nothing to blame")
    base = bench.psnr(bench.config) if not request.sensitivity else np.full(len(bench.jobs), _cap())
    rows = []
    for part in parts:
        if advance:
            advance(part.name)
        if request.sensitivity:
            with swapped(reference_pipe, config_pipe, part.paths):
                values = bench.psnr(bench.reference)
        else:
            with swapped(config_pipe, reference_pipe, part.paths):
                values = bench.psnr(bench.config)
        rows.append(_row(part, values, base, request, config_pipe, reference_pipe))
    rows.sort(key=lambda row: -row["change_mean"])
    record = {
        "config": request.config,
        "reference": bench.suite.reference,
        "direction": "sensitivity" if request.sensitivity else "blame",
        "metric": "psnr",
        "unit": "dB",
        "samples": [job.key for job in bench.jobs],
        "n": len(bench.jobs),
        "config_psnr": _summary(base, request.config),
        "parts": rows,
        "images_generated": bench.generated,
        "seconds": round(time.perf_counter() - start, 2),
    }
    for runtime in (bench.config, bench.reference):
        runtime.close()
    return record


def _cap() -> float:
    from harness.metrics.psnr import PSNR_CAP_DB

    return PSNR_CAP_DB


def _summary(values: np.ndarray, name: str) -> dict[str, Any]:
    low, high = bootstrap_interval(values, lambda m: m.mean(axis=1), stable_seed(name, "blame"))
    return {"mean": float(values.mean()), "worst": float(values.min()), "ci": [low, high]}


def _row(
    part: Part, values: np.ndarray, base: np.ndarray, request: BlameRequest, config: Any, reference: Any
) -> dict[str, Any]:
    """One part's record: the quality with it swapped, the paired change (recovered, or lost), bytes."""
    change = values - base if not request.sensitivity else base - values
    low, high = bootstrap_interval(change, lambda m: m.mean(axis=1), stable_seed(request.config, part.name))
    return {
        **part.to_dict(),
        "psnr_mean": float(values.mean()),
        "psnr_worst": float(values.min()),
        "change_mean": float(change.mean()),
        "change_ci": [low, high],
        "per_sample": [round(float(v), 4) for v in values],
        "bytes_config": module_bytes(config, part.paths),
        "bytes_reference": module_bytes(reference, part.paths),
    }


def write_blame(record: dict[str, Any], run_dir: Path) -> Path:
    """``blame-CONFIG.json`` (or ``sensitivity-CONFIG.json``) in the run folder, atomically."""
    import json

    from harness.atomic import write_text

    prefix = "sensitivity" if record["direction"] == "sensitivity" else "blame"
    path = run_dir / f"{prefix}-{record['config']}.json"
    write_text(path, json.dumps(record, indent=1))
    return path
