"""The command kind: an external runtime per sample, without a shell; its failures become errors with stderr."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.kinds.command import run_child, substitute
from tests.helpers import bless_and_run, configs_by_name

FAKE = str(Path(__file__).parent.parent / "fixtures" / "fake_runtime.py")
ARGS = (
    '"--prompt", "{prompt}", "--seed", "{seed}", "--width", "{width}", "--height", "{height}", "--output", "{output}"'
)


def command(mode="ok", extra=""):
    return f'command = ["{sys.executable}", "{FAKE}", {ARGS}, "--mode", "{mode}"{extra}]'


def body(configs, prompts='["a red circle", "a cat; touch INJECTED $(touch INJECTED2) `touch INJECTED3`"]'):
    return f"""
name = "c"
pipeline = "builtin:tiny-sd"
reference = "ext"
prompts = {prompts}
seeds = [0, 1]
steps = 2
width = 32
height = 32
[configs.ext]
kind = "command"
{command()}
{configs}
"""


def run(write_suite, tmp_path, text):
    path = write_suite(text, name="c")
    code, results = bless_and_run(path, tmp_path / "run")
    return code, configs_by_name(results), path.parent


def test_external_runtime_runs_and_prompts_cannot_inject(write_suite, tmp_path):
    text = body('[configs.big]\nkind = "command"\n' + command("allocate", ', "--allocate-mb", "200"'))
    code, configs, folder = run(write_suite, tmp_path, text)
    assert code == 0
    assert configs["ext"]["status"] == "ok" and len(configs["ext"]["samples"]) == 4
    assert not list(folder.glob("INJECTED*")) and not list(Path.cwd().glob("INJECTED*"))
    # the child's own peak, not the harness's: about 200 MB more for the allocating one
    assert configs["big"]["notes"]["child_peak_rss_mb"] > configs["ext"]["notes"]["child_peak_rss_mb"] + 150
    assert configs["ext"]["notes"]["child_peak_rss_mb"] < 300


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", "exit code 3; stderr tail:"),
        ("no-image", "wrote no image"),
        ("wrong-size", "image is 40x32, expected 32x32"),
        ("garbage", "unreadable image"),
    ],
)
def test_failures_are_errors_with_stderr(write_suite, tmp_path, mode, message):
    code, configs, _ = run(write_suite, tmp_path, body(f'[configs.bad]\nkind = "command"\n{command(mode)}\n'))
    assert code == 1 and configs["ext"]["status"] == "ok"
    assert configs["bad"]["status"] == "error" and message in configs["bad"]["message"]
    if mode == "fail":
        assert "prompt argument received: 'a red circle'" in configs["bad"]["message"]


def test_timeout(write_suite, tmp_path):
    code, configs, _ = run(
        write_suite, tmp_path, body(f'[configs.slow]\nkind = "command"\n{command("sleep")}\ntimeout = 1.5\n')
    )
    assert code == 1 and "timed out after 1.5 s" in configs["slow"]["message"]


def test_substitution_keeps_one_argument_per_placeholder():
    argv = substitute(
        ["run", "--prompt={prompt}", "{output}"], {"prompt": "a b; rm -rf / {seed}", "output": "o.png", "seed": "1"}
    )
    assert argv == ["run", "--prompt=a b; rm -rf / {seed}", "o.png"]  # a placeholder inside a prompt stays text
    child = run_child([sys.executable, "-c", "import sys; sys.exit(0)"], ".", {}, 10)
    assert child.returncode == 0 and 0 < child.peak_rss_mb < 200


def test_command_validation(write_suite, capsys):
    base = 'pipeline = "builtin:tiny-sd"\nreference = "a"\nprompts = ["x"]\n[configs.a]\nkind = "command"\n'
    for extra, message in (
        ('command = ["x", "{prompt}"]\n', "must contain {output}"),
        ('command = ["x", "{output}", "{sed}"]\n', "Unknown placeholder '{sed}'. Did you mean: {seed}?"),
        ("command = 3\n", "expected a list of strings or a string"),
        ('command = ["x", "{output}"]\ntimeout = 0\n', "must be > 0 seconds"),
        ('command = ["x", "{output}"]\ndtype = "float16"\n', "Unknown key for kind 'command' 'dtype'"),
    ):
        path = write_suite(base + extra, name="v")
        assert main(["validate", str(path)]) == 2
        assert message in capsys.readouterr().err
