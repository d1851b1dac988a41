"""Plug-ins add built-in pipelines, metrics and evaluator CLIPs; the shapes world is the bundled one."""

from __future__ import annotations

import sys
import types

import pytest

from harness import plugins
from harness.errors import InputError
from harness.metrics import default_metrics
from harness.metrics.base import ImageMetric
from harness.metrics.clip_model import check_clip
from harness.pipelines.builtin import Builtin, builtin_pipelines
from harness.pipelines.sd import StableDiffusionFamily, build_tiny_sd


def test_the_shapes_world_registers_as_the_bundled_plugin():
    from harness.world import plugin

    pipelines = builtin_pipelines()
    world = [name for name in pipelines if name.startswith("shapes")]
    assert world == [builtin.name for builtin in plugin.builtins()]
    assert {pipelines[name].evaluator for name in world} == {"builtin:shapes"}
    assert pipelines["tiny-sd"].evaluator == "builtin:tiny"
    assert default_metrics()["adherence"].__module__ == "harness.world.adherence"
    assert set(plugins.plugin_clip_folders()) == {"builtin:shapes"}


class Brightness(ImageMetric):
    name = "brightness"
    unit = ""
    higher_is_better = True
    summary = "mean pixel value (a plug-in's metric)"

    def score_images(self, images, prompts):
        return [float(image.mean()) for image in images]


@pytest.fixture
def installed_plugin(monkeypatch, tmp_path):
    """A package registering a plug-in module through the `harness.plugins` entry-point group."""
    module = types.ModuleType("fake_harness_plugin")
    module.builtins = lambda: [  # type: ignore[attr-defined]
        Builtin("tiny-sd-plugged", "tiny-sd again, from a plug-in", StableDiffusionFamily, build_tiny_sd, "builtin:eye")
    ]
    module.metrics = lambda: [Brightness]  # type: ignore[attr-defined]
    module.clip_folders = lambda: {"builtin:eye": lambda: tmp_path / "eye"}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_harness_plugin", module)

    class Entry:
        def load(self):
            return module

    real = plugins.importlib.metadata.entry_points
    monkeypatch.setattr(
        plugins.importlib.metadata,
        "entry_points",
        lambda group=None, **kw: [Entry()] if group == plugins.ENTRY_POINT_GROUP else real(group=group, **kw),
    )
    return module


def test_an_installed_plugin_adds_pipelines_metrics_and_evaluators(installed_plugin, write_suite, tmp_path):
    from harness.plan.suite import load_suite

    assert "tiny-sd-plugged" in builtin_pipelines() and "shapes" in builtin_pipelines()
    metrics = default_metrics()
    assert metrics["brightness"] is Brightness and "adherence" in metrics
    body = (
        'name = "p"\npipeline = "builtin:tiny-sd-plugged"\nreference = "fp32"\nprompts = ["a red circle"]\n'
        "seeds = [0]\nsteps = 2\nwidth = 32\nheight = 32\n\n[metrics]\nclip_score = {}\nfid = {}\nbrightness = {}\n\n"
        '[configs.fp32]\ndtype = "float32"\n'
    )
    from harness.kinds import default_kinds

    suite = load_suite(write_suite(body, name="p"), default_kinds(), metrics)
    options = {request.name: request.options for request in suite.metrics}
    # The pipeline's evaluator is what CLIP-based metrics default to, and the feature space of set metrics.
    assert options["clip_score"]["model"] == "builtin:eye"
    assert options["fid"]["features"] == "clip" and options["fid"]["model"] == "builtin:eye"
    # An evaluator folder that is not there says where it was looked for.
    with pytest.raises(InputError, match=f"no open_clip model at {tmp_path / 'eye'}"):
        check_clip({"model": "builtin:eye"})


def test_an_unknown_builtin_clip_lists_the_plugins_evaluators():
    with pytest.raises(InputError) as caught:
        check_clip({"model": "builtin:shapez"})
    assert "Did you mean: builtin:shapes?" in str(caught.value) and "builtin:tiny" in str(caught.value)
