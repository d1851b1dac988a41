"""Markdown, JUnit and HTML render the same run consistently."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np

from harness.report import write_reports
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.results import CheckOutcome, ConfigResult, MetricSummary, RunResult, SampleResult
from harness.samples import save_png


def make_run(tmp_path) -> RunResult:
    rng = np.random.default_rng(0)
    (tmp_path / "images" / "reference").mkdir(parents=True)
    configs = []
    for name, noise in (("fp32", 0), ("bf16", 3), ("broken", 60)):
        samples = []
        for index in range(2):
            key = f"p{index:03d}-s0"
            reference = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) if name == "fp32" else None
            if reference is not None:
                save_png(reference, tmp_path / "images" / "reference" / f"{key}.png")
            image = np.full((16, 16, 3), 100 + noise, dtype=np.uint8)
            save_png(image, tmp_path / "images" / name / f"{key}.png")
            samples.append(
                SampleResult(
                    key,
                    index,
                    f"prompt {index}",
                    0,
                    image=f"images/{name}/{key}.png",
                    metrics={"psnr": 40.0 - noise / 2 - index},
                )
            )
        summary = MetricSummary(
            "psnr", "dB", True, "pair", 2, 40.0 - noise / 2 - 0.5, 40.0, 39.0 - noise / 2, 38.0, 42.0
        )
        configs.append(
            ConfigResult(
                name,
                "precision",
                "ok",
                samples=tuple(samples),
                summaries=(summary,),
                timing={"per_image_s": 0.1 + noise / 100},
                memory={"peak_rss_mb": 800.0 + noise},
            )
        )
    configs.append(
        ConfigResult(
            "crash",
            "gguf",
            "error",
            message="RuntimeError: cannot assign 'torch.ByteTensor' as parameter 'weight'",
            traceback="Traceback ...\nRuntimeError: ...",
        )
    )
    checks = (
        CheckOutcome("fp32", "psnr >= 30", "pass", "mean psnr = 39.5 dB", metric="psnr"),
        CheckOutcome("bf16", "psnr >= 30", "pass", "mean psnr = 38 dB", metric="psnr"),
        CheckOutcome("broken", "psnr >= 30", "fail", "mean psnr = 9.5 dB: below 30", metric="psnr"),
        CheckOutcome("crash", "runs", "error", "RuntimeError: cannot assign 'torch.ByteTensor' as parameter 'weight'"),
    )
    return RunResult(
        suite={
            "name": "demo",
            "description": "d",
            "pipeline": {"kind": "builtin", "location": "tiny-sd"},
            "prompts": ["a", "b"],
            "seeds": [0],
            "generation": {"steps": 2, "width": 16, "height": 16, "guidance": 3.0},
        },
        run_id="r1",
        started="t",
        configs=tuple(configs),
        checks=checks,
        exit_code=1,
        verdict="fail",
        state="complete",
        environment={"device_class": "cpu: test"},
    )


def test_markdown_lists_failures_and_every_configuration(tmp_path):
    text = render_markdown(make_run(tmp_path))
    assert "FAIL: 4 configurations, 2/4 checks passed, 2 failed or errored" in text
    for name in ("fp32", "bf16", "broken", "crash"):
        assert f"`{name}`" in text
    assert "### Failing checks" in text and "below 30" in text and "ByteTensor" in text
    assert "[38, 42] (n=2)" in text


def test_junit_has_one_case_per_check(tmp_path):
    root = ET.fromstring(render_junit(make_run(tmp_path)).split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "1" and suite.get("errors") == "1"
    names = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert ("demo.broken", "psnr >= 30") in names and ("demo.crash", "runs") in names
    error = root.find(".//error")
    assert "ByteTensor" in error.get("message") and "Traceback" in error.text


def test_html_is_self_contained_with_gallery_and_charts(tmp_path):
    run = make_run(tmp_path)
    html = render_html(run, tmp_path)
    assert html.count('class="sortable') >= 3 and 'id="filter-config"' in html and 'id="filter-metric"' in html
    assert html.count("data:image/png;base64,") >= 2 * 3 * 2  # images + heatmaps per sample and configuration
    assert 'loading="lazy"' in html and 'data-full="images/bf16/p000-s0.png"' in html
    assert "Per-prompt breakdown" in html and "psnr vs timing" not in html  # chart titles are inside PNGs
    assert "ByteTensor" in html
    paths = write_reports(run, tmp_path)
    assert {p.name for p in paths.values()} == {"report.html", "summary.md", "junit.xml"}


def test_a_large_run_embeds_its_worst_samples_only():
    from harness.report.html import gallery_keys

    def sample(index, psnr, **flags):
        return SampleResult(f"p{index:03d}-s0", index, "p", 0, image="x.png", metrics={"psnr": psnr}, **flags)

    good = [sample(i, 50.0 + i) for i in range(100)]
    summary = MetricSummary("psnr", "dB", True, "pair", 100, 1.0)
    cand = ConfigResult("cand", "precision", "ok", samples=(*good[:-2], sample(98, 60.0, blank=True), sample(99, 20.0)))
    control = ConfigResult("control", "precision", "ok", samples=tuple(sample(i, 1.0) for i in range(100)))
    run = RunResult({}, "r", "now", configs=(cand, control))
    run = RunResult({}, "r", "now", configs=tuple(replace(c, summaries=(summary,)) for c in run.configs))
    shown, total = gallery_keys(run, "psnr", {"control"}, limit=5)
    # the blank image and the lowest PSNRs, whatever the negative control did
    assert total == 100 and shown == {"p098-s0", "p099-s0", "p000-s0", "p001-s0", "p002-s0"}
    assert gallery_keys(run, "psnr", {"control"}, limit=100) == (None, 100)
