"""Calibration percentiles against numpy; running min/max; layers that never run are an error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.errors import InputError
from harness.kinds.int8.calibrate import RangeCollector, percentile


@pytest.mark.parametrize("q", [0.0, 0.1, 1.0, 50.0, 99.9, 100.0])
def test_percentile_matches_numpy(q):
    values = torch.from_numpy(np.random.default_rng(0).standard_t(3, size=(7, 11, 13))).float()
    assert percentile(values, q) == pytest.approx(float(np.percentile(values.numpy(), q)), rel=1e-5, abs=1e-6)


def test_running_min_max_across_calls():
    layer = torch.nn.Linear(4, 2)
    with RangeCollector({"l": layer}, 0.0) as collector:
        layer(torch.tensor([[0.0, 1.0, 2.0, 3.0]]))
        layer(torch.tensor([[-5.0, 0.0, 0.0, 1.0]]))
    result = collector.result()
    assert (result["l"].low, result["l"].high) == (-5.0, 3.0)
    assert not layer._forward_pre_hooks  # hooks removed


def test_percentile_ranges_ignore_outliers():
    layer = torch.nn.Linear(1, 1)
    x = torch.cat([torch.linspace(-1, 1, 10000), torch.tensor([1000.0])]).reshape(-1, 1)
    with RangeCollector({"l": layer}, 0.1) as collector:
        layer(x)
    assert collector.result()["l"].high < 2.0


def test_layers_that_never_ran_are_an_input_error():
    used, unused = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with RangeCollector({"vae.decoder.a": used, "vae.encoder.b": unused}, 0.1) as collector:
        used(torch.ones(1, 2))
    with pytest.raises(InputError, match=r"1 layers never ran during calibration \(first: vae.encoder.b\)"):
        collector.result()
