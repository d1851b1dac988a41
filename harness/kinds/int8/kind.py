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

from harness import tomlread
from harness.errors import InputError, Where
from harness.kinds.base import BuildContext, ConfigSpec, Notes
from harness.kinds.int8.ranges import check_names, read_ranges, write_ranges
from harness.kinds.pipeline import DiffusersRuntime, PipelineKind, PipelineOptions
from harness.pipelines.family import Family
from harness.samples import SampleJob

SENSITIVITY_SHOWN = 10


@dataclass(frozen=True)
class Int8Options:
    components: tuple[str, ...]
    ranges: str
    calibrate: bool = True
    calibration_prompts: tuple[str, ...] = ()
    calibration_seeds: tuple[int, ...] = (1000,)
    percentile: float = 0.1
    exclude: tuple[str, ...] = ()
    int8_matmul: str = "simulate"
    sensitivity: bool = True


class Int8Kind(PipelineKind):
    name: ClassVar[str] = "int8"
    summary: ClassVar[str] = (
        "static W8A8: int8 per-channel weights, uint8 activations from calibrated ranges (simulated, or real int8 matmuls)"
    )
    extra_keys: ClassVar[Mapping[str, str]] = {
        "components": "submodules to quantize, e.g. ['vae.decoder'] or ['unet']",
        "ranges": "range file (name,min,max per line), relative to the suite",
        "calibrate": "true: calibrate in each run (widening the file's ranges, if any) and save the result in the run "
        "folder; `harness ranges calibrate` writes it to the file; false: use the file as is",
        "calibration_prompts": "prompts for calibration (must not be evaluation samples)",
        "calibration_prompts_file": "a file of calibration prompts, one per line",
        "calibration_seeds": "seeds for calibration (default [1000])",
        "percentile": "low percentile of each input taken as its min (high = 100 - it); default 0.1, 0 = plain min/max",
        "exclude": "layers kept in float: exact names, dotted prefixes or glob patterns",
        "int8_matmul": "simulate (exact fake quantization in float) | real (integer matmuls with torch._int_mm on the device)",
        "sensitivity": "report each layer's output SQNR with only it quantized (default true)",
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

    def parse_extra(self, table: Mapping[str, Any], where: Where, suite_dir: Path) -> Int8Options:
        components = tomlread.get_list(table, "components", str, where)
        if not components:
            raise where.error("components", "missing; list the submodules to quantize, e.g. ['vae.decoder']")
        ranges = tomlread.require(table, "ranges", str, where)
        calibrate = tomlread.get(table, "calibrate", bool, where, True)
        prompts = tomlread.get_list(table, "calibration_prompts", str, where)
        prompts_file = tomlread.get(table, "calibration_prompts_file", str, where)
        if prompts is not None and prompts_file is not None:
            raise where.error(
                "calibration_prompts_file", "give calibration_prompts or calibration_prompts_file, not both"
            )
        if prompts_file is not None:
            path = (suite_dir / prompts_file).resolve()
            if not path.is_file():
                raise where.error("calibration_prompts_file", f"file not found: {path}")
            prompts = [
                line.strip()
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")
            ]
        if calibrate and not prompts:
            raise where.error(
                "calibration_prompts",
                "calibrate = true needs calibration prompts (separate from the evaluation prompts)",
            )
        seeds = tomlread.get_list(table, "calibration_seeds", int, where) or [1000]
        percentile = tomlread.get(table, "percentile", float, where, 0.1)
        assert percentile is not None
        if not 0.0 <= percentile < 50.0:
            raise where.error("percentile", f"must be in [0, 50), got {percentile:g}")
        matmul = tomlread.get_choice(table, "int8_matmul", ("simulate", "real"), where, "simulate")
        return Int8Options(
            components=tuple(components),
            ranges=str((suite_dir / ranges).resolve()),
            calibrate=bool(calibrate),
            calibration_prompts=tuple(prompts or ()),
            calibration_seeds=tuple(seeds),
            percentile=percentile,
            exclude=tuple(tomlread.get_list(table, "exclude", str, where) or ()),
            int8_matmul=matmul,
            sensitivity=bool(tomlread.get(table, "sensitivity", bool, where, True)),
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
        from harness.generate.cache import content_fingerprint

        inputs = super().cache_inputs(options, suite_dir)
        if Path(options.extra.ranges).is_file():  # given ranges, or the ones calibration widens
            inputs["ranges"] = content_fingerprint(options.extra.ranges)
        return inputs

    def unavailable(self, options: PipelineOptions, device: str) -> str | None:
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
        from harness.kinds.int8.calibrate import RangeCollector
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
            ranges = existing
            notes["calibration"] = "none: ranges read from the file"
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
