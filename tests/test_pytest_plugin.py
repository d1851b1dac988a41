"""The pytest plugin: a suite's checks as test items, run in a pytest of their own (pytester), on the shapes world."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.pytest_plugin import check_node_name
from tests.helpers import SHAPES_PROMPTS, suite_head

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[1]

SUITE = (
    suite_head("gates", pipeline="builtin:shapes", prompts=SHAPES_PROMPTS, steps=8, size=64)
    + 'guidance = 5.0\nreference_images = "live"\n'
    + """
[metrics]
psnr = {}

[thresholds]
psnr = [{ min = 38 }, { stat = "worst", min = 22 }]

[configs.fp32]
dtype = "float32"

[configs.fp16]
dtype = "float16"

[configs.damaged]
description = "a damaged configuration that claims to pass"
transform = "harness.controls:denoiser_noise_0_5"

[configs.control]
transform = "harness.controls:denoiser_noise_0_5"
expect = "fail"
"""
)

CHECKS = ("images_are_finite_and_not_blank", "psnr_ge_38", "worst_psnr_ge_22")


@pytest.fixture
def suite_file(pytester: pytest.Pytester) -> Path:
    path = pytester.path / "gates.toml"
    path.write_text(SUITE)
    return path


def harness(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    cache = pytester.path / "cache"
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-cache-dir", str(cache), *args)


def test_check_node_names():
    assert check_node_name("p25 psnr >= 32") == "p25_psnr_ge_32"
    assert (
        check_node_name("clip_score drop <= 0.5 vs reference (interval)")
        == "clip_score_drop_le_0.5_vs_reference_interval"
    )
    assert check_node_name("is flagged (negative control)") == "is_flagged_negative_control"


def test_one_item_per_check_a_damaged_configuration_fails_its_own(pytester, suite_file):
    junit = pytester.path / "gates.xml"
    result = harness(pytester, "--harness-suite", str(suite_file), f"--junitxml={junit}", "-v")
    result.assert_outcomes(passed=3 + 3 + 1 + 2, failed=2, xfailed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for config in ("fp32", "fp16"):
        for check in CHECKS:
            result.stdout.fnmatch_lines([f"gates.toml::{config}::{check} PASSED*"])
    result.stdout.fnmatch_lines(
        [
            "gates.toml::damaged::images_are_finite_and_not_blank PASSED*",
            "gates.toml::damaged::psnr_ge_38 FAILED*",
            "gates.toml::damaged::worst_psnr_ge_22 FAILED*",
            "gates.toml::control::psnr_ge_38 XFAIL*",
            "gates.toml::control::is_flagged_negative_control PASSED*",
        ]
    )
    # the failure names the value, the bound and the reason, and where the report is
    result.stdout.fnmatch_lines(
        ["damaged: psnr >= 38: fail", "value * (bound 38) over 2 samples", "mean psnr = *below 38"]
    )
    result.stdout.fnmatch_lines(["*= harness =*", "gates: fail, exit 1; report */report.html"])
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert len(list(ET.parse(junit).getroot().iter("testcase"))) == 13 and "psnr_ge_38" in cases
    failed = [case for case in ET.parse(junit).getroot().iter("testcase") if case.find("failure") is not None]
    assert {case.get("classname") for case in failed} == {"gates.toml.damaged"}


def test_deselection_runs_only_the_kept_configurations(pytester, suite_file):
    result = harness(pytester, "--harness-suite", str(suite_file), "-k", "fp16 and psnr")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*11 deselected*", "gates: pass, exit 0; report *"])
    results = json.loads(next((pytester.path / "reports").rglob("results.json")).read_text())
    assert {config["name"] for config in results["configs"]} == {"fp32", "fp16"}  # the reference supports fp16


def test_a_bad_suite_is_one_collection_error_naming_file_and_key(pytester, suite_file):
    suite_file.write_text(SUITE.replace("steps = 8", 'steps = "eight"'))
    result = harness(pytester, "--harness-suite", str(suite_file))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*gates.toml: steps: expected an integer*"])
    suite_file.write_text("name = [")
    broken = harness(pytester, "--harness-suite", str(suite_file))
    assert broken.ret == pytest.ExitCode.INTERRUPTED
    broken.stdout.fnmatch_lines(["*gates.toml*"])
    missing = harness(pytester, "--harness-suite", "nowhere.toml")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*--harness-suite nowhere.toml: no such suite file*"])


def test_the_example_test_file_runs_as_a_user_would_copy_it(pytester):
    example = ROOT / "docs" / "examples" / "test_my_model.py"
    shutil.copy(example, pytester.path / example.name)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", example.name, "-v")
    result.assert_outcomes(passed=3)
