"""The sample identity: every suite key that changes images reaches the cache key and the references' hash.

The schema walk fails for a new top-level key or generation setting until it is given an alternative value here
and declared as changing images or not (``harness.plan.suite.TOP_KEYS``; every ``Generation`` field does).
"""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

from harness.generate.generator import ConfigGenerator
from harness.identity import IDENTITY_VERSION, PipelineIdentity, component_digests, digest
from harness.pipelines.family import Family, LoadedPipeline
from harness.plan.suite import TOP_KEYS, Suite, load_suite, suite_keys
from harness.references.store import reference_hash
from tests.helpers import bless_and_run, configs_by_name, read_results, suite_head

BASE = {
    "name": '"walk"',
    "pipeline": '"builtin:tiny-wan"',
    "reference": '"fp32"',
    "prompts": '["a red ball", "a blue square"]',
    "seeds": "[0]",
    "steps": "2",
    "width": "32",
    "height": "32",
    "frames": "9",
    "guidance": "3.0",
}
CONFIGS = '[configs.fp32]\ndtype = "float32"\n[configs.bf16]\ndtype = "bfloat16"\n'
# One other value per key; None: written by the test itself (a file beside the suite)
ALTERNATIVES = {
    "name": '"walked"',
    "description": '"described"',
    "pipeline": '"builtin:tiny-ltx"',
    "pipeline_config": '"./configs"',
    "family": '"ltx"',
    "reference": '"bf16"',
    "prompts": '["a red ball", "a green star"]',
    "prompts_file": None,
    "seeds": "[0, 1]",
    "references": '"elsewhere"',
    "reference_images": '"live"',
    "metrics": "{ psnr = {}, ssim = {} }",
    "thresholds": "{ psnr = { min = 1 } }",
    "configs": None,
    "regression": "{ psnr = { max_drop = 1.0 } }",
    "sequential": "{ enabled = true }",
    "steps": "3",
    "width": "40",
    "height": "40",
    "guidance": "4.0",
    "negative_prompt": '"blurry"',
    "batch_size": "2",
    "frames": "5",
}


def _suite_text(changed: str | None, value: str | None) -> str:
    keys = dict(BASE)
    configs = CONFIGS
    if changed == "configs":
        configs = CONFIGS.replace('dtype = "float32"', 'dtype = "float32"\ncomponent_dtypes = { vae = "bfloat16" }')
    elif changed == "prompts_file":
        keys.pop("prompts")
        keys["prompts_file"] = '"prompts.txt"'
    elif changed is not None:
        keys[changed] = value  # type: ignore[assignment]
    return "\n".join(f"{key} = {text}" for key, text in keys.items()) + "\n" + configs


class _Loader:
    """Stands in for the pipeline loader: the pipeline's identity from its source alone (no weights loaded), so
    every suite key is seen reaching the identity without building a pipeline per key."""

    def __init__(self, suite: Suite):
        self.suite = suite

    def __call__(self) -> LoadedPipeline:
        source = self.suite.pipeline.to_dict()
        identity = PipelineIdentity(source, digest(source), {"scheduler": digest(source)})
        return LoadedPipeline(None, Family(), self.suite.pipeline, identity.digest(), 0.0, identity)


def _keys(suite: Suite, registry) -> tuple[str, dict[str, frozenset[str]]]:
    """The references' hash, and each configuration's sample cache keys."""
    generator = ConfigGenerator(registry.kinds, None, suite, "cpu", _Loader(suite))
    by_config = {}
    for spec in suite.configs:
        identity = generator.identity(spec, generator.batch_size(spec, None))
        by_config[spec.name] = frozenset(identity.sample_key(p, s) for _, p, s in suite.samples())
    return reference_hash(suite, registry.kinds), by_config


def _load(tmp_path: Path, registry, changed: str | None = None) -> Suite:
    folder = tmp_path / (changed or "base")
    folder.mkdir(exist_ok=True)
    (folder / "prompts.txt").write_text("a red ball\na green star\n")
    path = folder / "walk.toml"
    path.write_text(_suite_text(changed, ALTERNATIVES.get(changed) if changed else None))
    return load_suite(path, registry)


def test_every_suite_key_is_declared_and_walked():
    """A key added to the schema must be given an alternative here and a pixels flag in TOP_KEYS."""
    missing = sorted(set(suite_keys()) - set(ALTERNATIVES))
    assert not missing, f"new suite keys {missing}: add an alternative value to ALTERNATIVES (and pixels= in TOP_KEYS)"


@pytest.mark.parametrize("key", sorted(ALTERNATIVES))
def test_a_key_that_changes_images_changes_the_identity_and_no_other_does(tmp_path, registry, key):
    if key == "pipeline_config":
        pytest.skip("only read for a single-file pipeline: test_pipeline_config_reaches_the_identity")
    base_hash, base_keys = _keys(_load(tmp_path, registry), registry)
    hash_, keys = _keys(_load(tmp_path, registry, key), registry)
    changes_pixels = TOP_KEYS[key].pixels if key in TOP_KEYS else True  # every Generation field does
    if not changes_pixels:
        assert hash_ == base_hash, f"{key} changes the references' hash but is declared not to change images"
        assert keys == base_keys, f"{key} changes cache keys but is declared not to change images"
        return
    assert hash_ != base_hash, f"{key} changes images but not the references' hash"
    if key == "reference":  # which configuration is blessed: its samples are the same
        return
    changed = [name for name in base_keys if keys.get(name) != base_keys[name]]
    assert "fp32" in changed, f"{key} changes images but not the sample cache keys"


def test_pipeline_config_reaches_the_identity(tmp_path, registry):
    suites = []
    for config in ("./a", "./b"):
        path = tmp_path / f"{config[-1]}.toml"
        path.write_text(
            f'name = "s"\npipeline = "./model.safetensors"\npipeline_config = "{config}"\nreference = "fp32"\n'
            'prompts = ["x"]\n[configs.fp32]\n'
        )
        suites.append(load_suite(path, registry))
    assert _keys(suites[0], registry) != _keys(suites[1], registry)


def test_the_pipelines_other_components_are_in_its_identity(registry):
    """The scheduler's configuration (which no weight fingerprint sees) changes the pipeline's fingerprint."""
    from harness.errors import Where
    from harness.generate.loading import load_pipeline
    from harness.plan.source import PipelineSource

    loaded = load_pipeline(PipelineSource("builtin", "tiny-sd"), Where("x"), registry)
    before = component_digests(loaded.pipe)
    assert set(before) >= {"scheduler", "tokenizer"}
    loaded.pipe.scheduler.register_to_config(beta_end=float(loaded.pipe.scheduler.config["beta_end"]) * 2)
    assert component_digests(loaded.pipe)["scheduler"] != before["scheduler"]
    assert loaded.identity.weights and loaded.fingerprint == loaded.identity.digest()


def test_a_kinds_packages_are_in_its_identity(tmp_path, registry, monkeypatch):
    """quanto's and torchao's versions key their configurations' samples, and results record them."""
    suite_path = tmp_path / "q.toml"
    suite_path.write_text(
        'name = "q"\npipeline = "builtin:tiny-sd"\nreference = "fp32"\nprompts = ["x"]\n[configs.fp32]\n'
        '[configs.q]\nkind = "quanto"\ncomponents = ["unet"]\n[configs.t]\nkind = "torchao"\ncomponents = ["unet"]\n'
    )
    suite = load_suite(suite_path, registry)
    generator = ConfigGenerator(registry.kinds, None, suite, "cpu", _Loader(suite))
    identities = {name: generator.identity(suite.config(name), 1) for name in ("fp32", "q", "t")}
    real = importlib.metadata.version

    def version(name: str) -> str:
        return {"optimum-quanto": "0.0.1", "torchao": "0.0.2"}.get(name) or real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    after = {name: generator.identity(suite.config(name), 1) for name in ("fp32", "q", "t")}
    assert after["fp32"].digest() == identities["fp32"].digest()  # the core kinds do not run on quanto
    assert after["q"].digest() != identities["q"].digest()
    assert after["q"].environment.packages["optimum-quanto"] == "0.0.1"
    assert after["t"].environment.packages["torchao"] == "0.0.2"
    assert after["t"].digest() != identities["t"].digest()


def test_a_cached_sample_of_another_quanto_version_is_not_reused(tmp_path, registry, monkeypatch):
    pytest.importorskip("optimum.quanto")
    from harness.cli import main

    suite = tmp_path / "suites" / "q.toml"
    suite.parent.mkdir()
    suite.write_text(
        textwrap.dedent(
            """
            name = "q"
            pipeline = "builtin:tiny-sd"
            reference = "fp32"
            prompts = ["a red circle"]
            steps = 1
            width = 32
            height = 32
            [configs.fp32]
            [configs.q8]
            kind = "quanto"
            components = ["unet"]
            """
        )
    )
    cache = str(tmp_path / "cache")
    code, first = bless_and_run(suite, tmp_path / "one", "--cache-dir", cache, bless_args=("--cache-dir", cache))
    assert code == 0 and configs_by_name(first)["q8"]["identity"]["environment"]["packages"]["optimum-quanto"]
    assert main(["run", str(suite), "--out", str(tmp_path / "two"), "--cache-dir", cache]) == 0
    assert configs_by_name(read_results(tmp_path / "two"))["q8"]["timing"]["cache_hits"] == 1  # same version: reused
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9" if name == "optimum-quanto" else real(name))
    assert main(["run", str(suite), "--out", str(tmp_path / "three"), "--cache-dir", cache]) == 0
    q8 = configs_by_name(read_results(tmp_path / "three"))["q8"]
    assert q8["timing"]["cache_hits"] == 0 and q8["identity"]["environment"]["packages"]["optimum-quanto"] == "9.9.9"
    assert read_results(tmp_path / "three")["environment"]["libraries"]["optimum-quanto"] == "9.9.9"


VIDEO = (
    suite_head("clips", pipeline="builtin:tiny-wan", prompts=["a red ball rolling"])
    + """frames = {frames}
[metrics]
frame_psnr = {{}}
[configs.fp32]
"""
)


def test_a_5_frame_run_against_9_frame_references_names_the_stale_key(write_suite, tmp_path, capsys):
    """The failure that keyed the sample cache by hand: frames was left out, and a 5-frame run got 9-frame clips."""
    from harness.cli import main

    cache = str(tmp_path / "cache")
    path = write_suite(VIDEO.format(frames=9), name="clips")
    code, nine = bless_and_run(path, tmp_path / "nine", "--cache-dir", cache, bless_args=("--cache-dir", cache))
    assert code == 0 and nine["configs"][0]["identity"]["generation"]["frames"] == 9
    path.write_text(VIDEO.format(frames=5))
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(tmp_path / "stale"), "--cache-dir", cache]) == 2
    error = capsys.readouterr().err
    assert "references are stale" in error and "frames 9 -> 5" in error, error
    assert main(["run", str(path), "--out", str(tmp_path / "live"), "--cache-dir", cache, "--references", "live"]) == 0
    from harness.samples import load_png

    live = read_results(tmp_path / "live")
    fp32 = configs_by_name(live)["fp32"]
    assert fp32["timing"]["cache_hits"] == 0  # the 9-frame clips in the same cache are not served
    assert load_png(tmp_path / "live" / fp32["samples"][0]["image"]).shape == (5 * 32, 32, 3)
    assert fp32["identity"]["version"] == IDENTITY_VERSION
