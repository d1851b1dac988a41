"""``kind = "int8"``: static W8A8 post-training quantization with calibrated activation ranges.

Weights are int8 per output channel; each Linear/Conv2d input is uint8 with scale and
zero point from its range in a ``name,min,max`` range file. Ranges come from calibration
(``calibrate = true``) on calibration prompts and seeds that must differ from the
evaluation samples, widening the file's ranges if it has any, or are read as given
(``calibrate = false``), e.g. an SD1.5 VAE's ranges reused for a fine-tune of the same
architecture. A run never writes the suite's file: calibrated ranges are saved in the run
folder, and ``harness ranges calibrate`` is the one command that writes the file.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import InputError, Where
from harness.kinds.base import BuildContext, ConfigSpec, Notes
from harness.kinds.int8.ranges import check_names, read_ranges, write_ranges
from harness.kinds.pipeline import DiffusersRuntime, PipelineKind, PipelineOptions
from harness.options import option
from harness.pipelines.family import Family
from harness.samples import SampleJob

SENSITIVITY_SHOWN = 10


@dataclass(frozen=True, kw_only=True)  # declared in the order the docs read them, required keys among them
class Int8Options:
    components: tuple[str, ...] = option(
        "submodules to quantize", nonempty=True, example="list the submodules to quantize, e.g. ['vae.decoder']"
    )
    ranges: str = option("range file (name,min,max per line), relative to the suite", path=True)
    calibrate: bool = option(
        "true: calibrate in each run (widening the file's ranges, if any) and save the result in the run folder; "
        "`harness ranges calibrate` writes it to the file; false: use the file as is",
        default=True,
    )
    calibration_prompts: tuple[str, ...] = option(
        "prompts for calibration (must not be evaluation samples)", default=(), lines_key="calibration_prompts_file"
    )
    calibration_seeds: tuple[int, ...] = option("seeds for calibration", default=(1000,), nonempty=True)
    percentile: float = option(
        "low percentile of each input taken as its min (high = 100 - it); 0 = plain min/max",
        default=0.1,
        minimum=0.0,
        below=50.0,
    )
    exclude: tuple[str, ...] = option("layers kept in float: exact names, dotted prefixes or glob patterns", default=())
    int8_matmul: str = option(
        "simulate: exact fake quantization in float | real: integer matmuls with torch._int_mm on the device",
        default="simulate",
        choices=("simulate", "real"),
    )
    sensitivity: bool = option("report each layer's output SQNR with only it quantized", default=True)

    def validate(self, where: Where) -> None:
        if self.calibrate and not self.calibration_prompts:
            raise where.error(
                "calibration_prompts",
                "calibrate = true needs calibration prompts (separate from the evaluation prompts)",
            )


class Int8Kind(PipelineKind):
    name: ClassVar[str] = "int8"
    summary: ClassVar[str] = (
        "static W8A8: int8 per-channel weights, uint8 activations from calibrated ranges (simulated, or real int8 matmuls)"
    )
    own_options: ClassVar[type] = Int8Options
    example: ClassVar[Mapping[str, Any]] = {
        "components": ["vae.decoder"],
        "ranges": "ranges/vae_decoder.txt",
        "calibration_prompts": ["a blue square at the top"],
    }

    def prepare(self, spec: ConfigSpec, context: BuildContext, where: Where) -> str | None:
        """Calibrate and write the configuration's range file (``calibrate = false`` checks the file first)."""
        if not spec.options.extra.calibrate:
            self.check(spec.options, where)
        runtime = self.build(spec.options, context)
        notes = runtime.notes.snapshot()
        runtime.close()
        return (
            f"calibrated {notes['layers_quantized']} layers on {notes.get('calibration_samples', 0)} samples in "
            f"{notes.get('calibration_s', 0):.1f} s -> {notes['range_file']}"
        )

    def check(self, options: PipelineOptions, where: Where) -> None:
        super().check(options, where)
        extra: Int8Options = options.extra
        path = Path(extra.ranges)
        if not extra.calibrate:
            ranges = read_ranges(path)  # missing, malformed, min > max: InputError naming file and line
            if not ranges:
                raise InputError(
                    "range file is empty and calibrate = false; set calibrate = true to fill it", file=path
                )
        elif path.is_file():
            read_ranges(path)

    def cache_inputs(self, options: PipelineOptions, suite_dir: Path) -> dict[str, Any]:
        from harness.identity import content_fingerprint

        inputs = super().cache_inputs(options, suite_dir)
        if Path(options.extra.ranges).is_file():  # given ranges, or the ones calibration widens
            inputs["ranges"] = content_fingerprint(options.extra.ranges)
        return inputs

    def backend_unavailable(self, options: PipelineOptions, device: str) -> str | None:
        if options.extra.int8_matmul == "real":
            import torch

            try:
                a = torch.ones((17, 8), dtype=torch.int8, device=device)
                torch._int_mm(a, torch.ones((8, 8), dtype=torch.int8, device=device))
            except (RuntimeError, AttributeError) as error:
                return f"int8_matmul = 'real' needs torch._int_mm on {device}: {error}"
        return None

    def modify(self, pipe: Any, options: PipelineOptions, context: BuildContext, family: Family, notes: Notes) -> Any:
        from harness.kinds.int8.apply import RealInt8Stats, SensitivityProbe, apply_real_int8, apply_simulated
        from harness.kinds.layers import target_layers

        extra: Int8Options = options.extra
        layers = target_layers(pipe, extra.components, extra.exclude)
        path = Path(extra.ranges)
        existing = read_ranges(path) if path.is_file() else {}
        if existing:
            check_names(existing, layers, path)
        notes.update(components=list(extra.components), layers_quantized=len(layers), range_file=str(path))
        pipe.to(context.device)
        runtime = DiffusersRuntime(pipe, family, context)
        jobs = self._calibration_jobs(extra, context)
        ranges = self._ranges(extra, existing, layers, runtime, jobs, context, notes)
        if extra.sensitivity and jobs:
            start = time.perf_counter()
            with SensitivityProbe(layers, ranges) as probe:
                runtime.generate([jobs[0]])
            table = probe.table()
            notes["sensitivity"] = table
            notes["sensitivity_worst"] = table[:SENSITIVITY_SHOWN]
            notes["sensitivity_s"] = round(time.perf_counter() - start, 3)
        if extra.int8_matmul == "real":
            stats = RealInt8Stats(context.device)
            apply_real_int8(layers, ranges, stats)
            notes.live.append(stats.notes)
        else:
            apply_simulated(layers, ranges)
            notes["int8_matmul"] = "simulated in float (exact fake quantization)"
        return pipe

    @staticmethod
    def _ranges(
        extra: Int8Options,
        existing: Mapping[str, Any],
        layers: Mapping[str, Any],
        runtime: DiffusersRuntime,
        jobs: list[SampleJob],
        context: BuildContext,
        notes: Notes,
    ) -> Mapping[str, Any]:
        """Calibrated ranges (widening the file's, written where this command may write), or the file's as given."""
        from harness.kinds.int8.calibrate import RangeCollector

        path = Path(extra.ranges)
        if extra.calibrate:
            start = time.perf_counter()
            with RangeCollector(layers, extra.percentile) as collector:
                for job in jobs:
                    runtime.generate([job])
            calibrated = collector.result()
            ranges = {name: existing[name].merged(r) if name in existing else r for name, r in calibrated.items()}
            if context.write_suite_files:
                target = path
                action = (
                    "merged into the existing file"
                    if existing
                    else ("filled the empty file" if path.exists() else "wrote a new file")
                )
            else:  # a run never changes the suite's files: its ranges go into the run folder
                target = context.work_dir / "ranges" / path.name
                action = (
                    f"calibrated in this run{' and merged with the file' if existing else ''}; saved in the run "
                    f"folder ({target.name}), the suite's file is unchanged (`harness ranges calibrate` writes it)"
                )
            write_ranges(ranges, target)
            notes.update(
                calibration_s=round(time.perf_counter() - start, 3),
                calibration_samples=len(jobs),
                calibration=action,
                percentile=[extra.percentile, 100.0 - extra.percentile],
            )
        else:
            if not existing:
                raise InputError(
                    "range file is empty and calibrate = false; set calibrate = true to fill it", file=path
                )
            notes["calibration"] = "none: ranges read from the file"
            return existing
        return ranges

    @staticmethod
    def _calibration_jobs(extra: Int8Options, context: BuildContext) -> list[SampleJob]:
        jobs = [
            SampleJob("calibration", index, prompt, seed)
            for index, prompt in enumerate(extra.calibration_prompts)
            for seed in extra.calibration_seeds
        ]
        evaluation = {(prompt, seed) for prompt in context.prompts for seed in context.seeds}
        overlap = [(job.prompt, job.seed) for job in jobs if (job.prompt, job.seed) in evaluation]
        if overlap:
            raise InputError(
                f"calibration sample {overlap[0]!r} is also an evaluation sample; results on calibration inputs "
                "are not evidence: use other calibration prompts or seeds"
            )
        return jobs
