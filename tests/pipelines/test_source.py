"""Pipeline sources: built-ins, local folders, single files and hub ids go through one loading path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError, Where
from harness.pipelines.source import PipelineSource, check_available, load_pipeline, parse_source

WHERE = Where("suite.toml")


def test_parse_forms(tmp_path):
    assert parse_source("builtin:tiny-sd", WHERE, tmp_path, None, None) == PipelineSource("builtin", "tiny-sd")
    assert parse_source("hub:org/model", WHERE, tmp_path, None, None) == PipelineSource("hub", "org/model")
    assert parse_source("stabilityai/sd-turbo", WHERE, tmp_path, None, None).kind == "hub"
    local = parse_source("./models/sd", WHERE, tmp_path, None, None)
    assert local.kind == "local" and local.location == str((tmp_path / "models/sd").resolve())
    single = parse_source("ckpt/model.safetensors", WHERE, tmp_path, None, "./configs/sd")
    assert (
        single.kind == "single_file"
        and single.family == "sd"
        and single.config == str((tmp_path / "configs/sd").resolve())
    )
    with pytest.raises(InputError, match="Unknown pipeline family 'kandinsky'"):
        parse_source("builtin:tiny-sd", WHERE, tmp_path, "kandinsky", None)
    flux = parse_source("ckpt/flux1-dev.safetensors", WHERE, tmp_path, "flux", "./configs/flux")
    assert flux.kind == "single_file" and flux.family == "flux"
    with pytest.raises(InputError, match="cannot load a whole 'pixart' pipeline from one checkpoint file"):
        parse_source("ckpt/pixart.safetensors", WHERE, tmp_path, "pixart", "./configs/pixart")


def test_missing_files_say_what_to_place_where(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="place a folder with model_index.json"):
        check_available(PipelineSource("local", str(tmp_path / "nothing")), WHERE)
    missing_file = PipelineSource("single_file", str(tmp_path / "m.safetensors"), "sd", str(tmp_path))
    with pytest.raises(InputError, match=r"place the single-file checkpoint at .*m\.safetensors"):
        check_available(missing_file, WHERE)
    (tmp_path / "m.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match="pipeline_config"):
        check_available(PipelineSource("single_file", str(tmp_path / "m.safetensors"), "sd", None), WHERE)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(InputError, match="not in the local hub cache.*`hf download nobody/no-such-model`"):
        check_available(PipelineSource("hub", "nobody/no-such-model"), WHERE)


def test_hub_model_not_cached_and_hub_unreachable_is_an_input_error(monkeypatch):
    import huggingface_hub
    import huggingface_hub.constants

    def unreachable(self, repo_id, timeout=None):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    with pytest.raises(InputError, match=r"could not be asked for it \(ConnectionError: Name or service.*hf download"):
        check_available(PipelineSource("hub", "nobody/no-such-model"), WHERE)


def test_builtin_is_deterministic():
    first = load_pipeline(PipelineSource("builtin", "tiny-sd"), WHERE)
    second = load_pipeline(PipelineSource("builtin", "tiny-sd"), WHERE)
    assert first.fingerprint == second.fingerprint and len(first.fingerprint) == 64
    assert first.family.name == "sd"
    lcm = load_pipeline(PipelineSource("builtin", "tiny-sd-lcm"), WHERE)
    assert "time_embedding.cond_proj.weight" in lcm.pipe.unet.state_dict()
    assert lcm.fingerprint != first.fingerprint


def test_local_folder_loads_through_the_real_model_path(tmp_path):
    """A save_pretrained folder loads with DiffusionPipeline.from_pretrained, as a downloaded model would."""
    built = load_pipeline(PipelineSource("builtin", "tiny-sd"), WHERE)
    folder = tmp_path / "tiny-sd"
    built.pipe.save_pretrained(folder)
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    loaded = load_pipeline(PipelineSource("local", str(folder)), WHERE)
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
        load_pipeline(PipelineSource("local", str(folder)), WHERE)


def test_local_folder_fingerprint_follows_files(tmp_path):
    from harness.pipelines.source import fingerprint_pipeline

    folder = tmp_path / "m"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "w.safetensors").write_bytes(b"1234")
    source = PipelineSource("local", str(folder))
    before = fingerprint_pipeline(None, source)
    (folder / "unet" / "w.safetensors").write_bytes(b"12345")
    assert fingerprint_pipeline(None, source) != before


def test_suite_with_local_folder_validates(tmp_path):
    from harness.cli import main

    built = load_pipeline(PipelineSource("builtin", "tiny-sd"), WHERE)
    built.pipe.save_pretrained(tmp_path / "models" / "tiny")
    suite = tmp_path / "suites" / "local.toml"
    suite.parent.mkdir()
    suite.write_text('pipeline = "../models/tiny"\nreference = "a"\nprompts = ["x"]\n[configs.a]\n')
    assert main(["validate", str(suite)]) == 0
    assert Path(tmp_path / "models" / "tiny" / "model_index.json").is_file()


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
