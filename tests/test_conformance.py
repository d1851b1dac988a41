"""One conformance test over everything the registry holds, the core's and the bundled plug-in's: each kind, metric,
family, built-in pipeline and control meets the same contract, so a new one is held to it without a test of its own
being written first (torchmetrics' MetricTester, for every extension).

- kinds: options declared once (every key from a declaration), an example that parses, round trips and keys the
  identity deterministically; every key changes the identity; an unknown key or value names file and key;
- metrics: declared unit, direction and scope; options parse and refuse an unknown key by name; the same images
  score the same twice;
- families and built-ins: a diffusers pipeline class and a denoiser; every built-in builds to the same weights and
  component configurations twice;
- controls: each resolves to a function, says what it damages, and damages a pipeline the same way twice.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import options
from harness.errors import InputError, Where
from harness.generate.generator import ConfigGenerator
from harness.identity import PipelineIdentity
from harness.kinds.base import ConfigKind, ConfigSpec
from harness.kinds.pipeline import COMMON_KEYS, PipelineKind
from harness.metrics.base import ImageMetric, PairMetric, SetMetric
from harness.pipelines.family import Family, LoadedPipeline
from harness.plan.suite import load_suite
from harness.registry import build_registry

REGISTRY = build_registry()
KINDS = sorted(REGISTRY.kinds)
METRICS = sorted(REGISTRY.metrics)
CONTROLS = sorted(REGISTRY.controls)
SCOPES = ("pair", "image", "set")
DAMAGES = ("quality", "rounding", "schedule", "speed", "memory", "clips", "tail")


def _parse(kind: ConfigKind, table: dict[str, Any], tmp_path: Path) -> Any:
    return kind.parse(table, Where(tmp_path / "suite.toml", "configs.c"), tmp_path)


def _declarations(kind: ConfigKind) -> dict[str, tuple[Any, Any, Any]]:
    """Every key the kind reads, with its declaration."""
    return {key: found for cls in kind.declarations() for key, found in options.declared(cls).items()}


def _other(value: Any, spec: options.Option, hint: Any, current: Any) -> Any:
    """A valid value for one key that differs from ``current`` (the example's, or the default)."""
    inner = typing.get_args(hint)[0] if type(None) in typing.get_args(hint) else hint
    if value == "transform":
        return "my_runtime.patches:apply"
    if value == "cache":  # a table of its own: tests/kinds/speedup/test_cache.py varies each hook's keys
        return {"hook": "first_block", "threshold": 0.3}
    if value == "compile":
        return {"mode": "max-autotune"}
    if spec.read is not None:  # a command line
        return [*list(current), "--also"]
    if spec.choices:
        if typing.get_origin(inner) is tuple:  # a table of choices (component dtypes)
            return {"vae": next(c for c in spec.choices if c not in dict(current or ()).values())}
        return next(choice for choice in spec.choices if choice != current)
    if inner is bool:
        return not current
    if inner is int:
        return int(current or 0) + 1
    if inner is float:
        return (float(current) or 1.0) * 0.5 if spec.below is not None else float(current or 1.0) * 2
    if typing.get_origin(inner) is tuple:
        item = typing.get_args(inner)[0]
        if typing.get_origin(item) is tuple:
            return {"OMP_NUM_THREADS": "3"}
        return [*list(current or ()), 7 if item is int else "another"]
    if spec.path:
        return "elsewhere.txt"
    return f"{current or ''}other"


def _identity(kind_name: str, spec_options: Any, tmp_path: Path) -> str:
    suite_path = tmp_path / "suite.toml"
    suite_path.write_text('pipeline = "builtin:tiny-sd"\nreference = "c"\nprompts = ["x"]\n[configs.c]\n')
    suite = load_suite(suite_path, REGISTRY)
    source = suite.pipeline.to_dict()

    def loader() -> LoadedPipeline:
        identity = PipelineIdentity(source, "weights")
        return LoadedPipeline(None, Family(), suite.pipeline, identity.digest(), 0.0, identity)

    generator = ConfigGenerator(REGISTRY.kinds, None, suite, "cpu", loader)
    return generator.identity(ConfigSpec("c", kind_name, spec_options), 1).digest()


@pytest.mark.parametrize("name", KINDS)
def test_kind_options_are_declared_once(name):
    kind = REGISTRY.kinds[name]
    assert kind.name == name and kind.summary and kind.declarations()
    declared = _declarations(kind)
    assert set(kind.keys) == set(declared) | {s.lines_key for _, s, _ in declared.values() if s.lines_key}
    for cls in kind.declarations():
        undeclared = [f.name for f in dataclasses.fields(cls) if "option" not in f.metadata]
        assert not undeclared, f"{name}: options without a declaration: {undeclared}"
    if isinstance(kind, PipelineKind) and kind.own_options is not None:
        assert not set(options.keys(kind.own_options)) & set(COMMON_KEYS)


@pytest.mark.parametrize("name", KINDS)
def test_kind_example_parses_round_trips_and_keys_the_identity(name, tmp_path):
    kind = REGISTRY.kinds[name]
    first, second = _parse(kind, dict(kind.example), tmp_path), _parse(kind, dict(kind.example), tmp_path)
    assert first == second
    assert _identity(name, first, tmp_path) == _identity(name, second, tmp_path)
    assert isinstance(kind.default_batch_size(first, "cpu"), int)
    assert kind.unavailable(first, "cpu") is None or isinstance(kind.unavailable(first, "cpu"), str)


@pytest.mark.parametrize(
    ("name", "key"), [(name, key) for name in KINDS for key in _declarations(REGISTRY.kinds[name])]
)
def test_every_kind_key_changes_the_identity(name, key, tmp_path):
    """The structural guard for the `frames` fault: a key a kind reads but the sample identity ignores."""
    kind = REGISTRY.kinds[name]
    field, spec, hint = _declarations(kind)[key]
    example = dict(kind.example)
    base = _parse(kind, example, tmp_path)
    holder = next(
        o
        for o in (base, *(getattr(base, part, None) for part in ("precision", "extra", "speedups")))
        if hasattr(o, field.name)
    )
    current = getattr(holder, field.name)  # as parsed: a default that follows another key is resolved
    changed = {**example, key: _other(key, spec, hint, current)}
    if name == "streaming" and key in ("use_stream", "record_stream"):
        changed["use_stream"] = True  # record_stream needs it; both need a group mode, which the example has
    if name == "streaming" and key == "offload":
        changed["mode"] = "group_block"
    other = _parse(kind, changed, tmp_path)
    assert _identity(name, base, tmp_path) != _identity(name, other, tmp_path), f"{name}.{key} misses the identity"


@pytest.mark.parametrize("name", KINDS)
def test_kind_errors_name_the_file_and_key(name, tmp_path):
    kind = REGISTRY.kinds[name]
    with pytest.raises(InputError) as caught:
        _parse(kind, {**kind.example, "bogus_key": 1}, tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "suite.toml")) and "configs.c.bogus_key" in str(caught.value)
    for key, (_, spec, hint) in _declarations(kind).items():
        if spec.choices and typing.get_origin(hint) is not tuple:
            with pytest.raises(InputError) as caught:
                _parse(kind, {**kind.example, key: "not-a-choice"}, tmp_path)
            assert f"configs.c.{key}" in str(caught.value) and "Available:" in str(caught.value)


@pytest.mark.parametrize("name", METRICS)
def test_metric_declares_what_it_measures_and_parses_its_options(name, tmp_path):
    cls = REGISTRY.metrics[name]
    assert cls.name == name and cls.scope in SCOPES and isinstance(cls.higher_is_better, bool) and cls.summary
    assert isinstance(cls.unit, str)
    where = Where(tmp_path / "suite.toml", f"metrics.{name}")
    assert cls.parse_options({}, where, tmp_path) == cls.parse_options({}, where, tmp_path)
    with pytest.raises(InputError) as caught:
        cls.parse_options({"bogus_option": 1}, where, tmp_path)
    assert f"metrics.{name}.bogus_option" in str(caught.value)
    assert set(cls.option_keys) >= {key for key in cls.parse_options({}, where, tmp_path) if key != "frames"} - {
        "subset_size",
        "bootstrap",
        "weights",
    }


def _images(seed: int, n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("name", METRICS)
def test_metric_scores_the_same_images_the_same_twice(name, tmp_path):
    from harness.metrics.base import ScoringContext
    from harness.metrics.clip_model import BUILTIN_TINY

    cls = REGISTRY.metrics[name]
    where = Where(tmp_path / "suite.toml", f"metrics.{name}")
    parsed = cls.resolve_defaults(cls.parse_options({}, where, tmp_path), BUILTIN_TINY)
    context = ScoringContext("cpu", tmp_path / "cache", "", evaluators=REGISTRY.evaluators)
    metric = cls(parsed, context)
    if metric.unavailable():
        pytest.skip(f"{name}: {metric.unavailable()}")
    images, references = _images(1), _images(2)
    prompts = [  # the shapes world's own captions: its adherence metric reads them
        "a blue square in the center and a yellow star on the left",
        "a purple circle in the center and a green triangle at the bottom",
        "a white star on the right and a yellow square at the top",
        "a black star at the top and a red square on the right",
    ]
    try:
        cls.check_prompts(prompts, where)
    except InputError:  # the moving world's metric reads motion captions
        prompts = [
            "a red circle moving left",
            "a blue star moving up",
            "a white square moving down",
            "a green triangle moving right",
        ]
        cls.check_prompts(prompts, where)
    if isinstance(metric, PairMetric):
        first, second = metric.score_pairs(images, references), metric.score_pairs(images, references)
    elif isinstance(metric, ImageMetric):
        first, second = metric.score_images(images, prompts), metric.score_images(images, prompts)
    else:
        assert isinstance(metric, SetMetric)
        first, second = metric.features(images).tolist(), metric.features(images).tolist()
    assert len(first) == len(images) and first == second


@pytest.mark.parametrize("name", sorted(REGISTRY.families))
def test_family_names_a_diffusers_pipeline_and_its_denoiser(name):
    import diffusers

    family = REGISTRY.families[name]
    assert family.name == name and family.denoiser
    assert hasattr(diffusers, family.pipeline_class), family.pipeline_class
    assert REGISTRY.family_for_class(family.pipeline_class).name == name


@pytest.mark.parametrize("name", sorted(REGISTRY.builtins))
def test_builtin_builds_the_same_pipeline_twice(name):
    from harness.generate.loading import load_pipeline
    from harness.plan.source import PipelineSource

    builtin = REGISTRY.builtins[name]
    assert builtin.description and builtin.family.name in REGISTRY.families
    first = load_pipeline(PipelineSource("builtin", name), Where("x"), REGISTRY)
    second = load_pipeline(PipelineSource("builtin", name), Where("x"), REGISTRY)
    assert first.fingerprint == second.fingerprint and first.identity == second.identity
    assert isinstance(first.family, builtin.family)
    assert builtin.family.denoiser_module(first.family, first.pipe) is not None


def _state(loaded: LoadedPipeline) -> tuple[Any, ...]:
    """What a control can change: every weight (as sums), every component's configuration, the forward hooks."""
    import torch

    sums, configs, hooks = [], {}, 0
    for name, component in sorted(loaded.pipe.components.items()):
        config = getattr(component, "config", None)
        if config is not None:
            values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
            configs[name] = {k: str(v) for k, v in values.items()}
        if isinstance(component, torch.nn.Module):
            sums += [float(t.float().sum()) for t in component.state_dict().values()]
            hooks += sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in component.modules())
    return sums, configs, hooks


@pytest.mark.parametrize("name", CONTROLS)
def test_control_resolves_says_what_it_damages_and_damages_the_same_way_twice(name):
    from harness.generate.loading import load_pipeline
    from harness.kinds.transform import resolve_transform
    from harness.plan.source import PipelineSource

    control = REGISTRY.controls[name]
    assert control.name == name and control.damages in DAMAGES and control.summary
    function = resolve_transform(control.transform, Path.cwd())
    if control.damages not in ("quality", "rounding", "schedule"):
        return  # on forward calls (speed, memory, decoded clips): their effect is measured in runs (tests/test_controls)
    builtin = "shapes" if control.transform.startswith("harness.world") else "tiny-sd"

    def damaged() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        loaded = load_pipeline(PipelineSource("builtin", builtin), Where("x"), REGISTRY)
        before = _state(loaded)
        function(loaded.pipe)
        return before, _state(loaded)

    (before, after), (_, again) = damaged(), damaged()
    assert after == again, f"{control.transform} damages differently each time"
    assert after != before, f"{control.transform} left the pipeline as it was"
