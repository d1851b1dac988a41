"""The harness from Python: a suite built in code, pipelines handed over as objects, the command line's run.

A backend applied in code (a transformer swapped for another runtime's, a ``quantize_`` call, a pipeline loaded
with a quantization config) is judged by handing the pipeline over, with no ``transform = "module:function"``
indirection. Everything else is the command line's: the suite is validated by the same reader (its keys are a
suite file's), and the run has the same cache, references, gates, reports and exit code::

    from harness import api

    suite = api.Suite(
        name="mine",
        pipeline=pipe,                                    # or "builtin:shapes", "hub:org/name", "./folder"
        prompts=["a red circle on the left"],
        seeds=[0, 1],
        steps=8, width=64, height=64, guidance=5.0,
        metrics={"psnr": {}, "ssim": {}},
        thresholds={"psnr": {"min": 35}},
        configs={
            "fp32": {},                                   # the suite's pipeline, as any kind configures it
            "fp16": {"dtype": "float16"},
            "mine": api.pipeline(quantized_pipe),         # a pipeline object (or a function making one), as it is
        },
    )
    result = api.run(suite, references="live")
    assert result.passed, result.failures()

``result`` is an :class:`Outcome`: the verdict, each configuration's :class:`~harness.results.ConfigResult`, every
check, and the paths of the run folder, its report and results.json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.registry import Registry, build_registry
from harness.results import PASS, CheckOutcome, ConfigResult, MetricSummary, RunResult

__all__ = ["Outcome", "Pipeline", "Suite", "bless", "builtin", "load", "pipeline", "registry_for", "run"]


@dataclass(frozen=True)
class Pipeline:
    """A configuration whose pipeline is a Python object (or a function making one), run as it is (kind "object");
    ``table`` holds its other keys (``expect``, ``thresholds``, ``description``)."""

    value: Any
    table: Mapping[str, Any] = field(default_factory=dict)


def pipeline(value: Any, **table: Any) -> Pipeline:
    """A configuration of ``value`` (a diffusers pipeline, or a function returning one), e.g.
    ``api.pipeline(pipe, expect="fail")``."""
    return Pipeline(value, table)


class Suite:
    """A suite built in code: the keys of a suite file (``python -m harness ls keys`` lists them) as arguments, with
    pipelines that may be objects. ``folder`` is where relative files and the references (``reference_images/NAME``
    unless ``references`` says) are found, as a suite file's folder is; nothing is written before a run or a
    blessing."""

    def __init__(
        self,
        *,
        name: str,
        pipeline: Any,
        prompts: Sequence[str],
        configs: Mapping[str, Mapping[str, Any] | Pipeline],
        reference: str | None = None,
        folder: str | Path = ".",
        **keys: Any,
    ):
        self.folder = Path(folder).resolve()
        self.objects: dict[str, Any] = {}
        table: dict[str, Any] = {"name": name, "prompts": list(prompts), **keys}
        table.setdefault("references", f"reference_images/{name}")
        if isinstance(pipeline, str):
            table["pipeline"] = pipeline
        else:
            self.objects["pipeline"] = pipeline
            table["pipeline"] = "object:pipeline"
        table["configs"] = {}
        for config, given in configs.items():
            if isinstance(given, Pipeline):
                self.objects[f"config:{config}"] = given.value
                table["configs"][config] = {**given.table, "kind": "object", "object": f"config:{config}"}
            else:
                table["configs"][config] = dict(given)
        table["reference"] = reference or next(iter(configs))
        self.table = table
        self.path = self.folder / f"{name} (harness.api.Suite)"  # what errors name; its folder is the suite's


def builtin(name: str) -> Any:
    """A built-in pipeline (``python -m harness ls pipelines``) as a diffusers object, e.g. the shapes world to try
    a backend on before a real model: ``api.pipeline(my_backend(api.builtin("shapes")))``."""
    from harness.errors import InputError, unknown

    builtins = build_registry().builtins
    if name not in builtins:
        raise InputError(unknown("built-in pipeline", name, builtins))
    return builtins[name].build()


def registry_for(objects: Mapping[str, Any]) -> Registry:
    """The command line's registry, with ``objects`` handed over and the kind that runs them."""
    from harness.kinds.object import ObjectKind

    registry = build_registry()
    registry.objects.update(objects)
    registry.kinds.add(ObjectKind.name, ObjectKind(registry.objects, registry.family_for_class), "harness.api")
    return registry


def load(path: str | Path) -> Suite:
    """A suite file, as a :class:`Suite` (to run it from Python, or to change a key first: ``suite.table``)."""
    from harness import tomlread

    path = Path(path).resolve()
    loaded = Suite.__new__(Suite)
    loaded.folder, loaded.objects, loaded.path = path.parent, {}, path
    loaded.table = {"name": path.stem, **tomlread.read_toml(path)}
    return loaded


@dataclass(frozen=True)
class Outcome:
    """A finished run: what results.json holds, and where the run folder is."""

    result: RunResult
    run_dir: Path
    exit_code: int

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def verdict(self) -> str:
        return self.result.verdict

    @property
    def configs(self) -> dict[str, ConfigResult]:
        return {config.name: config for config in self.result.configs}

    @property
    def checks(self) -> tuple[CheckOutcome, ...]:
        return self.result.checks

    def failures(self) -> list[CheckOutcome]:
        """The checks that failed or errored (a negative control's expected failures are not among them)."""
        return [check for check in self.result.checks if check.status not in (PASS, "skipped", "xfail")]

    def check(self, config: str, name: str) -> CheckOutcome | None:
        return next((c for c in self.result.checks if c.config == config and c.check == name), None)

    def summary(self, config: str, metric: str) -> MetricSummary | None:
        return self.configs[config].summary(metric)

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    @property
    def results_path(self) -> Path:
        return self.run_dir / "results.json"


def _prepared(suite: Suite) -> tuple[Any, Registry]:
    from harness.plan.suite import check_suite, suite_from_table

    registry = registry_for(suite.objects)
    loaded = suite_from_table(suite.table, suite.path, registry)
    check_suite(loaded, registry)
    return loaded, registry


def run(
    suite: Suite,
    *,
    configs: Sequence[str] = (),
    device: str = "auto",
    references: str | None = None,
    out: str | Path | None = None,
    reports_root: str | Path = "reports",
    cache_dir: str | Path = ".harness_cache",
    use_cache: bool = True,
    baseline: str | Path | None = None,
    timing_repeats: int | None = 0,
    sequential: bool | None = None,
    batch_size: int | None = None,
    reports: bool = True,
) -> Outcome:
    """Run ``suite`` as ``python -m harness run`` does (``configs``: ``--config``; ``references``: blessed or
    live; ``out``: the run folder, else a new one under ``reports_root``; ``cache_dir``: the command line's default).
    Bad input raises :class:`~harness.errors.InputError` with the command line's message; a configuration
    that fails is in the outcome, not raised."""
    from harness.runner import Runner, RunRequest

    loaded, registry = _prepared(suite)
    request = RunRequest(
        suite=loaded,
        configs=tuple(configs),
        out_dir=Path(out) if out is not None else None,
        reports_root=Path(reports_root),
        device=device,
        batch_size=batch_size,
        cache_dir=Path(cache_dir),
        use_cache=use_cache,
        baseline=Path(baseline) if baseline is not None else None,
        timing_repeats=timing_repeats,
        references=references,
        sequential=sequential,
        reports=reports,
    )
    output = Runner(registry).run(request)
    return Outcome(output.result, output.run_dir, output.code)


def bless(suite: Suite, *, device: str = "auto", cache_dir: str | Path = ".harness_cache") -> Path:
    """Generate and store the reference configuration's images (``python -m harness bless``); their folder."""
    from harness.runner import Runner, RunRequest

    loaded, registry = _prepared(suite)
    Runner(registry).bless(RunRequest(suite=loaded, device=device, cache_dir=Path(cache_dir)))
    return loaded.references_dir
