"""End to end: bless and run small suites in a temp folder; files, verdicts and exit codes."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from harness.cli import main

TRANSFORMS = """
import torch


def raises(pipe):
    raise RuntimeError("cannot assign 'torch.ByteTensor' as parameter 'weight'")


def returns_none(pipe):
    return None


def nan_vae(pipe):
    with torch.no_grad():
        pipe.vae.decoder.conv_out.bias.fill_(float("nan"))
    return pipe


def noisy_unet(pipe):
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in pipe.unet.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.3 * parameter.std().nan_to_num(0.0))
    return pipe


def blank_vae(pipe):
    with torch.no_grad():
        pipe.vae.decoder.conv_out.weight.zero_()
        pipe.vae.decoder.conv_out.bias.zero_()
    return pipe
"""


def suite_with(extra_configs: str, thresholds: str = "psnr = { min = 30 }") -> str:
    return f"""
    name = "e2e"
    pipeline = "builtin:tiny-sd"
    reference = "fp32"
    prompts = ["a red circle", "a blue square on the left"]
    seeds = [0, 7]
    steps = 2
    width = 32
    height = 32
    guidance = 3.0

    [metrics]
    psnr = {{}}
    ssim = {{}}

    [thresholds]
    {thresholds}

    [configs.fp32]
    dtype = "float32"
    {extra_configs}
    """


def bless_and_run(write_suite, tmp_path, body, *extra):
    path = write_suite(body, name="e2e", files={"transforms.py": TRANSFORMS})
    assert main(["bless", str(path), "--device", "cpu"]) == 0
    out = tmp_path / "run"
    code = main(
        ["run", str(path), "--out", str(out), "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), *extra]
    )
    results = json.loads((out / "results.json").read_text())
    return code, out, results


def by_name(results):
    return {c["name"]: c for c in results["configs"]}


def test_bless_then_run_passes_and_writes_every_report(write_suite, tmp_path):
    body = suite_with(
        """
    [configs.bf16]
    dtype = "bfloat16"

    [configs.mixed]
    dtype = "float16"
    component_dtypes = { vae = "bfloat16", text_encoder = "bfloat16" }
    """
    )
    code, out, results = bless_and_run(write_suite, tmp_path, body)
    assert code == 0
    for name in ("results.json", "report.html", "summary.md", "junit.xml"):
        assert (out / name).is_file(), name
    configs = by_name(results)
    assert [c["status"] for c in configs.values()] == ["ok", "ok", "ok"]
    assert results["verdict"] == "pass" and results["exit_code"] == 0 and results["state"] == "complete"
    fp32_psnr = next(s for s in configs["fp32"]["summaries"] if s["metric"] == "psnr")
    assert fp32_psnr["mean"] == 100.0 and fp32_psnr["n"] == 4  # same process, same threads: identical images
    bf16_psnr = next(s for s in configs["bf16"]["summaries"] if s["metric"] == "psnr")
    assert 30 < bf16_psnr["mean"] < 100 and bf16_psnr["ci_low"] <= bf16_psnr["mean"] <= bf16_psnr["ci_high"]
    assert configs["mixed"]["notes"]["boundary_casts"], "mixed SD needs casts at component boundaries"
    assert configs["mixed"]["notes"]["component_dtypes"] == {
        "unet": "float16",
        "vae": "bfloat16",
        "text_encoder": "bfloat16",
    }
    for config in configs.values():
        assert config["timing"]["images"] == 4 and config["memory"]["peak_rss_mb"] > 0
        for sample in config["samples"]:
            assert (out / sample["image"]).is_file()
    junit = ET.parse(out / "junit.xml").getroot()
    cases = junit.findall(".//testcase")
    assert len(cases) == len(results["checks"]) == 3 * 2  # health + psnr per configuration
    assert not junit.findall(".//failure") and not junit.findall(".//error")
    html = (out / "report.html").read_text()
    assert "unet: bfloat16 -&gt; float16" in html  # the casts inserted are stated
    assert "unet: bfloat16 -> float16" in (out / "summary.md").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html), "the report must not load anything from the network"
    assert "p001-s7" in html


def test_failed_threshold_exits_1_and_is_reported(write_suite, tmp_path):
    body = suite_with(
        """
    [configs.bf16]
    dtype = "bfloat16"
    thresholds.psnr = { min = 99 }
    """
    )
    code, out, results = bless_and_run(write_suite, tmp_path, body)
    assert code == 1
    failed = [c for c in results["checks"] if c["status"] == "fail"]
    assert [(c["config"], c["check"]) for c in failed] == [("bf16", "psnr >= 99")]
    assert "below 99" in failed[0]["reason"]
    assert "Failing checks" in (out / "summary.md").read_text()
    assert ET.parse(out / "junit.xml").getroot().findall(".//failure")


def test_crashing_configuration_is_isolated(write_suite, tmp_path):
    body = suite_with(
        """
    [configs.crash]
    transform = "transforms:raises"

    [configs.none]
    transform = "transforms:returns_none"

    [configs.bf16]
    dtype = "bfloat16"
    """
    )
    code, out, results = bless_and_run(write_suite, tmp_path, body)
    assert code == 1
    configs = by_name(results)
    assert configs["crash"]["status"] == "error"
    assert "cannot assign 'torch.ByteTensor' as parameter 'weight'" in configs["crash"]["message"]
    assert "RuntimeError" in configs["crash"]["traceback"]
    assert configs["none"]["status"] == "error" and "returned NoneType" in configs["none"]["message"]
    assert configs["bf16"]["status"] == "ok" and configs["fp32"]["status"] == "ok"
    errors = ET.parse(out / "junit.xml").getroot().findall(".//error")
    assert len(errors) == 2
    assert "ByteTensor" in (out / "report.html").read_text()


def test_nan_and_blank_images_fail_on_their_own(write_suite, tmp_path):
    body = suite_with(
        """
    [configs.nan]
    transform = "transforms:nan_vae"

    [configs.blank]
    transform = "transforms:blank_vae"
    """,
        thresholds="psnr = { min = 0 }",
    )
    code, _, results = bless_and_run(write_suite, tmp_path, body)
    assert code == 1
    health = {c["config"]: c for c in results["checks"] if c["check"] == "images are finite and not blank"}
    assert health["fp32"]["status"] == "pass"
    assert health["nan"]["status"] == "fail" and "4/4 images contain NaN/Inf" in health["nan"]["reason"]
    assert health["blank"]["status"] == "fail" and "4/4 images are blank" in health["blank"]["reason"]
    nan_samples = by_name(results)["nan"]["samples"]
    assert all(s["nonfinite_fraction"] == 1.0 for s in nan_samples)


def test_damaged_unet_is_flagged_and_the_reference_never_fails(write_suite, tmp_path):
    body = suite_with(
        """
    [configs.damaged]
    transform = "transforms:noisy_unet"
    """,
        thresholds="""psnr = { min = 35, basis = "interval" }
    ssim = { min = 0.95 }
    clip_score = { max_drop = 1.0, basis = "interval" }
    kid = { max = 10 }""",
    ).replace("ssim = {}", "ssim = {}\n    clip_score = {}\n    kid = { features = 'tiny', bootstrap = 20 }")
    code, _, results = bless_and_run(write_suite, tmp_path, body)
    assert code == 1
    outcomes = {(c["config"], c["check"]): c["status"] for c in results["checks"]}
    assert all(status == "pass" for (config, _), status in outcomes.items() if config == "fp32"), outcomes
    assert outcomes[("damaged", "psnr >= 35 (interval)")] == "fail"
    # on the random tiny model only the pixel metric sees the damage; the trained shapes world adds the semantic ones
    assert results["counters"]["reference_feature_extractions"] == 4


def test_run_without_references_is_an_input_error(write_suite, tmp_path, capsys):
    path = write_suite(suite_with(""), name="e2e")
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert "no blessed references" in capsys.readouterr().err
    assert not (out / "results.json").exists()


def test_config_subset_and_unknown_config(write_suite, tmp_path, capsys):
    body = suite_with('[configs.bf16]\ndtype = "bfloat16"\n')
    path = write_suite(body, name="e2e")
    assert main(["bless", str(path)]) == 0
    out = tmp_path / "subset"
    assert main(["run", str(path), "--out", str(out), "--config", "bf16"]) == 0
    assert [c["name"] for c in json.loads((out / "results.json").read_text())["configs"]] == ["bf16"]
    assert main(["run", str(path), "--out", str(tmp_path / "x"), "--config", "bf61"]) == 2
    assert "Did you mean: bf16?" in capsys.readouterr().err


def test_results_are_written_after_each_configuration(write_suite, registry, tmp_path):
    from harness.plan.suite import load_suite
    from harness.runner import Runner, RunRequest

    path = write_suite(suite_with('[configs.bf16]\ndtype = "bfloat16"\n'), name="e2e")
    suite = load_suite(path, registry)
    runner = Runner(registry)
    runner.bless(RunRequest(suite))
    seen = []

    def on_done(result, run_dir):
        on_disk = json.loads((run_dir / "results.json").read_text())
        seen.append([c["name"] for c in on_disk["configs"]])

    runner.run(RunRequest(suite, out_dir=tmp_path / "r"), on_config_done=on_done)
    assert seen == [["fp32"], ["fp32", "bf16"]]


def test_report_command_rerenders(write_suite, tmp_path):
    code, out, _ = bless_and_run(write_suite, tmp_path, suite_with(""))
    assert code == 0
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").is_file()
    assert main(["report", str(tmp_path / "nowhere")]) == 2


@pytest.mark.parametrize("what", ["kinds", "metrics", "pipelines", "suites"])
def test_ls(what, capsys):
    assert main(["ls", what]) == 0
    assert capsys.readouterr().out.strip()


def test_a_subset_runs_what_its_gates_compare_with_and_judges_only_what_was_asked(write_suite, tmp_path):
    body = suite_with(
        """
    [configs.bf16]
    dtype = "bfloat16"
    thresholds.ssim = { max_drop = 0.5, vs = "fp16" }

    [configs.fp16]
    dtype = "float16"
    thresholds.psnr = { min = 99 }

    [configs.mixed]
    dtype = "float16"
    component_dtypes = { vae = "bfloat16", text_encoder = "bfloat16" }
    """
    )
    code, _, results = bless_and_run(write_suite, tmp_path, body, "--config", "bf16")
    assert code == 0  # fp16 would fail its own psnr >= 99, but nobody asked to judge it
    assert [c["name"] for c in results["configs"]] == ["bf16", "fp16"]
    fp16_checks = [c for c in results["checks"] if c["config"] == "fp16"]
    assert [(c["status"], c["check"]) for c in fp16_checks] == [("skipped", "judged")]
    assert "ssim gate of 'bf16'" in fp16_checks[0]["reason"]
    compared = next(c for c in results["checks"] if c["config"] == "bf16" and c["metric"] == "ssim")
    assert compared["status"] == "pass" and "fp16" in compared["check"]
    assert any("also ran 'fp16', not judged" in w for w in results["warnings"])
