"""The phase table: per-configuration timings added up, and one line that says where the wall time went."""

from __future__ import annotations

import json

from harness.phases import describe, run_phases
from harness.results import ConfigResult


def config(name, **timing):
    return ConfigResult(name=name, kind="precision", status="ok", timing=timing)


def test_phases_add_up_the_configurations():
    configs = [
        config("a", load_s=1.0, generate_s=10.0, score_psnr_s=0.5, score_ssim_s=2.0, repeats_s=4.0),
        config("b", load_s=2.0, generate_s=20.0, score_psnr_s=0.25, score_ssim_s=1.0),
    ]
    phases = run_phases(configs, startup_s=3.0, pipeline_load_s=5.0, reference_scoring_s=0.25, checks_s=0.1)
    assert phases["build_s"] == 3.0 and phases["generate_s"] == 30.0 and phases["timing_repeats_s"] == 4.0
    assert phases["score_ssim_s"] == 3.0 and phases["score_psnr_s"] == 0.75
    assert phases["scoring_s"] == 4.0  # both metrics and the references
    assert "scoring_rss_rise_mb" not in phases
    memory = {"peak_rss_mb": 900.0, "rss_rise_mb": 40.0}
    phases = run_phases(configs, 3.0, 5.0, 0.25, 0.1, scoring_memory=memory)
    assert phases["scoring_peak_rss_mb"] == 900.0 and phases["scoring_rss_rise_mb"] == 40.0
    assert "scoring 4.0 (ssim 3.0, psnr 0.8, memory +40 MB)" in describe(phases)


def test_describe_names_the_costly_parts_and_the_ratios():
    phases = {"startup_s": 2.0, "pipeline_load_s": 4.0, "build_s": 1.0, "generate_s": 50.0, "scoring_s": 90.0}
    phases |= {"score_ssim_s": 87.0, "score_psnr_s": 3.0, "checks_s": 0.0, "report_s": 5.0, "wall_s": 202.0}
    line = describe(phases)
    assert "scoring 90.0 (ssim 87.0, psnr 3.0)" in line
    assert "wall/generation 4.04x, scoring/generation 180%" in line
    assert "other 50.0" in line  # what no phase accounts for is shown, not hidden
    assert "other 40.0" in describe(phases | {"setup_s": 10.0})
    assert describe({}) == ""


def test_a_run_records_its_phases(write_suite, tmp_path):
    from harness.cli import main

    path = write_suite()
    assert main(["bless", str(path)]) == 0
    main(["run", str(path), "--out", str(tmp_path / "run"), "--no-cache"])
    phases = json.loads((tmp_path / "run" / "results.json").read_text())["phases"]
    assert phases["generate_s"] > 0 and phases["report_s"] > 0
    assert phases["scoring_peak_rss_mb"] >= phases["scoring_rss_rise_mb"] >= 0
    assert phases["setup_s"] > 0  # references, metrics, device: no longer hidden in "other"
    parts = sum(phases[k] for k in ("startup_s", "build_s", "generate_s", "scoring_s", "report_s"))
    assert phases["wall_s"] >= parts
