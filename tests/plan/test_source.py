"""Pipeline sources: ``pipeline = "..."`` parsed into built-ins, hub ids, local folders and single files, and
checked for files before anything loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError, Where
from harness.generate.loading import load_pipeline
from harness.plan.source import PipelineSource, check_available, parse_source
from harness.registry import build_registry

REGISTRY = build_registry()
WHERE = Where("suite.toml")


def test_parse_forms(tmp_path):
    assert parse_source("builtin:tiny-sd", WHERE, tmp_path, None, None, REGISTRY) == PipelineSource(
        "builtin", "tiny-sd"
    )
    assert parse_source("hub:org/model", WHERE, tmp_path, None, None, REGISTRY) == PipelineSource("hub", "org/model")
    assert parse_source("stabilityai/sd-turbo", WHERE, tmp_path, None, None, REGISTRY).kind == "hub"
    local = parse_source("./models/sd", WHERE, tmp_path, None, None, REGISTRY)
    assert local.kind == "local" and local.location == str((tmp_path / "models/sd").resolve())
    single = parse_source("ckpt/model.safetensors", WHERE, tmp_path, None, "./configs/sd", REGISTRY)
    assert (
        single.kind == "single_file"
        and single.family == "sd"
        and single.config == str((tmp_path / "configs/sd").resolve())
    )
    with pytest.raises(InputError, match="Unknown pipeline family 'kandinsky'"):
        parse_source("builtin:tiny-sd", WHERE, tmp_path, "kandinsky", None, REGISTRY)
    flux = parse_source("ckpt/flux1-dev.safetensors", WHERE, tmp_path, "flux", "./configs/flux", REGISTRY)
    assert flux.kind == "single_file" and flux.family == "flux"
    with pytest.raises(InputError, match="cannot load a whole 'pixart' pipeline from one checkpoint file"):
        parse_source("ckpt/pixart.safetensors", WHERE, tmp_path, "pixart", "./configs/pixart", REGISTRY)


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


def test_suite_with_local_folder_validates(tmp_path):
    from harness.cli import main

    built = load_pipeline(PipelineSource("builtin", "tiny-sd"), WHERE, REGISTRY)
    built.pipe.save_pretrained(tmp_path / "models" / "tiny")
    suite = tmp_path / "suites" / "local.toml"
    suite.parent.mkdir()
    suite.write_text('pipeline = "../models/tiny"\nreference = "a"\nprompts = ["x"]\n[configs.a]\n')
    assert main(["validate", str(suite)]) == 0
    assert Path(tmp_path / "models" / "tiny" / "model_index.json").is_file()
