"""The optional torchao and quanto kinds: run where they can, skipped with the reason where they cannot."""

from __future__ import annotations

import importlib.util

import pytest

from harness.kinds.optional import missing_package
from tests.helpers import bless_and_run, configs_by_name, suite_head

BODY = (
    suite_head("o")
    + """[thresholds]
psnr = {{ min = 25 }}
[configs.fp32]
{configs}
"""
)


def run(write_suite, tmp_path, configs):
    code, results = bless_and_run(write_suite(BODY.format(configs=configs), name="o"), tmp_path / "run")
    return code, configs_by_name(results)


@pytest.mark.skipif(importlib.util.find_spec("optimum") is None, reason="optimum-quanto is not installed")
def test_quanto_runs_on_cpu(write_suite, tmp_path):
    configs = '[configs.q8]\nkind = "quanto"\nweights = "qint8"\ncomponents = ["unet"]\n'
    configs += '[configs.q4]\nkind = "quanto"\nweights = "qint4"\ncomponents = ["unet"]\n'
    code, results = run(write_suite, tmp_path, configs)
    assert code == 0, results
    for name in ("q8", "q4"):
        sizes = results[name]["notes"]["quanto"]["components"]["unet"]
        assert sizes["weights_mb_after"] < sizes["weights_mb_before"]


@pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao is not installed")
def test_torchao_int8_runs_and_unsupported_modes_are_skipped(write_suite, tmp_path):
    configs = '[configs.w8]\nkind = "torchao"\nmode = "int8_weight_only"\ncomponents = ["unet"]\n'
    configs += '[configs.w4]\nkind = "torchao"\nmode = "int4_weight_only"\ncomponents = ["unet"]\n'
    code, results = run(write_suite, tmp_path, configs)
    assert results["w8"]["status"] == "ok"
    # int4 needs a kernel library the CPU wheel lacks: skipped with the reason, never an error
    assert results["w4"]["status"] in ("ok", "skipped")
    if results["w4"]["status"] == "skipped":
        assert "does not run on cpu" in results["w4"]["message"]
    assert code == 0


def test_missing_package_is_a_skip_reason(write_suite, tmp_path, monkeypatch):
    import harness.kinds.optional as optional

    assert (
        missing_package("no_such_backend_pkg", "no-such-backend")
        == "no_such_backend_pkg is not installed (pip install no-such-backend)"
    )
    monkeypatch.setattr(
        optional, "missing_package", lambda module, install: f"{module} is not installed (pip install {install})"
    )
    import harness.kinds.quanto as quanto_kind

    monkeypatch.setattr(quanto_kind, "missing_package", optional.missing_package)
    code, results = run(
        write_suite, tmp_path, '[configs.q8]\nkind = "quanto"\nweights = "qint8"\ncomponents = ["unet"]\n'
    )
    assert (
        code == 0 and results["q8"]["status"] == "skipped" and "pip install optimum-quanto" in results["q8"]["message"]
    )
