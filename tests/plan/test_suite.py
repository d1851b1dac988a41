"""Suite parsing: a good suite round-trips, every mistake names file, key and what is allowed."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.errors import InputError
from harness.plan.suite import load_suite
from tests.helpers import REPO


def test_tiny_suite_parses(write_suite, registry):
    suite = load_suite(write_suite(), registry)
    assert suite.name == "tiny"
    assert suite.prompts == ("a red circle", "a blue square on the left")
    assert suite.seeds == (0,)
    assert suite.generation.steps == 2 and suite.generation.width == 32
    assert [c.name for c in suite.configs] == ["fp32", "bf16"]
    assert suite.reference == "fp32"
    assert suite.references_dir == (suite.path.parent.parent / "reference_images" / "tiny").resolve()
    assert [t.describe() for t in suite.thresholds_for("bf16")] == ["psnr >= 30"]
    assert suite.config("bf16").options.precision.dtype == "bfloat16"


def test_per_config_thresholds_replace_suite_wide_ones(write_suite, registry):
    path = write_suite(
        """
        pipeline = "builtin:tiny-sd"
        reference = "a"
        prompts = ["x"]
        [metrics]
        psnr = {}
        ssim = {}
        [thresholds]
        psnr = { min = 30 }
        ssim = { min = 0.9 }
        [configs.a]
        [configs.b]
        thresholds.psnr = [{ min = 20 }, { stat = "worst", min = 15 }]
        [configs.c]
        thresholds.psnr = false
        """
    )
    suite = load_suite(path, registry)
    assert [t.describe() for t in suite.thresholds_for("a")] == ["psnr >= 30", "ssim >= 0.9"]
    assert [t.describe() for t in suite.thresholds_for("b")] == ["psnr >= 20", "worst psnr >= 15", "ssim >= 0.9"]
    assert [t.describe() for t in suite.thresholds_for("c")] == ["ssim >= 0.9"]


def test_prompts_file_skips_comments_and_blank_lines(write_suite, registry):
    path = write_suite(
        """
        pipeline = "builtin:tiny-sd"
        reference = "a"
        prompts_file = "prompts/p.txt"
        [configs.a]
        """,
        files={"prompts/p.txt": "# comment\n\nfirst prompt\n  second prompt  \n"},
    )
    assert load_suite(path, registry).prompts == ("first prompt", "second prompt")


BASE = """
pipeline = "builtin:tiny-sd"
reference = "fp32"
prompts = ["x"]
[configs.fp32]
"""


@pytest.mark.parametrize(
    ("body", "files", "expected"),
    [
        ("pipeline = \n", {}, "malformed TOML"),
        (
            BASE + "dtyp = 'float16'\n",
            {},
            "configs.fp32.dtyp: Unknown key for kind 'precision' 'dtyp'. Did you mean: dtype?",
        ),
        (
            BASE.replace('prompts = ["x"]', 'prompts = ["x"]\nstep = 3'),
            {},
            "step: Unknown key 'step'. Did you mean: steps?",
        ),
        (BASE + "kind = 'int9'\n", {}, "configs.fp32.kind: Unknown configuration kind 'int9'"),
        (BASE + "dtype = 'float8'\n", {}, "configs.fp32.dtype: Unknown value 'float8'. Did you mean: float32?"),
        (BASE.replace('prompts = ["x"]', 'prompts_file = "missing.txt"'), {}, "prompts_file: prompt file not found"),
        (
            BASE.replace('reference = "fp32"', 'reference = "fp31"'),
            {},
            "reference: Unknown configuration 'fp31'. Did you mean: fp32?",
        ),
        (
            BASE.replace("builtin:tiny-sd", "builtin:tiny-sdd"),
            {},
            "pipeline: Unknown built-in pipeline 'tiny-sdd'. Did you mean: tiny-sd?",
        ),
        (
            BASE.replace('prompts = ["x"]', 'prompts = ["x"]\nsteps = "four"'),
            {},
            "steps: expected an integer, got string 'four'",
        ),
        (BASE.replace('prompts = ["x"]', 'prompts = ["x"]\nwidth = 65'), {}, "width: must be a positive multiple of 8"),
        (BASE.replace('prompts = ["x"]', 'prompts = ["x"]\nseeds = [1, 1]'), {}, "seeds: seeds must be unique"),
        (BASE + "[metrics]\npsrn = {}\n", {}, "metrics.psrn: Unknown metric 'psrn'. Did you mean: psnr?"),
        (BASE + "[thresholds]\nssim = { min = 1 }\n", {}, "thresholds.ssim: Unknown metric 'ssim'"),
        (BASE + "[thresholds]\npsnr = { mni = 1 }\n", {}, "thresholds.psnr.mni: Unknown key 'mni'. Did you mean: min?"),
        (
            BASE + "[thresholds]\npsnr = { stat = 'p75', min = 1 }\n",
            {},
            "thresholds.psnr.stat: Unknown statistic 'p75'",
        ),
        (
            BASE + "[thresholds]\npsnr = { stat = 'p25', max_drop = 1 }\n",
            {},
            "thresholds.psnr.stat: stat = 'p25' bounds the metric itself",
        ),
        (
            BASE + "[thresholds]\npsnr = { stat = 'worst', min = 1, basis = 'interval' }\n",
            {},
            "basis = 'interval' judges the mean",
        ),
        (
            BASE + "[thresholds]\npsnr = { max_drop = 1, vs = 'fp8' }\n",
            {},
            "thresholds.psnr.vs: Unknown configuration 'fp8'",
        ),
        (BASE + "transform = 'not a spec'\n", {}, "configs.fp32.transform: expected 'package.module:function'"),
        (
            BASE + "component_dtypes = { vae = 'half' }\n",
            {},
            "configs.fp32.component_dtypes.vae: expected one of float32",
        ),
        (BASE.replace("[configs.fp32]", "[configs.reference]"), {}, "'reference' is reserved"),
        ('pipeline = "builtin:tiny-sd"\nreference = "a"\nprompts = ["x"]\n', {}, "configs: at least one configuration"),
        (BASE.replace("builtin:tiny-sd", "not a path or id"), {}, "pipeline: cannot tell what"),
    ],
)
def test_bad_suites_give_one_clear_error(write_suite, registry, body, files, expected):
    path = write_suite(body, files=files)
    with pytest.raises(InputError) as caught:
        load_suite(path, registry)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert expected in message, message


def test_missing_suite_file(tmp_path, registry):
    with pytest.raises(InputError, match="file not found"):
        load_suite(tmp_path / "nope.toml", registry)


def test_validate_cli_exit_codes(write_suite, capsys):
    good = write_suite()
    assert main(["validate", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = write_suite(BASE + "dtyp = 'float16'\n", name="bad")
    assert main(["validate", str(bad)]) == 2
    captured = capsys.readouterr()
    assert "Did you mean: dtype?" in captured.err
    assert "Traceback" not in captured.err


def test_validate_checks_local_pipeline_folder_exists(write_suite, capsys):
    path = write_suite(BASE.replace("builtin:tiny-sd", "./models/missing"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no diffusers pipeline folder" in err and "model_index.json" in err


def test_validate_checks_transform_imports(write_suite, capsys):
    path = write_suite(BASE + "transform = 'no_such_module:fn'\n")
    assert main(["validate", str(path)]) == 2
    assert "cannot import module 'no_such_module'" in capsys.readouterr().err
    ok = write_suite(
        BASE + "transform = 'my_transforms:identity'\n",
        name="ok",
        files={"my_transforms.py": "def identity(pipe):\n    return pipe\n"},
    )
    assert main(["validate", str(ok)]) == 0
    missing = write_suite(
        BASE + "transform = 'my_transforms:nothing'\n", name="missing", files={"my_transforms.py": "x = 1\n"}
    )
    assert main(["validate", str(missing)]) == 2


def test_shipped_suites_validate():

    suites = sorted(REPO.joinpath("suites").glob("*.toml"))
    assert suites, "no shipped suites found"
    for path in suites:
        assert main(["validate", str(path)]) == 0, path


def test_comparisons_needed_follows_vs_transitively(write_suite, registry):
    path = write_suite(
        """
        name = "chain"
        pipeline = "builtin:tiny-sd"
        reference = "fp32"
        prompts = ["a red circle"]
        seeds = [0]

        [metrics]
        ssim = {}

        [thresholds]
        ssim = { min = 0.5 }

        [configs.fp32]
        dtype = "float32"

        [configs.fp16]
        dtype = "float16"

        [configs.bf16]
        dtype = "bfloat16"
        thresholds.ssim = { max_drop = 0.1, vs = "fp16" }

        [configs.q8]
        dtype = "bfloat16"
        thresholds.ssim = { max_drop = 0.1, vs = "bf16" }
        """,
        name="chain",
    )
    suite = load_suite(path, registry)
    assert suite.comparisons_needed(["q8"]) == {
        "bf16": "the ssim gate of 'q8' compares with it",
        "fp16": "the ssim gate of 'bf16' compares with it",
    }
    assert suite.comparisons_needed(["q8", "bf16", "fp16"]) == {}
    assert suite.comparisons_needed(["fp32"]) == {}
