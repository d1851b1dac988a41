"""History across three runs: ordered by time, one chart per metric, the runs table."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.errors import InputError
from harness.report.history import collect, series
from tests.helpers import suite_head

SUITE = (
    suite_head("h", prompts=["a red circle", "a cat"])
    + """[metrics]
psnr = {}
ssim = {}
[configs.fp32]
[configs.bf16]
dtype = "bfloat16"
"""
)


def test_history_of_three_runs(write_suite, tmp_path):
    path = write_suite(SUITE, name="h")
    assert main(["bless", str(path)]) == 0
    reports = tmp_path / "reports"
    for _ in range(3):
        assert main(["run", str(path), "--reports", str(reports)]) == 0
    (reports / "h" / "junk").mkdir()
    (reports / "h" / "junk" / "results.json").write_text("{broken")  # unreadable runs are skipped
    points = collect(reports / "h")
    assert len(points) == 3 and [p.started for p in points] == sorted(p.started for p in points)
    psnr = series(points, "psnr")
    assert set(psnr) == {"fp32", "bf16"} and [x for x, *_ in psnr["bf16"]] == [0, 1, 2]
    assert main(["history", str(reports / "h")]) == 0
    page = (reports / "h" / "history.html").read_text()
    assert page.count('alt="psnr"') == 1 and page.count('alt="ssim"') == 1 and page.count("<tr><td>") == 3
    assert 'src="http' not in page


def test_history_needs_runs(tmp_path):
    with pytest.raises(InputError, match="no completed runs"):
        collect(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(
        json.dumps({"suite": {"name": "x"}, "run_id": "1", "started": "t", "state": "running"})
    )
    with pytest.raises(InputError, match="no completed runs"):
        collect(tmp_path)
