"""``harness blame`` end to end on the shapes and FLUX worlds: ranked parts with intervals, the reverse direction,
and a GGUF recipe that the suite's own run then passes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.blame.recipe import passes, psnr_of_mse, search
from harness.cli import main
from tests.helpers import REPO, SHAPES_PROMPTS, suite_head


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blame")
    path = folder / "suite.toml"
    path.write_text(
        suite_head("blame", pipeline="builtin:shapes", prompts=SHAPES_PROMPTS, seeds=(0, 1), steps=8, size=64)
        + "guidance = 5.0\nreference_images = 'live'\n[metrics]\npsnr = {}\n[thresholds]\npsnr = { min = 30 }\n"
        + '[configs.fp32]\n[configs.q4_0]\nkind = "gguf"\ntype = "Q4_0"\ncomponents = ["unet"]\n'
    )
    cache = ["--cache-dir", str(folder / "cache")]
    assert main(["run", str(path), "--out", str(folder / "run"), *cache]) == 0
    return folder / "run", cache


def test_blame_ranks_parts_with_intervals_and_adds_a_report_section(shapes_run):
    run_dir, cache = shapes_run
    assert main(["blame", str(run_dir), "--config", "q4_0", "--samples", "4", *cache]) == 0
    record = json.loads((run_dir / "blame-q4_0.json").read_text())
    parts = record["parts"]
    assert record["n"] == 4 and record["direction"] == "blame"
    assert [p["change_mean"] for p in parts] == sorted((p["change_mean"] for p in parts), reverse=True)
    assert {p["level"] for p in parts} == {"component", "block", "group"}
    unet = next(p for p in parts if p["name"] == "unet")
    # the whole UNet back in fp32 is the reference pipeline: every image identical (PSNR at its cap)
    assert unet["psnr_mean"] == 100.0 and parts[0]["name"] == "unet"
    assert unet["change_mean"] == pytest.approx(100.0 - record["config_psnr"]["mean"])
    for part in parts:
        low, high = part["change_ci"]
        assert low <= part["change_mean"] <= high
        assert part["bytes_config"] < part["bytes_reference"]  # Q4_0 blocks are smaller than fp32
    assert record["images_generated"] == 4 * (len(parts) + 2)
    assert "Where the quality goes" in (run_dir / "report.html").read_text()
    assert "### Where the quality goes: blame of `q4_0`" in (run_dir / "summary.md").read_text()


def test_sensitivity_of_the_whole_component_is_the_configuration_itself(shapes_run):
    run_dir, cache = shapes_run
    args = ["blame", str(run_dir), "--config", "q4_0", "--samples", "4", "--levels", "components", *cache]
    assert main(args) == 0
    blamed = json.loads((run_dir / "blame-q4_0.json").read_text())
    assert main([*args, "--sensitivity"]) == 0
    record = json.loads((run_dir / "sensitivity-q4_0.json").read_text())
    (unet,) = record["parts"]
    # the reference with the configuration's UNet is the configuration: the same images, the same PSNR
    assert unet["psnr_mean"] == pytest.approx(blamed["config_psnr"]["mean"], abs=1e-9)


def test_a_bad_level_or_configuration_is_an_input_error(shapes_run, capsys):
    run_dir, cache = shapes_run
    assert main(["blame", str(run_dir), "--config", "q4_0", "--levels", "layers", *cache]) == 2
    assert "Unknown level 'layers'" in capsys.readouterr().err
    assert main(["blame", str(run_dir), "--config", "fp32", *cache]) == 2
    assert "is the suite's reference" in capsys.readouterr().err


def test_the_search_keeps_groups_until_the_prediction_passes_and_none_is_spare():
    rng = np.random.default_rng(0)
    errors = {
        f"g{i}": {
            "mse_low": rng.uniform(0.5, 3.0, 6) * (i + 1),
            "mse_high": rng.uniform(0.01, 0.05, 6),
            "bytes_low": 100 * (i + 1),
            "bytes_high": 200 * (i + 1),
        }
        for i in range(5)
    }
    gates = [("mean", 40.0, None), ("worst", 38.0, None)]
    kept, predicted = search(errors, gates, margin=0.0)
    assert kept and not passes(predicted, gates)
    total = sum(errors[n]["mse_high" if n in kept else "mse_low"] for n in errors)
    assert np.allclose(predicted, psnr_of_mse(total))  # the additive model, per sample
    # the greedy search stops at the first passing mix: without the last group it chose, a gate fails again
    fewer = sum(errors[n]["mse_high" if n in kept[:-1] else "mse_low"] for n in errors)
    assert passes(psnr_of_mse(fewer), gates)


def test_a_recipe_for_the_flux_world_q4_0_passes_the_suite_when_run(tmp_path):
    cache = ["--cache-dir", str(tmp_path / "cache")]
    suite = REPO / "suites" / "flux_gguf.toml"
    assert main(["run", str(suite), "--config", "q4_0", "--out", str(tmp_path / "run"), *cache]) == 0
    assert main(["blame", str(tmp_path / "run"), "--config", "q4_0", "--samples", "12", "--recipe", *cache]) == 0
    record = json.loads((tmp_path / "run" / "recipe-q4_0.json").read_text())
    found = record["recipe"]
    assert found["kept"] and found["run"]["verdict"] == "pass" and found["measured_fails"] == []
    assert found["bytes"]["low"] < found["bytes"]["mix"] < found["bytes"]["high"]  # smaller than all Q8_0
    assert "overrides = {" in found["toml"] and '= "Q8_0"' in found["toml"]
    assert "Recipe: Q4_0 with" in (tmp_path / "run" / "summary.md").read_text()
