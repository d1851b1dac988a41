"""The int8 kind end to end on the tiny pipeline: calibration, reuse, bad files, real vs simulated int8."""

from __future__ import annotations

import json

import numpy as np
import torch

from harness.cli import main
from harness.kinds.int8.ranges import read_ranges
from tests.helpers import KIND_SUITE_HEAD as HEAD
from tests.helpers import bless_and_run

CALIBRATION = """
calibration_prompts = ["a green triangle", "a purple star at the top"]
calibration_seeds = [100]
"""
# The quality comparison needs more samples, the suite's usual size and steps.
FULL_HEAD = (
    HEAD.replace(
        'prompts = ["a red circle", "a blue square on the left"]',
        'prompts = ["a red circle", "a blue square on the left", "a photo of a cat", "a lighthouse at dusk"]',
    )
    .replace("seeds = [0]", "seeds = [0, 1]")
    .replace("steps = 2", "steps = 4")
    .replace("width = 32", "width = 64")
    .replace("height = 32", "height = 64")
)
FULL_CALIBRATION = CALIBRATION.replace(
    '["a green triangle", "a purple star at the top"]',
    '["a green triangle", "a purple star at the top", "an orange square", "a white circle on the right"]',
).replace("[100]", "[100, 101]")


def int8(name, components, ranges, extra=""):
    return f'\n[configs.{name}]\nkind = "int8"\ncomponents = {json.dumps(components)}\nranges = "{ranges}"\n{extra}\n'


def run(write_suite, tmp_path, body, name="q", expect=0, extra=()):
    path = write_suite(body, name=name)
    code, results = bless_and_run(path, tmp_path / f"run-{name}", "--cache-dir", str(tmp_path / "cache"), *extra)
    assert code == expect
    return results, path.parent


def calibrate_file(write_suite, body, name="q", config="vae8"):
    """Write the suite and fill its range file with `harness ranges calibrate` (a run never writes it)."""
    from harness.cli import main

    path = write_suite(body, name=name)
    assert main(["ranges", "calibrate", str(path), "--config", config, "--device", "cpu"]) == 0
    return path.parent


def psnr(results, config):
    c = next(c for c in results["configs"] if c["name"] == config)
    return next(s["mean"] for s in c["summaries"] if s["metric"] == "psnr")


def test_a_run_calibrates_into_its_own_folder_and_only_ranges_calibrate_writes_the_file(write_suite, tmp_path):
    from harness.cli import main

    body = HEAD.format(name="q", pipeline="builtin:tiny-sd") + int8(
        "vae8", ["vae.decoder"], "ranges/vae.txt", CALIBRATION
    )
    results, suites = run(write_suite, tmp_path, body)
    path = suites / "ranges" / "vae.txt"
    assert not path.exists()  # a run never writes into the suite's files
    saved = tmp_path / "run-q" / "ranges" / "vae.txt"
    ranges = read_ranges(saved)
    assert len(ranges) == 20 and all(name.startswith("vae.decoder.") for name in ranges)
    notes = results["configs"][1]["notes"]
    assert notes["layers_quantized"] == 20 and notes["calibration_samples"] == 2
    assert notes["calibration"].startswith("calibrated in this run; saved in the run folder")
    sensitivity = [row["sqnr_db"] for row in notes["sensitivity"]]
    assert len(sensitivity) == 20 and sensitivity == sorted(sensitivity)
    # The explicit command writes the file; runs after it widen its ranges in memory and leave it as it is.
    assert main(["prepare", str(suites / "q.toml"), "--config", "vae8", "--device", "cpu"]) == 0  # = ranges calibrate
    first = path.read_text()
    assert read_ranges(path) == ranges
    again, _ = run(write_suite, tmp_path, body, extra=["--no-cache"])
    assert path.read_text() == first
    assert "merged with the file" in again["configs"][1]["notes"]["calibration"]
    assert psnr(again, "vae8") == psnr(results, "vae8")


def test_calibrated_ranges_beat_naive_single_sample_min_max(write_suite, tmp_path):
    body = FULL_HEAD.format(name="q", pipeline="builtin:tiny-sd")
    body += int8("calibrated", ["unet"], "ranges/unet.txt", FULL_CALIBRATION + "percentile = 0.1\nsensitivity = false")
    naive = (
        'calibration_prompts = ["a green triangle"]\ncalibration_seeds = [100]\npercentile = 0.0\nsensitivity = false'
    )
    body += int8("naive", ["unet"], "ranges/naive.txt", naive)
    results, _ = run(write_suite, tmp_path, body)
    calibrated, naive_psnr = psnr(results, "calibrated"), psnr(results, "naive")
    assert calibrated > naive_psnr + 0.5, (calibrated, naive_psnr)


def test_real_int8_matmuls_match_the_simulation(write_suite, tmp_path):
    body = HEAD.format(name="q", pipeline="builtin:tiny-sd")
    body += int8("sim", ["unet"], "ranges/unet.txt", CALIBRATION + "sensitivity = false")
    body += int8("real", ["unet"], "ranges/unet.txt", CALIBRATION + 'sensitivity = false\nint8_matmul = "real"')
    results, _ = run(write_suite, tmp_path, body)
    real = next(c for c in results["configs"] if c["name"] == "real")
    notes = real["notes"]
    assert notes["layers_real_int8"] > 100 and notes["max_rel_diff_vs_simulation"] < 1e-3, notes
    assert abs(psnr(results, "real") - psnr(results, "sim")) < 1.0


def test_bad_range_files_are_input_errors_before_anything_runs(write_suite, tmp_path, capsys):
    cases = {
        "empty": ("", "range file is empty and calibrate = false"),
        "malformed": ("vae.decoder.conv_in,1\n", "line 1: expected 'name,min,max'"),
        "inverted": ("vae.decoder.conv_in,2,1\n", "min 2 is greater than max 1"),
    }
    for case, (content, message) in cases.items():
        (tmp_path / "suites" / "ranges").mkdir(parents=True, exist_ok=True)
        (tmp_path / "suites" / "ranges" / f"{case}.txt").write_text(content)
        body = HEAD.format(name=case, pipeline="builtin:tiny-sd") + int8(
            "q", ["vae.decoder"], f"ranges/{case}.txt", "calibrate = false"
        )
        path = write_suite(body, name=case)
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and f"{case}.txt" in err, err
    body = HEAD.format(name="missing", pipeline="builtin:tiny-sd") + int8(
        "q", ["vae.decoder"], "ranges/none.txt", "calibrate = false"
    )
    assert main(["validate", str(write_suite(body, name="missing"))]) == 2
    assert "range file not found" in capsys.readouterr().err


def test_a_file_for_another_model_fails_that_config_only_with_exit_2(write_suite, tmp_path):
    body = HEAD.format(name="q", pipeline="builtin:tiny-sd") + int8(
        "vae8", ["vae.decoder"], "ranges/vae.txt", CALIBRATION
    )
    calibrate_file(write_suite, body)
    body += int8("wrong", ["unet"], "ranges/vae.txt", "calibrate = false")  # VAE ranges for the UNet
    body += '\n[configs.bf16]\ndtype = "bfloat16"\n'
    results, _ = run(write_suite, tmp_path, body, expect=2)
    configs = {c["name"]: c for c in results["configs"]}
    assert configs["wrong"]["status"] == "error" and configs["wrong"]["error_type"] == "input"
    assert "names match no quantized layer of this model (first: vae.decoder.conv_in" in configs["wrong"]["message"]
    assert configs["bf16"]["status"] == "ok" and configs["vae8"]["status"] == "ok"
    assert results["exit_code"] == 2


def test_ranges_reuse_for_a_fine_tune_of_the_same_architecture(write_suite, tmp_path):
    """Calibrate on tiny-sd, then reuse the file on a perturbed copy loaded from a local folder."""
    from harness.errors import Where
    from harness.generate.loading import load_pipeline
    from harness.plan.source import PipelineSource
    from harness.registry import build_registry

    body = HEAD.format(name="base", pipeline="builtin:tiny-sd") + int8(
        "vae8", ["vae.decoder"], "ranges/vae.txt", CALIBRATION
    )
    calibrate_file(write_suite, body, name="base")
    tuned = load_pipeline(PipelineSource("builtin", "tiny-sd"), Where("x"), build_registry()).pipe
    with torch.no_grad():
        generator = torch.Generator().manual_seed(1)
        for parameter in tuned.vae.decoder.parameters():
            parameter.mul_(1 + 0.02 * torch.randn(parameter.shape, generator=generator))
    tuned.save_pretrained(tmp_path / "models" / "tuned")
    body = HEAD.format(name="tuned", pipeline="../models/tuned") + int8(
        "vae8", ["vae.decoder"], "ranges/vae.txt", "calibrate = false"
    )
    results, _ = run(write_suite, tmp_path, body, name="tuned")
    assert results["configs"][1]["status"] == "ok" and psnr(results, "vae8") > 25


def test_calibration_samples_must_not_be_evaluation_samples(write_suite, tmp_path):
    overlap = 'calibration_prompts = ["a red circle"]\ncalibration_seeds = [0]'
    body = HEAD.format(name="q", pipeline="builtin:tiny-sd") + int8("q8", ["vae.decoder"], "ranges/v.txt", overlap)
    results, _ = run(write_suite, tmp_path, body, expect=2)
    assert "also an evaluation sample" in results["configs"][1]["message"]


def test_negative_control_passes_the_run_only_when_flagged(write_suite, tmp_path):
    from harness.kinds.int8.ranges import scaled, write_ranges

    body = HEAD.format(name="q", pipeline="builtin:tiny-sd") + int8(
        "vae8", ["vae.decoder"], "ranges/vae.txt", CALIBRATION
    )
    suites = calibrate_file(write_suite, body)
    write_ranges(scaled(read_ranges(suites / "ranges" / "vae.txt"), 0.1), suites / "ranges" / "shrunk.txt")
    control = body + int8("shrunk", ["vae.decoder"], "ranges/shrunk.txt", 'calibrate = false\nexpect = "fail"')
    results, _ = run(write_suite, tmp_path, control)
    statuses = {c["check"]: c["status"] for c in results["checks"] if c["config"] == "shrunk"}
    assert statuses["psnr >= 25"] == "xfail" and statuses["is flagged (negative control)"] == "pass"
    # the same configuration marked as a control but harmless (ranges x1) makes the run fail
    write_ranges(read_ranges(suites / "ranges" / "vae.txt"), suites / "ranges" / "shrunk.txt")
    results, _ = run(write_suite, tmp_path, control, expect=1)
    assert any(c["check"] == "is flagged (negative control)" and c["status"] == "fail" for c in results["checks"])
    assert np.isfinite(psnr(results, "shrunk"))
