"""A configuration kind's own preparation step (ConfigKind.prepare) outside a run."""

from __future__ import annotations

import pytest

from harness.errors import InputError
from harness.plan.suite import load_suite
from harness.prepare import prepare_config
from harness.registry import build_registry


def test_a_kind_without_a_preparation_step_is_an_input_error(write_suite, tmp_path):
    suite = load_suite(write_suite(), build_registry())
    with pytest.raises(
        InputError, match=r"'precision' configuration: that kind has nothing to prepare \(kinds that do: int8\)"
    ):
        prepare_config(suite, build_registry(), "bf16", "cpu", tmp_path / "cache")
    with pytest.raises(InputError, match="Unknown configuration 'bf61'. Did you mean: bf16?"):
        prepare_config(suite, build_registry(), "bf61", "cpu", tmp_path / "cache")
