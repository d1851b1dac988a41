"""The registry: the core's kinds, metrics, families, built-ins, controls and evaluators, then the plug-ins'.

The shapes world is the bundled plug-in; an installed package adds its own through the entry-point group
``harness.plugins``, and a name taken twice is refused, naming both owners.
"""

from __future__ import annotations

import pickle
import sys
import types

import pytest

from harness import registry as registry_module
from harness.controls import Control
from harness.errors import InputError
from harness.kinds.precision import PrecisionKind
from harness.metrics.base import ImageMetric
from harness.metrics.clip_model import check_clip
from harness.metrics.psnr import PSNR
from harness.pipelines.family import Builtin
from harness.pipelines.sd import StableDiffusionFamily, build_tiny_sd
from harness.registry import CORE, build_registry


def test_the_shapes_world_registers_as_the_bundled_plugin(registry):
    from harness.world import plugin

    pipelines = registry.builtins
    world = [name for name in pipelines if name.startswith("shapes")]
    assert world == [builtin.name for builtin in plugin.builtins()]
    assert {pipelines.owner(name) for name in world} == {"harness.world.plugin"}
    assert {pipelines[name].evaluator for name in world} == {"builtin:shapes"}
    assert pipelines["tiny-sd"].evaluator == "builtin:tiny" and pipelines.owner("tiny-sd") == CORE
    assert registry.metrics["adherence"].__module__ == "harness.world.adherence"
    assert set(registry.evaluators) == {"builtin:shapes"}
    assert "harness.world.controls:unet_noise_0_5" in {c.transform for c in registry.controls.values()}


def test_every_builtin_names_a_registered_family(registry):
    for builtin in registry.builtins.values():
        assert registry.families[builtin.family.name] is builtin.family or issubclass(
            builtin.family, registry.families[builtin.family.name]
        )


def test_the_core_alone_has_no_world():
    core = build_registry(with_plugins=False)
    assert "shapes" not in core.builtins and "adherence" not in core.metrics and not core.evaluators
    assert "tiny-sd" in core.builtins and "psnr" in core.metrics and "precision" in core.kinds


def test_the_registry_pickles_for_isolated_workers(registry):
    copy = pickle.loads(pickle.dumps(registry))
    assert list(copy.kinds) == list(registry.kinds) and list(copy.builtins) == list(registry.builtins)


class Brightness(ImageMetric):
    name = "brightness"
    unit = ""
    higher_is_better = True
    summary = "mean pixel value (a plug-in's metric)"

    def score_images(self, images, prompts):
        return [float(image.mean()) for image in images]


class FakeKind(PrecisionKind):
    name = "fake"
    summary = "the precision kind again, from a plug-in"


def install(monkeypatch, module: types.ModuleType) -> None:
    """Make ``module`` an installed plug-in: an entry point of the group ``harness.plugins``."""
    monkeypatch.setitem(sys.modules, module.__name__, module)

    class Entry:
        name, value = "fake", module.__name__

        def load(self):
            return module

    real = registry_module.importlib.metadata.entry_points
    monkeypatch.setattr(
        registry_module.importlib.metadata,
        "entry_points",
        lambda group=None, **kw: [Entry()] if group == registry_module.ENTRY_POINT_GROUP else real(group=group, **kw),
    )


@pytest.fixture
def installed_plugin(monkeypatch, tmp_path):
    """A package offering a pipeline, a metric, an evaluator, a kind and a control."""
    module = types.ModuleType("fake_harness_plugin")
    module.builtins = lambda: [  # type: ignore[attr-defined]
        Builtin("tiny-sd-plugged", "tiny-sd again, from a plug-in", StableDiffusionFamily, build_tiny_sd, "builtin:eye")
    ]
    module.metrics = lambda: [Brightness]  # type: ignore[attr-defined]
    module.evaluators = lambda: {"builtin:eye": lambda: tmp_path / "eye"}  # type: ignore[attr-defined]
    module.kinds = lambda: [FakeKind()]  # type: ignore[attr-defined]
    module.controls = lambda: [Control("darken", "fake_harness_plugin:darken", "quality", "darker")]  # type: ignore[attr-defined]
    install(monkeypatch, module)
    return module


def test_an_installed_plugin_adds_pipelines_metrics_kinds_controls_and_evaluators(
    installed_plugin, write_suite, tmp_path
):
    from harness.plan.suite import load_suite

    registry = build_registry()
    assert "tiny-sd-plugged" in registry.builtins and "shapes" in registry.builtins
    assert registry.metrics["brightness"] is Brightness and "adherence" in registry.metrics
    assert isinstance(registry.kinds["fake"], FakeKind) and "darken" in registry.controls
    assert registry.kinds.owner("fake") == "fake_harness_plugin (entry point 'fake')"
    body = (
        'name = "p"\npipeline = "builtin:tiny-sd-plugged"\nreference = "fp32"\nprompts = ["a red circle"]\n'
        "seeds = [0]\nsteps = 2\nwidth = 32\nheight = 32\n\n[metrics]\nclip_score = {}\nfid = {}\nbrightness = {}\n\n"
        '[configs.fp32]\ndtype = "float32"\n[configs.other]\nkind = "fake"\n'
    )
    suite = load_suite(write_suite(body, name="p"), registry)
    options = {request.name: request.options for request in suite.metrics}
    # The pipeline's evaluator is what CLIP-based metrics default to, and the feature space of set metrics.
    assert options["clip_score"]["model"] == "builtin:eye"
    assert options["fid"]["features"] == "clip" and options["fid"]["model"] == "builtin:eye"
    assert suite.config("other").kind == "fake"
    # An evaluator folder that is not there says where it was looked for.
    with pytest.raises(InputError, match=f"no open_clip model at {tmp_path / 'eye'}"):
        check_clip({"model": "builtin:eye"}, registry.evaluators)


@pytest.mark.parametrize(
    ("hook", "entry", "section", "name"),
    [
        ("metrics", lambda: [type("Shadow", (PSNR,), {})], "metric", "psnr"),
        ("kinds", lambda: [type("Shadow", (PrecisionKind,), {})()], "configuration kind", "precision"),
        (
            "builtins",
            lambda: [Builtin("tiny-sd", "a second tiny-sd", StableDiffusionFamily, build_tiny_sd)],
            "built-in pipeline",
            "tiny-sd",
        ),
        ("families", lambda: [type("Shadow", (StableDiffusionFamily,), {})], "pipeline family", "sd"),
        ("evaluators", lambda: {"builtin:shapes": lambda: None}, "built-in evaluator", "builtin:shapes"),
    ],
)
def test_a_plugin_reusing_a_taken_name_is_refused_naming_both(monkeypatch, hook, entry, section, name):
    module = types.ModuleType("shadowing_plugin")
    setattr(module, hook, lambda: entry())
    install(monkeypatch, module)
    with pytest.raises(InputError) as caught:
        build_registry()
    message = str(caught.value)
    assert f"{section} {name!r} is registered twice" in message
    assert "shadowing_plugin (entry point 'fake')" in message
    assert ("by harness and" in message) or ("by harness.world.plugin and" in message)


def test_a_plugin_reusing_a_name_fails_the_command_with_exit_2(monkeypatch, capsys):
    from harness.cli import main

    module = types.ModuleType("shadowing_plugin")
    module.metrics = lambda: [type("Shadow", (PSNR,), {})]  # type: ignore[attr-defined]
    install(monkeypatch, module)
    assert main(["ls", "metrics"]) == 2
    assert "metric 'psnr' is registered twice" in capsys.readouterr().err


def test_an_unknown_builtin_clip_lists_the_plugins_evaluators(registry):
    with pytest.raises(InputError) as caught:
        check_clip({"model": "builtin:shapez"}, registry.evaluators)
    assert "Did you mean: builtin:shapes?" in str(caught.value) and "builtin:tiny" in str(caught.value)
