"""harness.api: suites built in code, pipelines handed over as objects, judged by the command line's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import api
from harness.controls import denoiser_noise_0_5
from harness.errors import InputError
from harness.results import FAIL, PASS, XFAIL
from tests.helpers import SHAPES_PROMPTS

ROOT = Path(__file__).resolve().parents[1]

PROMPTS = list(SHAPES_PROMPTS)
SHAPES = dict(seeds=[0], steps=8, width=64, height=64, guidance=5.0)
GATES = dict(metrics={"psnr": {}}, thresholds={"psnr": [{"min": 38}, {"stat": "worst", "min": 22}]})


def damaged() -> object:
    """A function making a pipeline: the shapes world with half-std noise on its UNet (broken images)."""
    return denoiser_noise_0_5(api.builtin("shapes"))


def suite(tmp_path, configs, pipeline="builtin:shapes", **keys):
    return api.Suite(
        name="mine", pipeline=pipeline, prompts=PROMPTS, configs=configs, folder=tmp_path, **{**SHAPES, **GATES, **keys}
    )


def run(tmp_path, built, **options):
    return api.run(
        built,
        references="live",
        cache_dir=tmp_path / "cache",
        reports_root=tmp_path / "reports",
        device="cpu",
        **options,
    )


def test_objects_are_judged_as_they_are(tmp_path):
    same = api.builtin("shapes")
    outcome = run(
        tmp_path,
        suite(
            tmp_path,
            {
                "fp32": {},
                "same": api.pipeline(same),
                "damaged": api.pipeline(damaged),  # a function: called once, when its configuration runs
                "control": api.pipeline(damaged, expect="fail"),
            },
        ),
    )
    assert not outcome.passed and outcome.exit_code == 1 and outcome.verdict == "fail"
    assert {(c.config, c.check) for c in outcome.failures()} == {
        ("damaged", "psnr >= 38"),
        ("damaged", "worst psnr >= 22"),
    }
    failed = outcome.check("damaged", "psnr >= 38")
    assert failed is not None and failed.status == FAIL and failed.value is not None and failed.value < 30
    assert failed.bound == 38
    assert outcome.check("same", "psnr >= 38").status == PASS  # type: ignore[union-attr]
    assert outcome.summary("same", "psnr").mean > 60  # type: ignore[union-attr]  # the same weights, the same images
    assert outcome.check("control", "psnr >= 38").status == XFAIL  # type: ignore[union-attr]
    assert outcome.configs["damaged"].kind == "object"
    assert outcome.report.is_file() and outcome.results_path.is_file()
    assert json.loads(outcome.results_path.read_text())["verdict"] == "fail"
    assert same.unet.dtype.is_floating_point and next(same.unet.parameters()).device.type == "cpu"


def test_the_suite_pipeline_may_be_an_object_and_the_cache_follows_its_weights(tmp_path):
    import torch

    pipe = api.builtin("shapes")

    def once():
        return run(tmp_path, suite(tmp_path, {"fp32": {}, "fp16": {"dtype": "float16"}}, pipeline=pipe))

    first = once()
    assert first.passed, first.failures()
    assert first.result.counters["sample_cache_misses"] == 4
    assert pipe.unet.dtype == torch.float32  # each configuration gets its own copy: the object is not cast
    again = once()
    assert again.result.counters["sample_cache_hits"] == 4 and again.result.counters["sample_cache_misses"] == 0
    with torch.no_grad():
        next(pipe.unet.parameters()).mul_(1.01)  # the same object, other weights: nothing may be served stale
    changed = once()
    assert changed.result.counters["sample_cache_hits"] == 0 and changed.result.counters["sample_cache_misses"] == 4


def test_a_suite_file_runs_from_python_with_its_configurations_chosen(tmp_path):
    loaded = api.load("suites/shapes.toml")
    loaded.table.update(prompts=PROMPTS[:1], seeds=[0])
    del loaded.table["prompts_file"]
    outcome = run(tmp_path, loaded, configs=["bf16", "flawed"])
    assert outcome.passed, outcome.failures()
    assert set(outcome.configs) == {"fp32", "bf16", "flawed"}  # the reference runs to support them
    assert outcome.check("flawed", "is flagged (negative control)").status == PASS  # type: ignore[union-attr]


def test_bad_input_is_the_command_lines_message(tmp_path):
    with pytest.raises(InputError, match=r"mine \(harness.api.Suite\): thresholds.psnr.min: expected a number"):
        api.run(suite(tmp_path, {"fp32": {}}, thresholds={"psnr": {"min": "high"}}), cache_dir=tmp_path)
    with pytest.raises(InputError, match=r"mine \(harness.api.Suite\): .*stepz"):
        api.run(suite(tmp_path, {"fp32": {}}, stepz=4), cache_dir=tmp_path)
    with pytest.raises(InputError, match="Unknown built-in pipeline 'shape'. Did you mean: shapes"):
        api.builtin("shape")


def doc_block(language: str, after: str = "") -> str:
    text = (ROOT / "docs" / "gpu.md").read_text()
    start = text.index(after) if after else 0
    return text[text.index(f"```{language}\n", start) + len(language) + 4 :].split("```", 1)[0]


def test_the_notebook_example_in_docs_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where its reports and cache go, as in a notebook's folder
    printed: list[str] = []
    monkeypatch.setattr("builtins.print", lambda *args, **_: printed.append(" ".join(map(str, args))))
    exec(compile(doc_block("python", "<!-- tested"), "docs/gpu.md", "exec"), {})
    assert printed[0].startswith("pass ") and printed[0].endswith("report.html")
    assert any(line.startswith("mine   worst psnr >= 25") and " pass " in line for line in printed)
    assert (tmp_path / "reports" / "notebook").is_dir() and (tmp_path / ".harness_cache").is_dir()


def write_gguf(path: Path) -> None:
    """A small readable GGUF file standing for the community's download."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "flux")
    writer.add_tensor("img_in.weight", np.zeros((4, 32), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_the_gpu_suite_in_docs_is_valid_but_for_its_downloads(tmp_path):
    """The docs' FLUX.1-dev suite, with the shapes world's FLUX for the hub model and stand-ins for the downloads:
    every key and option it writes is one the harness reads."""
    import tomllib

    from harness.plan.suite import check_suite, suite_from_table
    from harness.registry import build_registry

    table = tomllib.loads(doc_block("toml"))
    assert table["pipeline"] == "hub:black-forest-labs/FLUX.1-dev"
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "mine.txt").write_text("a red circle\n")
    (tmp_path / "models").mkdir()
    write_gguf(tmp_path / "models" / "flux1-dev-Q4_K_S.gguf")
    (tmp_path / "ViT-L-14.bin").write_bytes(b"")
    table.update(pipeline="builtin:shapes-flux")
    table["metrics"]["clip_score"]["pretrained"] = str(tmp_path / "ViT-L-14.bin")
    del table["metrics"]["lpips"]  # its backbone is a download the docs name (torchvision's AlexNet)
    registry = build_registry()
    suite = suite_from_table(table, tmp_path / "flux_dev.toml", registry)
    check_suite(suite, registry)
    assert [c.name for c in suite.configs] == ["bf16", "fp8", "q4_k_s", "q4_k_s_harness"]
    assert [c.kind for c in suite.configs] == ["precision", "layerwise_casting", "gguf", "gguf"]
