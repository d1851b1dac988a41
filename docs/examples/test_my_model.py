"""Gate a pipeline built in Python, in pytest: copy this file beside your tests and change the two functions.

    pytest test_my_model.py -v

The harness's pytest plugin (installed with the harness) provides the ``harness_run`` fixture: it runs a suite
through the same runner, sample cache, references and gates as ``harness run`` and hands back the outcome (one run
a session, however many tests read it). As shipped, the shapes world (the harness's trained built-in) stands in for
your model and float16-rounded UNet weights for your backend, so the file runs anywhere in about a minute on a CPU.
"""

from __future__ import annotations

import pytest

from harness import api

PROMPTS = [  # held-out captions of the shapes world; yours: prompts your users write
    "a blue square in the center and a yellow star on the left",
    "a purple circle in the center and a green triangle at the bottom",
]


def reference_pipeline():
    """The model at the precision you trust, e.g.
    ``diffusers.FluxPipeline.from_pretrained("black-forest-labs/FLUX.1-dev", torch_dtype=torch.bfloat16)``."""
    return api.builtin("shapes")


def my_pipeline():
    """The same model through your backend (a torchao ``quantize_`` call, a transformer of another runtime, a
    pipeline loaded with a ``PipelineQuantizationConfig``). Here: the UNet's weights rounded to float16."""
    import torch

    pipe = api.builtin("shapes")
    with torch.no_grad():
        for parameter in pipe.unet.parameters():
            parameter.copy_(parameter.half().float())
    return pipe


SUITE = api.Suite(
    name="my_model",
    pipeline=reference_pipeline,  # an object or a function making one; "hub:org/name" or a folder work too
    prompts=PROMPTS,
    seeds=[0, 1],
    steps=8,
    width=64,
    height=64,
    guidance=5.0,
    reference_images="live",  # generate the reference in the same run; "blessed" after `api.bless(SUITE)`
    metrics={"psnr": {}, "ssim": {}},
    thresholds={"psnr": [{"min": 35}, {"stat": "worst", "min": 25}], "ssim": {"min": 0.95}},
    configs={"trusted": {}, "mine": api.pipeline(my_pipeline)},  # the first is the reference
)


@pytest.fixture(scope="module")
def outcome(harness_run):
    return harness_run(SUITE, device="auto")


def test_every_gate_holds(outcome):
    failures = [f"{c.config}: {c.check}: {c.reason}" for c in outcome.failures()]
    assert outcome.passed, "\n".join([*failures, f"report: {outcome.report}"])


def test_no_image_is_broken(outcome):
    worst = outcome.check("mine", "worst psnr >= 25")
    assert worst is not None and worst.status == "pass", worst


def test_mean_psnr_is_high(outcome):
    assert outcome.summary("mine", "psnr").mean >= 40, outcome.report
