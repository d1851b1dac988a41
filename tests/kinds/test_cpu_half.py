"""Half-precision conv/linear layers accumulating in float32 on CPUs without native half kernels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harness.kinds.cpu_half import _conv_forward, _linear_forward, accumulate_in_float32


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_layers_compute_what_a_native_kernel_computes(dtype):
    torch.manual_seed(0)
    conv, linear = torch.nn.Conv2d(8, 16, 3, padding=1).to(dtype), torch.nn.Linear(24, 12).to(dtype)
    image, vector = torch.randn(2, 8, 10, 10).to(dtype), torch.randn(5, 24).to(dtype)
    with torch.no_grad():
        # the exact reference: float64 arithmetic on the same half-precision values, rounded once
        conv_exact = torch.nn.functional.conv2d(image.double(), conv.weight.double(), conv.bias.double(), padding=1)
        linear_exact = torch.nn.functional.linear(vector.double(), linear.weight.double(), linear.bias.double())
        conv_out, linear_out = _conv_forward(conv, image), _linear_forward(linear, vector)
    assert conv_out.dtype == dtype and linear_out.dtype == dtype
    # float32 accumulation then one rounding: within one half-precision rounding step of the exact value
    step = torch.finfo(dtype).eps
    for got, exact in ((conv_out, conv_exact), (linear_out, linear_exact)):
        assert torch.all((got.double() - exact).abs() <= step * exact.abs() + 1e-6)


def test_only_half_precision_layers_on_cpu_are_routed(monkeypatch):
    from harness.kinds.casting import CastLog, Precision, apply_precision
    from harness.kinds.pipeline import copy_pipeline
    from harness.registry import build_registry

    pipeline = build_registry().builtins["tiny-sd"].build()

    monkeypatch.setenv("HARNESS_CPU_HALF", "float32-accumulate")
    pipe = copy_pipeline(pipeline)
    apply_precision(pipe, Precision("float16", (("vae", "float32"),)), CastLog())
    notes = accumulate_in_float32(pipe, "cpu")
    routed = [m for m in pipe.unet.modules() if "forward" in vars(m)]
    assert routed and all(m.weight.dtype == torch.float16 for m in routed)
    assert not [m for m in pipe.vae.modules() if "forward" in vars(m)]  # float32 component untouched
    assert "float16 conv/linear layers accumulate in float32" in notes["cpu_half"]
    assert accumulate_in_float32(copy_pipeline(pipeline), "cuda") == {}
    monkeypatch.setenv("HARNESS_CPU_HALF", "native")
    assert accumulate_in_float32(pipe, "cpu") == {}


def test_images_match_native_half_precision_closely(write_suite, tmp_path, monkeypatch):
    import json

    from harness.cli import main
    from harness.samples import load_png

    path = write_suite(
        """
        name = "half"
        pipeline = "builtin:tiny-sd"
        reference = "fp32"
        prompts = ["a red circle", "a cat"]
        seeds = [0, 1]
        steps = 3
        width = 32
        height = 32
        [metrics]
        psnr = {}
        [configs.fp32]
        [configs.bf16]
        dtype = "bfloat16"
        """,
        name="half",
    )
    assert main(["bless", str(path), "--device", "cpu"]) == 0
    runs = {}
    for chosen in ("native", "float32-accumulate"):
        monkeypatch.setenv("HARNESS_CPU_HALF", chosen)
        out = tmp_path / chosen
        assert main(["run", str(path), "--out", str(out), "--device", "cpu", "--no-cache"]) == 0
        runs[chosen] = (out, json.loads((out / "results.json").read_text()))
    native, emulated = runs["native"], runs["float32-accumulate"]
    assert "cpu_half" in emulated[1]["configs"][1]["notes"] and "cpu_half" not in native[1]["configs"][1]["notes"]
    for a, b in zip(native[1]["configs"][1]["samples"], emulated[1]["configs"][1]["samples"]):
        x, y = load_png(native[0] / a["image"]).astype(int), load_png(emulated[0] / b["image"]).astype(int)
        assert np.abs(x - y).mean() < 1.0  # accumulation order only: well under one 8-bit level on average


@pytest.mark.parametrize("offload", ["cpu", "disk"])
def test_emulated_half_precision_keeps_group_offloading_hooks(write_suite, tmp_path, monkeypatch, offload):
    """The routed layers must run inside the offloading hooks: from disk, a bypassed hook computes with no weights."""
    import json

    from harness.cli import main

    path = write_suite(
        f"""
        name = "offload"
        pipeline = "builtin:tiny-sd"
        reference = "fp32"
        prompts = ["a red circle", "a cat"]
        seeds = [0]
        steps = 3
        width = 32
        height = 32
        [metrics]
        psnr = {{}}
        [thresholds]
        psnr = {{ min = 40 }}
        [configs.fp32]
        [configs.fp16_leaf]
        kind = "streaming"
        mode = "group_leaf"
        offload = "{offload}"
        dtype = "float16"
        """,
        name="offload",
    )
    assert main(["bless", str(path), "--device", "cpu"]) == 0
    monkeypatch.setenv("HARNESS_CPU_HALF", "float32-accumulate")
    out = tmp_path / "run"
    code = main(["run", str(path), "--out", str(out), "--device", "cpu", "--no-cache"])
    results = json.loads((out / "results.json").read_text())
    streamed = results["configs"][1]
    assert "cpu_half" in streamed["notes"]
    assert all(s["nonfinite_fraction"] == 0 and not s["blank"] for s in streamed["samples"])
    assert code == 0, [c for c in results["checks"] if c["status"] != "pass"]


def test_the_decision_is_measured_once_per_machine_and_kept(tmp_path, monkeypatch):
    """auto times each (dtype, operation) both ways once, keeps the decision in the cache folder, and every later run
    (a new process included: the per-process memo is cleared here) reads it instead of timing again."""
    from harness.kinds import cpu_half

    monkeypatch.delenv("HARNESS_CPU_HALF", raising=False)
    monkeypatch.setattr(cpu_half, "_DECIDED", {})
    calls = []

    def measured():
        calls.append(1)
        slow, fast = {"native_s": 0.05, "emulated_s": 0.001}, {"native_s": 0.001, "emulated_s": 0.0011}
        return {"float16": {"conv": slow, "linear": fast}, "bfloat16": {"conv": fast, "linear": fast}}

    monkeypatch.setattr(cpu_half, "measure", measured)
    first = cpu_half.paths(tmp_path)
    assert first["float16"] == {"conv": "float32-accumulate", "linear": "native"}
    assert first["bfloat16"] == {"conv": "native", "linear": "native"}
    kept = json.loads((tmp_path / cpu_half.DECISIONS).read_text())[cpu_half.machine_key()]
    assert kept["paths"] == first and kept["timings"]["float16"]["conv"]["native_s"] == 0.05
    monkeypatch.setattr(cpu_half, "_DECIDED", {})  # as a new process would start
    assert cpu_half.paths(tmp_path) == first and len(calls) == 1
    monkeypatch.setenv("HARNESS_CPU_HALF", "native")
    assert cpu_half.paths(tmp_path)["float16"]["conv"] == "native"


def test_a_cache_folder_keeps_one_decision_whichever_process_made_it(tmp_path, monkeypatch):
    """A process that decided for one folder writes that decision into a new folder it runs with, so a second process
    (which reads the folder) takes the same path; and a folder's own decision wins over the process's. Without this a
    killed run and its resumption in another process disagreed on a loaded machine, and nothing was served from the
    cache (seen on CI-like load: tests/generate/test_cache.py)."""
    from harness.kinds import cpu_half

    monkeypatch.delenv("HARNESS_CPU_HALF", raising=False)
    monkeypatch.setattr(cpu_half, "_DECIDED", {})
    emulate = {"native_s": 0.05, "emulated_s": 0.001}
    native = {"native_s": 0.001, "emulated_s": 0.001}
    answers = iter([emulate, native])

    def measured():
        timing = next(answers)  # the first call measures "emulate", a second would measure "native"
        return {dtype: dict.fromkeys(cpu_half.OPERATIONS, timing) for dtype in cpu_half.DTYPES}

    monkeypatch.setattr(cpu_half, "measure", measured)
    one, two = tmp_path / "one", tmp_path / "two"
    decided = cpu_half.paths(one)
    assert decided["float16"]["conv"] == "float32-accumulate"
    assert cpu_half.paths(two) == decided  # no second measurement: the process's decision, written into two/
    monkeypatch.setattr(cpu_half, "_DECIDED", {})  # another process, with the same folder
    assert cpu_half.paths(two) == decided
    key = cpu_half.machine_key()
    kept = json.loads((two / cpu_half.DECISIONS).read_text())
    kept[key]["paths"]["float16"]["conv"] = "native"  # the folder says otherwise: it wins over the memo
    (two / cpu_half.DECISIONS).write_text(json.dumps(kept))
    assert cpu_half.paths(two)["float16"]["conv"] == "native"
    assert cpu_half.paths(one)["float16"]["conv"] == "float32-accumulate"


def test_the_machines_path_is_in_results_and_the_sample_identity(write_suite, tmp_path, monkeypatch):
    from harness.cli import main
    from harness.kinds import cpu_half
    from tests.helpers import read_results

    monkeypatch.delenv("HARNESS_CPU_HALF", raising=False)
    path = write_suite()
    cache = tmp_path / "cache"
    assert main(["bless", str(path), "--cache-dir", str(cache), "--device", "cpu"]) == 0
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--cache-dir", str(cache), "--device", "cpu"]) == 0
    results = read_results(tmp_path / "r")
    decided = cpu_half.paths(cache)
    assert results["environment"]["cpu_half"] == decided
    assert all(config["identity"]["environment"]["numerics"]["cpu_half"] == decided for config in results["configs"])
    assert "CPU half precision (kept per machine)" in (tmp_path / "r" / "summary.md").read_text()
