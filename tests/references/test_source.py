"""Live references: the reference configuration generated in the run is what every configuration is judged against."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.cli import main
from harness.errors import InputError
from harness.plan.suite import load_suite
from harness.references.store import bless, read_manifest
from harness.registry import build_registry
from harness.report.model import references_line
from harness.samples import load_png
from tests.helpers import configs_by_name, read_results, suite_head

SUITE = (
    suite_head("live", prompts=["a red circle", "a blue square on the left"], seeds=[0, 1])
    + """[metrics]
psnr = {}
[thresholds]
psnr = { min = 25 }
[configs.fp32]
[configs.bf16]
dtype = "bfloat16"
"""
)

NAN_REFERENCE = """
import torch


def nan_vae(pipe):
    with torch.no_grad():
        pipe.vae.decoder.conv_out.bias.fill_(float("nan"))
    return pipe
"""


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def per_sample_psnr(results: dict, name: str) -> dict[str, float]:
    return {s["key"]: s["metrics"]["psnr"] for s in configs_by_name(results)[name]["samples"]}


def test_live_references_need_no_blessing_and_judge_against_this_runs_images(write_suite, tmp_path):
    path = write_suite(SUITE, name="live")
    assert main(["run", str(path), "--out", str(tmp_path / "blessed")]) == 2  # nothing blessed: an input error
    assert main(["run", str(path), "--out", str(tmp_path / "live"), "--references", "live"]) == 0
    results = read_results(tmp_path / "live")
    assert results["references"]["source"] == "live" and results["references"]["blessed"] is None
    assert any("blessed set cannot be compared" in w for w in results["warnings"])
    # the reference configuration against itself: identical; bf16 against this run's fp32 images
    assert set(per_sample_psnr(results, "fp32").values()) == {100.0}  # identical (PSNR is capped at 100 dB)
    for key, value in per_sample_psnr(results, "bf16").items():
        bf16 = load_png(tmp_path / "live" / "images" / "bf16" / f"{key}.png")
        live = load_png(tmp_path / "live" / "images" / "fp32" / f"{key}.png")
        assert value == pytest.approx(psnr(bf16, live), abs=1e-3)
        np.testing.assert_array_equal(load_png(tmp_path / "live" / "images" / "reference" / f"{key}.png"), live)


def test_blessed_images_from_another_machine_are_drift_in_live_mode_and_margin_in_blessed_mode(write_suite, tmp_path):
    path = write_suite(SUITE, name="live")
    assert main(["bless", str(path)]) == 0
    suite = load_suite(path, build_registry())
    manifest = read_manifest(suite.references_dir)
    # what another machine would have blessed: the same images, slightly different
    rng = np.random.default_rng(0)
    elsewhere = {}
    for image in manifest.images:
        pixels = load_png(suite.references_dir / image.file).astype(np.int16)
        elsewhere[image.key] = np.clip(pixels + rng.integers(-3, 4, pixels.shape), 0, 255).astype(np.uint8)
    bless(
        suite,
        build_registry().kinds,
        elsewhere,
        manifest.pipeline_fingerprint,
        {"device_class": "gpu: elsewhere"},
        manifest.created,
    )

    assert main(["run", str(path), "--out", str(tmp_path / "live"), "--references", "live"]) == 0
    live = read_results(tmp_path / "live")
    drift = live["references"]["blessed"]
    expected = {
        key: psnr(load_png(tmp_path / "live" / "images" / "fp32" / f"{key}.png"), image)
        for key, image in elsewhere.items()
    }
    assert drift["n"] == 4 and drift["identical"] == 0 and drift["device_class"] == "gpu: elsewhere"
    assert drift["psnr_mean"] == pytest.approx(np.mean(list(expected.values())), abs=1e-6)
    assert drift["psnr_min"] == pytest.approx(min(expected.values()), abs=1e-6)
    assert not any("blessed on gpu: elsewhere" in w for w in live["warnings"])  # the measured drift says it
    assert "differs in 4/4 images" in (tmp_path / "live" / "summary.md").read_text()

    assert main(["run", str(path), "--out", str(tmp_path / "blessed")]) == 0
    blessed = read_results(tmp_path / "blessed")
    assert blessed["references"]["source"] == "blessed"
    assert any("blessed on gpu: elsewhere" in w for w in blessed["warnings"])
    fp32 = per_sample_psnr(blessed, "fp32")
    assert fp32 == pytest.approx(expected, abs=1e-3)  # the reference itself is judged against the other machine
    assert per_sample_psnr(blessed, "bf16") != per_sample_psnr(live, "bf16")


def test_suite_key_selects_live_and_a_subset_runs_the_reference_unjudged(write_suite, tmp_path):
    path = write_suite(SUITE.replace('reference = "fp32"', 'reference = "fp32"\nreference_images = "live"'))
    assert main(["run", str(path), "--out", str(tmp_path / "subset"), "--config", "bf16"]) == 0
    results = read_results(tmp_path / "subset")
    assert [c["name"] for c in results["configs"]] == ["fp32", "bf16"]
    assert {c["config"] for c in results["checks"] if c["metric"] == "psnr"} == {"bf16"}
    assert any("also ran 'fp32', not judged: live references" in w for w in results["warnings"])
    # the flag overrides the suite: blessed references are then required
    assert main(["run", str(path), "--out", str(tmp_path / "b"), "--references", "blessed"]) == 2


def test_a_live_reference_with_nan_images_fails_the_run_and_keeps_its_results(write_suite, tmp_path, capsys):
    body = SUITE.replace("[configs.fp32]", '[configs.fp32]\ntransform = "broken:nan_vae"')
    path = write_suite(body, name="live", files={"broken.py": NAN_REFERENCE})
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--references", "live"]) == 1
    assert "live reference configuration 'fp32' gave NaN/Inf or blank images" in capsys.readouterr().out
    results = read_results(tmp_path / "run")
    assert results["state"] == "failed" and [c["name"] for c in results["configs"]] == ["fp32", "bf16"]


def test_reference_images_key_is_checked(write_suite):
    path = write_suite(SUITE.replace('reference = "fp32"', 'reference = "fp32"\nreference_images = "frozen"'))
    with pytest.raises(InputError, match="reference_images.*expected 'blessed' or 'live'"):
        load_suite(path, build_registry())


def test_describe_names_the_source_and_the_drift():
    assert references_line({}) == ""
    blessed = {"source": "blessed", "config": "fp32", "device_class": "cpu: X", "created": "2026-01-01"}
    assert references_line(blessed) == "references: blessed ('fp32' on cpu: X, 2026-01-01)"
    drift = {"n": 8, "identical": 6, "psnr_mean": 89.04, "psnr_min": 88.0, "worst": "p1-s0", "device_class": "cpu: Y"}
    text = references_line({"source": "live", "config": "fp32", "blessed": drift})
    assert text == (
        "references: live (generated by 'fp32' in this run); the blessed set (cpu: Y) differs in 2/8 images: "
        "PSNR mean 89.0 dB, worst 88.0 dB (p1-s0)"
    )
    same = {**drift, "identical": 8, "psnr_mean": None, "psnr_min": None}
    assert text.split(";")[0] in references_line({"source": "live", "config": "fp32", "blessed": same})
    assert "is identical" in references_line({"source": "live", "config": "fp32", "blessed": same})
