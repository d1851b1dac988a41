"""Suite files: TOML in, a frozen :class:`Suite` out. Every mistake names the file and key.

A suite names a pipeline, prompts and seeds, generation settings, the reference
configuration, a table of named configurations, the metrics to compute and the
thresholds they must meet (suite-wide, with per-configuration overrides).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import tomlread
from harness.errors import InputError, Where, unknown
from harness.judge.performance import UNITS
from harness.judge.sequential import SequentialOptions, parse_sequential
from harness.kinds.base import ConfigKind, ConfigSpec, jsonable
from harness.metrics.base import Metric
from harness.pipelines.source import PipelineSource, check_available, parse_source
from harness.plan.thresholds import REFERENCE_ALIAS as REFERENCE_ALIAS  # where checks and suites have always read it
from harness.plan.thresholds import Threshold, parse_thresholds
from harness.plan.tolerance import default_tolerances, parse_tolerances
from harness.samples import Generation as Generation  # suites are read into it; it lives below configs/

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

TOP_KEYS = {
    "name": "suite name (default: the file name); used in report and reference paths",
    "description": "free text shown in reports",
    "pipeline": "builtin:NAME | hub:org/name | ./local/diffusers/folder | ./checkpoint.safetensors",
    "pipeline_config": "for a single-file checkpoint: a local diffusers folder with the component configs",
    "family": "pipeline family override: sd | sdxl | sd3 | flux | pixart | sana | wan | ltx | generic",
    "reference": "name of the configuration whose images are blessed as references",
    "prompts": "list of prompts",
    "prompts_file": "a text file, one prompt per line ('#' starts a comment)",
    "seeds": "list of integer seeds; each (prompt, seed) is one sample",
    "steps": "denoising steps (default 20)",
    "width": "image width in pixels, a multiple of 8 (default 512)",
    "height": "image height in pixels, a multiple of 8 (default 512)",
    "guidance": "classifier-free guidance scale (default 7.5)",
    "frames": "frames per sample for video families (wan, ltx; default 1): each sample is a clip",
    "negative_prompt": "negative prompt for every sample (default none)",
    "batch_size": "samples per pipeline call (default: automatic)",
    "references": "folder of blessed reference images (default ../reference_images/<name> from the suite)",
    "reference_images": "blessed (default): judge against the blessed images | live: generate the reference "
    "configuration in the same run and judge against those (the blessed ones then measure its drift)",
    "metrics": "table of metrics to compute, each with its options, e.g. { psnr = {}, ssim = {} }",
    "thresholds": "suite-wide thresholds per metric, e.g. psnr = { min = 30 }",
    "configs": "table of named configurations",
    "regression": "tolerances against a baseline run (run --baseline), e.g. psnr = { max_drop = 0.5 }; defaults apply",
    "sequential": "stop each configuration once its gates are decided: { enabled = true, first = 8, growth = 2, "
    "alpha = 0.05 } (docs/sequential.md)",
}
CONFIG_COMMON_KEYS = {
    "kind": "configuration kind (default precision)",
    "description": "free text shown in reports",
    "thresholds": "per-configuration thresholds; replace the suite-wide ones for the metrics they name",
    "expect": "pass (default) | fail: a negative control that the gates must flag; it fails the run if it passes",
}
DEFAULT_METRICS = ("psnr",)


@dataclass(frozen=True)
class MetricRequest:
    """A metric the suite asks for, with its options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A validated suite."""

    name: str
    path: Path
    pipeline: PipelineSource
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    generation: Generation
    reference: str
    configs: tuple[ConfigSpec, ...]
    metrics: tuple[MetricRequest, ...]
    thresholds: Mapping[str, tuple[Threshold, ...]]
    references_dir: Path
    description: str = ""
    regression: Mapping[str, Any] = field(default_factory=dict)
    reference_images: str = "blessed"  # blessed | live (harness.references.source)
    sequential: SequentialOptions = field(default_factory=SequentialOptions)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def config(self, name: str) -> ConfigSpec:
        for spec in self.configs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def reference_config(self) -> ConfigSpec:
        return self.config(self.reference)

    def thresholds_for(self, config: str) -> list[Threshold]:
        """Suite-wide thresholds, replaced metric by metric by the configuration's own."""
        merged = dict(self.thresholds)
        merged.update(self.config(config).thresholds)
        return [threshold for metric in sorted(merged) for threshold in merged[metric]]

    def comparisons_needed(self, names: Sequence[str]) -> dict[str, str]:
        """Configurations outside ``names`` whose images their gates compare with (``vs``, transitively), with why."""
        needed: dict[str, str] = {}
        frontier = list(names)
        while frontier:
            name = frontier.pop(0)
            for threshold in self.thresholds_for(name):
                target = threshold.compared_config
                if target and target not in names and target not in needed:
                    needed[target] = f"the {threshold.metric} gate of {name!r} compares with it"
                    frontier.append(target)
        return needed

    def samples(self) -> list[tuple[int, str, int]]:
        """Every (prompt index, prompt, seed), prompt-major."""
        return [(index, prompt, seed) for index, prompt in enumerate(self.prompts) for seed in self.seeds]

    def reference_inputs(self) -> dict[str, Any]:
        """Everything that determines the reference images; its hash marks references stale."""
        gen = self.generation
        return {
            "pipeline": self.pipeline.describe(),
            "prompts": list(self.prompts),
            "seeds": list(self.seeds),
            "steps": gen.steps,
            "width": gen.width,
            "height": gen.height,
            "guidance": gen.guidance,
            "negative_prompt": gen.negative_prompt,
            "batch_size": gen.batch_size,
            "reference_config": self.reference_config.to_dict(),
        }

    def reference_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.reference_inputs(), sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "description": self.description,
            "pipeline": self.pipeline.to_dict(),
            "prompts": list(self.prompts),
            "seeds": list(self.seeds),
            "generation": jsonable(self.generation),
            "reference": self.reference,
            "reference_images": self.reference_images,
            "configs": [spec.to_dict() for spec in self.configs],
            "metrics": {m.name: dict(m.options) for m in self.metrics},
            "thresholds": {k: [t.to_dict() for t in v] for k, v in self.thresholds.items()},
            "regression": {k: jsonable(v) for k, v in self.regression.items()},
            "sequential": self.sequential.to_dict(),
        }


def load_suite(path: Path, kinds: Mapping[str, ConfigKind], metrics: Mapping[str, type[Metric]]) -> Suite:
    """Read and validate a suite file (no files beyond it are opened except a prompts file)."""
    path = Path(path)
    data = tomlread.read_toml(path)
    where = Where(path)
    tomlread.check_keys(data, list(TOP_KEYS), where)
    suite_dir = path.resolve().parent

    name = tomlread.get(data, "name", str, where, path.stem)
    assert name is not None
    if not NAME_PATTERN.match(name):
        raise where.error("name", f"{name!r} must be letters, digits, '.', '_' or '-' (it names folders)")

    pipeline_text = tomlread.require(data, "pipeline", str, where)
    pipeline = parse_source(
        pipeline_text,
        where,
        suite_dir,
        tomlread.get(data, "family", str, where),
        tomlread.get(data, "pipeline_config", str, where),
    )
    prompts = _read_prompts(data, where, suite_dir)
    seeds = tomlread.get_list(data, "seeds", int, where) or [0]
    if len(set(seeds)) != len(seeds):
        raise where.error("seeds", "seeds must be unique")
    if any(seed < 0 for seed in seeds):
        raise where.error("seeds", "seeds must be >= 0")
    generation = _read_generation(data, where)

    metric_requests = _resolve_metric_defaults(
        _read_metrics(data, where, metrics, suite_dir), pipeline, metrics, generation.frames
    )
    metric_names = tuple(request.name for request in metric_requests)
    thresholds = parse_thresholds(
        tomlread.get_table(data, "thresholds", where) or {}, where.child("thresholds"), metric_names
    )

    for request in metric_requests:
        metrics[request.name].check_prompts(prompts, where)
    configs_table = tomlread.get_table(data, "configs", where)
    if not configs_table:
        raise where.error("configs", "at least one configuration is needed, e.g. [configs.fp32] dtype = 'float32'")
    configs = tuple(
        _read_config(config_name, table, where.child("configs"), kinds, metric_names, suite_dir)
        for config_name, table in configs_table.items()
    )
    config_names = [spec.name for spec in configs]
    reference = tomlread.require(data, "reference", str, where)
    if reference not in config_names:
        raise where.error("reference", unknown("configuration", reference, config_names))

    for spec in configs:
        target = getattr(getattr(spec.options, "extra", None), "equivalent_to", None)
        if target is not None and target not in config_names:
            raise where.error(f"configs.{spec.name}.equivalent_to", unknown("configuration", target, config_names))
    _check_vs(thresholds, config_names, where.child("thresholds"))
    for spec in configs:
        _check_vs(spec.thresholds, config_names, where.child(f"configs.{spec.name}.thresholds"))

    regression = parse_tolerances(
        tomlread.get_table(data, "regression", where),
        where.child("regression"),
        [*metric_names, *UNITS],
        default_tolerances(metrics),
    )
    references_text = tomlread.get(data, "references", str, where)
    if references_text is not None:
        references_dir = (suite_dir / references_text).resolve()
    else:
        references_dir = (suite_dir.parent / "reference_images" / name).resolve()
    reference_images = tomlread.get(data, "reference_images", str, where, "blessed")
    if reference_images not in ("blessed", "live"):
        raise where.error("reference_images", f"expected 'blessed' or 'live', got {reference_images!r}")

    return Suite(
        name=name,
        path=path.resolve(),
        description=tomlread.get(data, "description", str, where, "") or "",
        pipeline=pipeline,
        prompts=tuple(prompts),
        seeds=tuple(seeds),
        generation=generation,
        reference=reference,
        configs=configs,
        metrics=metric_requests,
        thresholds=thresholds,
        references_dir=references_dir,
        regression=regression,
        reference_images=reference_images or "blessed",
        sequential=parse_sequential(data.get("sequential"), where.child("sequential")),
    )


def check_suite(suite: Suite, kinds: Mapping[str, ConfigKind], metrics: Mapping[str, type[Metric]]) -> None:
    """The checks ``validate`` adds beyond parsing: files exist, transforms import. No compute."""
    where = Where(suite.path)
    check_available(suite.pipeline, where)
    for spec in suite.configs:
        kinds[spec.kind].check(spec.options, where.child(f"configs.{spec.name}"))
    for request in suite.metrics:
        metrics[request.name].check_options(request.options, where.child(f"metrics.{request.name}"))


def _read_prompts(data: Mapping[str, Any], where: Where, suite_dir: Path) -> list[str]:
    inline = tomlread.get_list(data, "prompts", str, where)
    file_name = tomlread.get(data, "prompts_file", str, where)
    if inline is not None and file_name is not None:
        raise where.error("prompts_file", "give prompts or prompts_file, not both")
    if file_name is not None:
        prompt_path = (suite_dir / file_name).resolve()
        if not prompt_path.is_file():
            raise where.error("prompts_file", f"prompt file not found: {prompt_path}")
        try:
            lines = prompt_path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text", file=prompt_path) from None
        prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not prompts:
            raise InputError("no prompts in file (one per line; '#' lines are comments)", file=prompt_path)
        return prompts
    if not inline:
        raise where.error("prompts", "missing; give a list of prompts or prompts_file")
    return inline


def _read_generation(data: Mapping[str, Any], where: Where) -> Generation:
    defaults = Generation()
    steps = tomlread.get(data, "steps", int, where, defaults.steps)
    width = tomlread.get(data, "width", int, where, defaults.width)
    height = tomlread.get(data, "height", int, where, defaults.height)
    guidance = tomlread.get(data, "guidance", float, where, defaults.guidance)
    negative = tomlread.get(data, "negative_prompt", str, where, "")
    batch_size = tomlread.get(data, "batch_size", int, where)
    frames = tomlread.get(data, "frames", int, where, defaults.frames)
    assert steps is not None and width is not None and height is not None and guidance is not None
    assert frames is not None
    if frames < 1:
        raise where.error("frames", f"must be >= 1, got {frames}")
    if steps < 1:
        raise where.error("steps", f"must be >= 1, got {steps}")
    for key, value in (("width", width), ("height", height)):
        if value < 8 or value % 8:
            raise where.error(key, f"must be a positive multiple of 8, got {value}")
    if batch_size is not None and batch_size < 1:
        raise where.error("batch_size", f"must be >= 1, got {batch_size}")
    return Generation(steps, width, height, guidance, negative or "", batch_size, frames)


def _read_metrics(
    data: Mapping[str, Any], where: Where, metrics: Mapping[str, type[Metric]], suite_dir: Path
) -> tuple[MetricRequest, ...]:
    table = tomlread.get_table(data, "metrics", where)
    if table is None:
        return tuple(MetricRequest(name) for name in DEFAULT_METRICS)
    requests = []
    inner = where.child("metrics")
    for name, options in table.items():
        if name not in metrics:
            raise inner.error(name, unknown("metric", name, metrics))
        if options is True:
            options = {}
        if not isinstance(options, dict):
            raise inner.error(name, "expected a table of options ({} for defaults) or true")
        parsed = metrics[name].parse_options(options, inner.child(name), suite_dir)
        requests.append(MetricRequest(name, parsed))
    return tuple(requests)


def _resolve_metric_defaults(
    requests: tuple[MetricRequest, ...], pipeline: PipelineSource, metrics: Mapping[str, type[Metric]], frames: int
) -> tuple[MetricRequest, ...]:
    """Options the suite leaves open, filled by each metric for the pipeline's evaluator: a built-in's own (the shapes
    world's trained CLIP for its pipelines), the tiny built-in otherwise; clip metrics get the suite's frames."""
    from harness.metrics.clip_model import BUILTIN_TINY
    from harness.pipelines.builtin import builtin_pipelines

    builtin = builtin_pipelines().get(pipeline.location) if pipeline.kind == "builtin" else None
    evaluator = builtin.evaluator if builtin is not None else BUILTIN_TINY
    resolved = []
    for request in requests:
        options = metrics[request.name].resolve_defaults(request.options, evaluator)
        if getattr(metrics[request.name], "clips", False):
            options.setdefault("frames", frames)
        resolved.append(MetricRequest(request.name, options))
    return tuple(resolved)


def _read_config(
    name: str,
    table: Any,
    where: Where,
    kinds: Mapping[str, ConfigKind],
    metric_names: tuple[str, ...],
    suite_dir: Path,
) -> ConfigSpec:
    if not NAME_PATTERN.match(name):
        raise where.error(name, "configuration names must be letters, digits, '.', '_' or '-'")
    if name == REFERENCE_ALIAS:
        raise where.error(name, f"{REFERENCE_ALIAS!r} is reserved (it names the blessed reference images)")
    if not isinstance(table, dict):
        raise where.error(name, "expected a table, e.g. [configs.fp16] dtype = 'float16'")
    inner = where.child(name)
    kind_name = tomlread.get(table, "kind", str, inner, "precision")
    assert kind_name is not None
    if kind_name not in kinds:
        raise inner.error("kind", unknown("configuration kind", kind_name, kinds))
    kind = kinds[kind_name]
    specific = {k: v for k, v in table.items() if k not in CONFIG_COMMON_KEYS}
    for key in specific:
        if key not in kind.keys:
            raise inner.error(key, unknown(f"key for kind {kind_name!r}", key, [*CONFIG_COMMON_KEYS, *kind.keys]))
    options = kind.parse(specific, inner, suite_dir)
    thresholds = parse_thresholds(
        tomlread.get_table(table, "thresholds", inner) or {}, inner.child("thresholds"), metric_names
    )
    expect = tomlread.get_choice(table, "expect", ("pass", "fail"), inner, "pass")
    return ConfigSpec(
        name=name,
        kind=kind_name,
        options=options,
        description=tomlread.get(table, "description", str, inner, "") or "",
        thresholds=thresholds,
        expect=expect,
    )


def _check_vs(thresholds: Mapping[str, tuple[Threshold, ...]], config_names: list[str], where: Where) -> None:
    for metric, items in thresholds.items():
        for threshold in items:
            if threshold.vs is not None and threshold.vs != REFERENCE_ALIAS and threshold.vs not in config_names:
                raise where.error(
                    f"{metric}.vs", unknown("configuration", threshold.vs, [REFERENCE_ALIAS, *config_names])
                )
