"""Suite files: TOML in, a frozen :class:`Suite` out. Every mistake names the file and key.

A suite names a pipeline, prompts and seeds, generation settings, the reference
configuration, a table of named configurations, the metrics to compute and the
thresholds they must meet (suite-wide, with per-configuration overrides).

Every top-level key is declared once in :data:`TOP_KEYS` with whether it changes
generated images; the generation settings are the fields of
:class:`~harness.samples.Generation`, declared there. A key that changes images is part
of every sample's identity (:mod:`harness.identity`), and ``tests/test_identity.py``
holds each one to that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import options, tomlread
from harness.errors import Where, unknown
from harness.kinds.base import ConfigSpec, jsonable
from harness.plan.sequential import SequentialOptions, parse_sequential
from harness.plan.source import PipelineSource, check_available, parse_source
from harness.plan.thresholds import REFERENCE_ALIAS, Threshold, parse_thresholds
from harness.plan.tolerance import regression_tolerances
from harness.samples import Generation

if TYPE_CHECKING:
    from harness.registry import Registry

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SuiteKey:
    """A top-level suite key: its help, and whether a change to it changes generated images."""

    help: str
    pixels: bool


TOP_KEYS: Mapping[str, SuiteKey] = {
    "name": SuiteKey("suite name (default: the file name); used in report and reference paths", False),
    "description": SuiteKey("free text shown in reports", False),
    "pipeline": SuiteKey("builtin:NAME | hub:org/name | ./local/diffusers/folder | ./checkpoint.safetensors", True),
    "pipeline_config": SuiteKey(
        "for a single-file checkpoint: a local diffusers folder with the component configs", True
    ),
    "family": SuiteKey("pipeline family override (`python -m harness ls families`)", True),
    "reference": SuiteKey("name of the configuration whose images are blessed as references", True),
    "prompts": SuiteKey("list of prompts", True),
    "prompts_file": SuiteKey("a text file, one prompt per line ('#' starts a comment)", True),
    "seeds": SuiteKey("list of integer seeds; each (prompt, seed) is one sample", True),
    "references": SuiteKey(
        "folder of blessed reference images (default ../reference_images/<name> from the suite)", False
    ),
    "reference_images": SuiteKey(
        "blessed (default): judge against the blessed images | live: generate the reference configuration in the "
        "same run and judge against those (the blessed ones then measure its drift)",
        False,
    ),
    "metrics": SuiteKey("table of metrics to compute, each with its options, e.g. { psnr = {}, ssim = {} }", False),
    "thresholds": SuiteKey("suite-wide thresholds per metric, e.g. psnr = { min = 30 }", False),
    "configs": SuiteKey("table of named configurations (each one's kind and options change its images)", True),
    "regression": SuiteKey(
        "tolerances against a baseline run (run --baseline), e.g. psnr = { max_drop = 0.5 }; defaults apply", False
    ),
    "sequential": SuiteKey(
        "stop each configuration once its gates are decided: { enabled = true, first = 8, growth = 2, alpha = 0.05 } "
        "(docs/sequential.md); the samples generated change, no sample's pixels",
        False,
    ),
}
CONFIG_COMMON_KEYS = {
    "kind": "configuration kind (default precision)",
    "description": "free text shown in reports",
    "thresholds": "per-configuration thresholds; replace the suite-wide ones for the metrics they name",
    "expect": "pass (default) | fail: a negative control that the gates must flag; it fails the run if it passes",
    "min_speedup": "the speed gate: median s/image of speedup_vs over this one's, in this run; fails when its whole "
    "95% interval is below (e.g. 1.3); its timings are never read from the sample cache",
    "speedup_vs": "the configuration the speedup is measured against (default: the reference configuration)",
    "effects": "effects it must show against its base or fail as a no-op ('did it apply?'): a list of pixels "
    "(images not bit-identical), speed (a speedup beyond noise), memory (less or more peak GPU memory)",
}
EFFECTS = ("pixels", "speed", "memory")
DEFAULT_METRICS = ("psnr",)


def suite_keys() -> dict[str, str]:
    """Every top-level key a suite may hold, with its help: :data:`TOP_KEYS` and the generation settings."""
    return {**{name: key.help for name, key in TOP_KEYS.items()}, **options.keys(Generation)}


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
            targets = [(t.compared_config, f"the {t.metric} gate") for t in self.thresholds_for(name)]
            spec = self.config(name)
            if spec.min_speedup is not None or "speed" in spec.effects:
                targets.append((self.speed_base(name), "the speed gate"))
            for target, gate in targets:
                if target and target not in names and target not in needed:
                    needed[target] = f"{gate} of {name!r} compares with it"
                    frontier.append(target)
        return needed

    def speed_base(self, name: str) -> str:
        """The configuration ``name``'s speed is judged against: its ``speedup_vs``, or the reference."""
        return self.config(name).speedup_vs or self.reference

    def timed(self) -> frozenset[str]:
        """Configurations whose timings a gate needs (``min_speedup`` or a ``speed`` effect), with their bases:
        generated in the run, never read from the sample cache."""
        gated = [spec.name for spec in self.configs if spec.min_speedup is not None or "speed" in spec.effects]
        return frozenset([*gated, *(self.speed_base(name) for name in gated)])

    def samples(self) -> list[tuple[int, str, int]]:
        """Every (prompt index, prompt, seed), prompt-major."""
        return [(index, prompt, seed) for index, prompt in enumerate(self.prompts) for seed in self.seeds]

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


def load_suite(path: Path, registry: Registry) -> Suite:
    """Read and validate a suite file (no files beyond it are opened except a prompts file)."""
    return suite_from_table(tomlread.read_toml(Path(path)), Path(path), registry)


def suite_from_table(data: Mapping[str, Any], path: Path, registry: Registry) -> Suite:
    """Validate a suite given as the table its TOML file would hold (the Python API builds one in code); ``path``
    names it in errors, and its folder is where relative files, references and reports are found."""
    path = Path(path)
    where = Where(path)
    tomlread.check_keys(data, list(suite_keys()), where)
    suite_dir = path.resolve().parent
    name = tomlread.get(data, "name", str, where, path.stem) or path.stem
    if not NAME_PATTERN.match(name):
        raise where.error("name", f"{name!r} must be letters, digits, '.', '_' or '-' (it names folders)")
    pipeline = parse_source(
        tomlread.require(data, "pipeline", str, where),
        where,
        suite_dir,
        tomlread.get(data, "family", str, where),
        tomlread.get(data, "pipeline_config", str, where),
        registry,
    )
    prompts = _read_prompts(data, where, suite_dir)
    generation = options.parse(Generation, data, where, suite_dir, also=tuple(TOP_KEYS))
    _check_frames(generation, pipeline, registry, where)
    metric_requests = _read_metrics(data, where, registry, suite_dir, pipeline, generation.frames)
    metric_names = tuple(request.name for request in metric_requests)
    for request in metric_requests:
        registry.metrics[request.name].check_prompts(prompts, where)
    thresholds = parse_thresholds(
        tomlread.get_table(data, "thresholds", where) or {}, where.child("thresholds"), metric_names
    )
    configs, reference = _read_configs(data, where, registry, metric_names, suite_dir)
    _check_vs(thresholds, [spec.name for spec in configs], where.child("thresholds"))
    regression = regression_tolerances(
        tomlread.get_table(data, "regression", where), where.child("regression"), metric_names, registry.metrics
    )
    return Suite(
        name=name,
        path=path.resolve(),
        description=tomlread.get(data, "description", str, where, "") or "",
        pipeline=pipeline,
        prompts=tuple(prompts),
        seeds=_read_seeds(data, where),
        generation=generation,
        reference=reference,
        configs=configs,
        metrics=metric_requests,
        thresholds=thresholds,
        references_dir=_references_dir(data, where, suite_dir, name),
        regression=regression,
        reference_images=_reference_images(data, where),
        sequential=parse_sequential(data.get("sequential"), where.child("sequential")),
    )


def check_suite(suite: Suite, registry: Registry) -> None:
    """The checks ``validate`` adds beyond parsing: files exist, transforms import. No compute."""
    where = Where(suite.path)
    check_available(suite.pipeline, where)
    for spec in suite.configs:
        registry.kinds[spec.kind].check(spec.options, where.child(f"configs.{spec.name}"))
    for request in suite.metrics:
        registry.metrics[request.name].check_options(
            request.options, where.child(f"metrics.{request.name}"), registry.evaluators
        )


def _read_prompts(data: Mapping[str, Any], where: Where, suite_dir: Path) -> list[str]:
    inline = tomlread.get_list(data, "prompts", str, where)
    file_name = tomlread.get(data, "prompts_file", str, where)
    if inline is not None and file_name is not None:
        raise where.error("prompts_file", "give prompts or prompts_file, not both")
    if file_name is not None:
        prompt_path = (suite_dir / file_name).resolve()
        if not prompt_path.is_file():
            raise where.error("prompts_file", f"prompt file not found: {prompt_path}")
        return options.read_lines(prompt_path, where.child("prompts_file"))
    if not inline:
        raise where.error("prompts", "missing; give a list of prompts or prompts_file")
    return inline


def _read_seeds(data: Mapping[str, Any], where: Where) -> tuple[int, ...]:
    seeds = tomlread.get_list(data, "seeds", int, where) or [0]
    if len(set(seeds)) != len(seeds):
        raise where.error("seeds", "seeds must be unique")
    if any(seed < 0 for seed in seeds):
        raise where.error("seeds", "seeds must be >= 0")
    return tuple(seeds)


def _references_dir(data: Mapping[str, Any], where: Where, suite_dir: Path, name: str) -> Path:
    text = tomlread.get(data, "references", str, where)
    return (
        (suite_dir / text).resolve() if text is not None else (suite_dir.parent / "reference_images" / name).resolve()
    )


def _check_frames(generation: Generation, pipeline: PipelineSource, registry: Registry, where: Where) -> None:
    """Clips need a video family: known here for a built-in or a named family (a folder's is known once loaded)."""
    if generation.frames == 1:
        return
    if pipeline.family is not None:
        family = registry.families[pipeline.family]
    elif pipeline.kind == "builtin":
        family = registry.builtins[pipeline.location].family
    else:
        return
    if not family.video:
        video = sorted(name for name, known in registry.families.items() if known.video)
        raise where.error(
            "frames",
            f"frames = {generation.frames}: the {family.name!r} family makes images; clips need a video family "
            f"({', '.join(video)})",
        )


def _reference_images(data: Mapping[str, Any], where: Where) -> str:
    mode = tomlread.get(data, "reference_images", str, where, "blessed") or "blessed"
    if mode not in ("blessed", "live"):
        raise where.error("reference_images", f"expected 'blessed' or 'live', got {mode!r}")
    return mode


def _read_metrics(
    data: Mapping[str, Any],
    where: Where,
    registry: Registry,
    suite_dir: Path,
    pipeline: PipelineSource,
    frames: int,
) -> tuple[MetricRequest, ...]:
    """The ``[metrics]`` table (``psnr`` alone when absent), each metric's options parsed, then the options the
    suite left open filled for the pipeline's evaluator: a built-in's own (the shapes world's trained CLIP for its
    pipelines), the tiny built-in otherwise; clip metrics get the suite's frames."""
    from harness.metrics.clip_model import BUILTIN_TINY

    metrics = registry.metrics
    table = tomlread.get_table(data, "metrics", where)
    requested: dict[str, Any] = {name: {} for name in DEFAULT_METRICS} if table is None else dict(table)
    builtin = registry.builtins.get(pipeline.location) if pipeline.kind == "builtin" else None
    evaluator = builtin.evaluator if builtin is not None else BUILTIN_TINY
    inner = where.child("metrics")
    requests = []
    for name, given in requested.items():
        if name not in metrics:
            raise inner.error(name, unknown("metric", name, metrics))
        if given is True:
            given = {}
        if not isinstance(given, dict):
            raise inner.error(name, "expected a table of options ({} for defaults) or true")
        parsed = metrics[name].resolve_defaults(
            metrics[name].parse_options(given, inner.child(name), suite_dir), evaluator
        )
        if getattr(metrics[name], "clips", False):
            parsed.setdefault("frames", frames)
        requests.append(MetricRequest(name, parsed))
    return tuple(requests)


def _read_configs(
    data: Mapping[str, Any], where: Where, registry: Registry, metric_names: tuple[str, ...], suite_dir: Path
) -> tuple[tuple[ConfigSpec, ...], str]:
    """The ``[configs]`` table and the reference configuration's name, with every cross-reference checked."""
    table = tomlread.get_table(data, "configs", where)
    if not table:
        raise where.error("configs", "at least one configuration is needed, e.g. [configs.fp32] dtype = 'float32'")
    inner = where.child("configs")
    configs = tuple(_read_config(name, body, inner, registry, metric_names, suite_dir) for name, body in table.items())
    names = [spec.name for spec in configs]
    reference = tomlread.require(data, "reference", str, where)
    if reference not in names:
        raise where.error("reference", unknown("configuration", reference, names))
    for spec in configs:
        target = getattr(getattr(spec.options, "extra", None), "equivalent_to", None)
        if target is not None and target not in names:
            raise inner.error(f"{spec.name}.equivalent_to", unknown("configuration", target, names))
        _check_vs(spec.thresholds, names, inner.child(f"{spec.name}.thresholds"))
        if spec.speedup_vs is not None and spec.speedup_vs not in names:
            raise inner.error(f"{spec.name}.speedup_vs", unknown("configuration", spec.speedup_vs, names))
    return configs, reference


def _read_config(
    name: str, table: Any, where: Where, registry: Registry, metric_names: tuple[str, ...], suite_dir: Path
) -> ConfigSpec:
    if not NAME_PATTERN.match(name):
        raise where.error(name, "configuration names must be letters, digits, '.', '_' or '-'")
    if name == REFERENCE_ALIAS:
        raise where.error(name, f"{REFERENCE_ALIAS!r} is reserved (it names the blessed reference images)")
    if not isinstance(table, dict):
        raise where.error(name, "expected a table, e.g. [configs.fp16] dtype = 'float16'")
    inner = where.child(name)
    kind_name = tomlread.get(table, "kind", str, inner, "precision") or "precision"
    if kind_name not in registry.kinds:
        raise inner.error("kind", unknown("configuration kind", kind_name, registry.kinds))
    kind = registry.kinds[kind_name]
    specific = {k: v for k, v in table.items() if k not in CONFIG_COMMON_KEYS}
    for key in specific:
        if key not in kind.keys:
            raise inner.error(key, unknown(f"key for kind {kind_name!r}", key, [*CONFIG_COMMON_KEYS, *kind.keys]))
    thresholds = parse_thresholds(
        tomlread.get_table(table, "thresholds", inner) or {}, inner.child("thresholds"), metric_names
    )
    return ConfigSpec(
        name=name,
        kind=kind_name,
        options=kind.parse(specific, inner, suite_dir),
        description=tomlread.get(table, "description", str, inner, "") or "",
        thresholds=thresholds,
        expect=tomlread.get_choice(table, "expect", ("pass", "fail"), inner, "pass"),
        min_speedup=_min_speedup(table, inner),
        speedup_vs=tomlread.get(table, "speedup_vs", str, inner),
        effects=_effects(table, inner),
    )


def _min_speedup(table: Mapping[str, Any], where: Where) -> float | None:
    value = tomlread.get(table, "min_speedup", float, where)
    if value is not None and value <= 0:
        raise where.error("min_speedup", f"must be above 0 (1.3: at least 1.3x faster), got {value:g}")
    return value


def _effects(table: Mapping[str, Any], where: Where) -> tuple[str, ...]:
    found = tomlread.get_list(table, "effects", str, where) or []
    for item in found:
        if item not in EFFECTS:
            raise where.error("effects", unknown("effect", item, EFFECTS))
    return tuple(found)


def _check_vs(thresholds: Mapping[str, tuple[Threshold, ...]], config_names: list[str], where: Where) -> None:
    for metric, items in thresholds.items():
        for threshold in items:
            if threshold.vs is not None and threshold.vs != REFERENCE_ALIAS and threshold.vs not in config_names:
                raise where.error(
                    f"{metric}.vs", unknown("configuration", threshold.vs, [REFERENCE_ALIAS, *config_names])
                )
