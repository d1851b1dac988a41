"""Group offloading component by component, and the named hazards of diffusers' disk path, against direct runs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.kinds.streaming.offloading import apply_group_offload, disk_hazards, tied_parameters
from harness.registry import build_registry

CPU = {"onload_device": torch.device("cpu"), "offload_device": torch.device("cpu")}


def _images(pipe, **kwargs):
    out = pipe(
        "a red circle",
        num_inference_steps=2,
        width=32,
        height=32,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        **kwargs,
    )
    return np.asarray(out.frames if hasattr(out, "frames") else out.images)


def test_each_component_gets_its_own_folder(tmp_path):
    """A folder per component, and the images of a pipeline without named hazards are the plain ones."""
    plain = _images(build_registry().builtins["tiny-sd3"].build())
    pipe = build_registry().builtins["tiny-sd3"].build()
    folders = apply_group_offload(pipe, str(tmp_path), offload_type="block_level", num_blocks_per_group=1, **CPU)
    assert set(folders) == {"transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"}
    assert len(set(folders.values())) == len(folders) and all(f.startswith(str(tmp_path)) for f in folders.values())
    assert np.abs(_images(pipe) - plain).max() < 1e-5  # float noise of the offloaded order; 8-bit images equal
    assert all(os.listdir(folder) for folder in folders.values())  # every component wrote its own files


def test_one_shared_folder_collides(tmp_path):
    """LTX's VAE and transformer both have a leaf group named "" (the root's own tensors): in the one folder of
    diffusers' pipeline-level call the second loads the first's file and fails on its shapes; a folder each runs."""
    shared = build_registry().builtins["tiny-ltx"].build()
    shared.enable_group_offload(offload_type="leaf_level", offload_to_disk_path=str(tmp_path / "one"), **CPU)
    with pytest.raises(RuntimeError, match="size of tensor"):
        _images(shared, num_frames=9)
    own = build_registry().builtins["tiny-ltx"].build()
    apply_group_offload(own, str(tmp_path / "own"), offload_type="leaf_level", **CPU)
    assert _images(own, num_frames=9).shape[1] == 9


def test_tied_parameters_found():
    t5 = build_registry().builtins["tiny-flux"].build().text_encoder_2
    assert tied_parameters(t5) == [("shared.weight", "encoder.embed_tokens.weight")]
    assert tied_parameters(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))) == []


def test_named_hazards_are_the_causes(tmp_path):
    """Each named hazard is what makes disk offloading differ: untying T5's embedding (FLUX, leaf level) and
    keeping LTX's VAE in memory (block level) make the images equal the plain ones."""
    flux = build_registry().builtins["tiny-flux"].build()
    assert [h.split(":")[0] for h in disk_hazards(flux, leaf_level=True)] == ["text_encoder_2"]
    assert disk_hazards(flux, leaf_level=False) == []
    plain = _images(flux)
    apply_group_offload(flux, str(tmp_path / "a"), offload_type="leaf_level", **CPU)
    # the released tensor's memory is uninitialised: off by a few levels here, all NaN on another machine
    assert not np.allclose(_images(flux), plain, atol=1e-3)

    untied = build_registry().builtins["tiny-flux"].build()
    t5 = untied.text_encoder_2
    t5.encoder.embed_tokens.weight = torch.nn.Parameter(t5.shared.weight.detach().clone())
    apply_group_offload(untied, str(tmp_path / "b"), offload_type="leaf_level", **CPU)
    assert np.abs(_images(untied) - plain).max() < 1e-4

    ltx = build_registry().builtins["tiny-ltx"].build()
    hazards = disk_hazards(ltx, leaf_level=False)
    assert len(hazards) == 1 and hazards[0].startswith("vae: buffers on the root module (latents_mean, latents_std)")
    plain = _images(ltx, num_frames=9)
    vae = ltx.vae
    ltx.register_modules(vae=None)
    apply_group_offload(ltx, str(tmp_path / "c"), offload_type="block_level", num_blocks_per_group=1, **CPU)
    ltx.register_modules(vae=vae)
    assert np.array_equal(_images(ltx, num_frames=9), plain)


@pytest.mark.parametrize("mode", ["group_block", "group_leaf"])
def test_disk_run_reports_the_known_cause(write_suite, tmp_path, mode):
    """Through a run: the equivalence note of a disk configuration that differs names the cause."""
    body = f"""
name = "ltx_disk"
pipeline = "builtin:tiny-ltx"
reference = "fp32"
prompts = ["a red circle"]
seeds = [0]
steps = 2
width = 32
height = 32
frames = 9
[metrics]
psnr = {{}}
[configs.fp32]
[configs.disk]
kind = "streaming"
mode = "{mode}"
offload = "disk"
"""
    path = write_suite(body, name="ltx_disk")
    assert main(["bless", str(path), "--device", "cpu"]) == 0
    out = tmp_path / "run"
    main(["run", str(path), "--out", str(out), "--device", "cpu", "--no-cache"])
    disk = {c["name"]: c for c in json.loads((out / "results.json").read_text())["configs"]}["disk"]
    assert disk["status"] == "ok", disk.get("message")  # leaf level crashed on a shape error in one shared folder
    found = disk["notes"]["equivalence"]
    assert not found["identical"] and any(cause.startswith("vae: buffers") for cause in found["known_causes"])
    assert "known causes in diffusers' disk offloading" in (out / "summary.md").read_text()
