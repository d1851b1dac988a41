"""Fake quantization against hand computations on small tensors."""

from __future__ import annotations

import numpy as np
import torch

from harness.kinds.int8.fakequant import (
    ActivationQuant,
    fake_quantize_activation,
    fake_quantize_weight,
    quantize_weight,
    sqnr_db,
)


def test_activation_quant_parameters_by_hand():
    quant = ActivationQuant.from_range(-1.0, 3.0)
    assert quant.scale == 4.0 / 255.0
    assert quant.zero_point == round(1.0 / (4.0 / 255.0)) == 64


def test_fake_activation_by_hand():
    quant = ActivationQuant.from_range(-1.0, 3.0)
    x = torch.tensor([-5.0, -1.0, 0.0, 0.01, 1.0, 2.99, 10.0])
    scale, zero = 4.0 / 255.0, 64
    expected = []
    for value in x.tolist():
        code = min(255, max(0, round(value / scale) + zero))  # Python round is half-to-even like torch.round
        expected.append((code - zero) * scale)
    np.testing.assert_allclose(fake_quantize_activation(x, quant).numpy(), expected, rtol=1e-6)
    # clamped at the ends of the range, and zero is exact
    assert fake_quantize_activation(torch.tensor([0.0]), quant).item() == 0.0
    assert abs(fake_quantize_activation(torch.tensor([-5.0]), quant).item() - (-64 * scale)) < 1e-6


def test_weights_symmetric_per_output_channel():
    weight = torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.1, -0.3]])
    codes, scales = quantize_weight(weight)
    np.testing.assert_allclose(scales.flatten().numpy(), [1.0 / 127.0, 2.0 / 127.0], rtol=1e-6)  # float32 tensors
    assert codes.dtype == torch.int8
    assert codes.tolist() == [
        [round(0.5 * 127), -127, round(0.25 * 127)],
        [127, round(0.1 / (2 / 127)), round(-0.3 / (2 / 127))],
    ]
    np.testing.assert_allclose(fake_quantize_weight(weight).numpy(), (codes.float() * scales).numpy())


def test_conv_weight_scales_per_output_channel():
    weight = torch.randn(4, 3, 3, 3)
    codes, scales = quantize_weight(weight)
    assert scales.shape == (4, 1, 1, 1) and codes.abs().amax(dim=(1, 2, 3)).tolist() == [127] * 4


def test_sqnr():
    reference = torch.ones(100)
    assert sqnr_db(reference, reference) == float("inf")
    assert abs(sqnr_db(reference, reference * 1.1) - 20.0) < 1e-5  # 1.1 is not exact in float32
