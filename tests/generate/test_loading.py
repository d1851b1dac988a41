"""Loading a suite's pipeline: built-ins, local folders and single files go through one loading path, and the
fingerprint follows what was loaded."""

from __future__ import annotations

import json

import pytest

from harness.errors import InputError, Where
from harness.generate.loading import load_pipeline
from harness.plan.source import PipelineSource
from harness.registry import build_registry

REGISTRY = build_registry()
WHERE = Where("suite.toml")


def test_builtin_is_deterministic():
    first = load_pipeline(PipelineSource("builtin", "tiny-sd"), WHERE, REGISTRY)
    second = load_pipeline(PipelineSource("builtin", "tiny-sd"), WHERE, REGISTRY)
    assert first.fingerprint == second.fingerprint and len(first.fingerprint) == 64
    assert first.family.name == "sd"
    lcm = load_pipeline(PipelineSource("builtin", "tiny-sd-lcm"), WHERE, REGISTRY)
    assert "time_embedding.cond_proj.weight" in lcm.pipe.unet.state_dict()
    assert lcm.fingerprint != first.fingerprint


def test_local_folder_loads_through_the_real_model_path(tmp_path):
    """A save_pretrained folder loads with DiffusionPipeline.from_pretrained, as a downloaded model would."""
    built = load_pipeline(PipelineSource("builtin", "tiny-sd"), WHERE, REGISTRY)
    folder = tmp_path / "tiny-sd"
    built.pipe.save_pretrained(folder)
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    loaded = load_pipeline(PipelineSource("local", str(folder)), WHERE, REGISTRY)
    assert loaded.family.name == "sd"
    import torch

    for name in ("unet", "vae", "text_encoder"):
        original, reloaded = built.pipe.components[name].state_dict(), loaded.pipe.components[name].state_dict()
        assert original.keys() == reloaded.keys()
        assert all(torch.equal(original[k], reloaded[k]) for k in original)
    # a missing weight file is a clear input error naming the folder
    for weights in (folder / "unet").glob("diffusion_pytorch_model.*"):
        weights.unlink()
    with pytest.raises(InputError, match=r"cannot load .*tiny-sd"):
        load_pipeline(PipelineSource("local", str(folder)), WHERE, REGISTRY)


def test_local_folder_fingerprint_follows_files(tmp_path):
    from harness.generate.loading import fingerprint_pipeline

    folder = tmp_path / "m"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "w.safetensors").write_bytes(b"1234")
    source = PipelineSource("local", str(folder))
    before = fingerprint_pipeline(None, source)
    (folder / "unet" / "w.safetensors").write_bytes(b"12345")
    assert fingerprint_pipeline(None, source) != before


def test_single_file_pipeline_source_end_to_end(tmp_path):
    """export-single-file, then a suite whose pipeline is that checkpoint with a config folder."""
    import json as _json

    from harness.cli import main

    suites = tmp_path / "suites"
    suites.mkdir()
    assert (
        main(
            [
                "export-single-file",
                "builtin:tiny-sd",
                str(suites / "tiny.safetensors"),
                "--config-out",
                str(suites / "tiny-config"),
            ]
        )
        == 0
    )
    suite = suites / "sf.toml"
    suite.write_text(
        'pipeline = "./tiny.safetensors"\npipeline_config = "./tiny-config"\nreference = "a"\nprompts = ["x"]\n'
        "steps = 2\nwidth = 32\nheight = 32\n[thresholds]\npsnr = { min = 99 }\n[configs.a]\n"
    )
    assert main(["validate", str(suite)]) == 0
    assert main(["bless", str(suite)]) == 0
    assert main(["run", str(suite), "--out", str(tmp_path / "run")]) == 0
    results = _json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["suite"]["pipeline"]["kind"] == "single_file"
    # the single-file pipeline produces the built-in's images exactly
    builtin = suites / "builtin.toml"
    builtin.write_text(
        suite.read_text().replace(
            'pipeline = "./tiny.safetensors"\npipeline_config = "./tiny-config"', 'pipeline = "builtin:tiny-sd"'
        )
    )
    assert main(["bless", str(builtin)]) == 0
    for key in ("p000-s0",):
        assert (suites.parent / "reference_images" / "sf" / f"{key}.png").read_bytes() == (
            suites.parent / "reference_images" / "builtin" / f"{key}.png"
        ).read_bytes()
    (suites / "missing.toml").write_text(suite.read_text().replace("./tiny-config", "./nowhere"))
    assert main(["validate", str(suites / "missing.toml")]) == 2
