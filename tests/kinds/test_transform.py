"""User transforms: spec form, import errors, bad return values."""

from __future__ import annotations

import pytest

from harness.errors import InputError, Where
from harness.kinds.transform import TransformError, apply_transform, parse_transform, resolve_transform


def test_spec_form():
    where = Where("s.toml", "configs.a")
    assert parse_transform("pkg.mod:fn", where) == "pkg.mod:fn"
    for bad in ("pkg.mod", ":fn", "pkg mod:fn", "pkg.mod:"):
        with pytest.raises(InputError, match="configs.a.transform: expected 'package.module:function'"):
            parse_transform(bad, where)


def test_resolve_from_suite_folder(tmp_path):
    (tmp_path / "user_hooks.py").write_text("def twice(x):\n    return x\n\nvalue = 3\n")
    assert resolve_transform("user_hooks:twice", tmp_path)(5) == 5
    with pytest.raises(InputError, match="is not callable"):
        resolve_transform("user_hooks:value", tmp_path)
    with pytest.raises(InputError, match="has no attribute 'missing'"):
        resolve_transform("user_hooks:missing", tmp_path)
    with pytest.raises(InputError, match="cannot import module 'nope_nope'"):
        resolve_transform("nope_nope:fn", tmp_path)


def test_module_that_raises_on_import(tmp_path):
    (tmp_path / "exploding_hooks.py").write_text("raise ValueError('bad config')\n")
    with pytest.raises(InputError, match="raised ValueError: bad config"):
        resolve_transform("exploding_hooks:fn", tmp_path)


def test_return_value_must_be_a_pipeline():
    class FakePipe:
        components: dict = {}

        def __call__(self):
            return None

    pipe = FakePipe()
    assert apply_transform(lambda p: p, "m:f", pipe) is pipe
    with pytest.raises(TransformError, match="returned NoneType"):
        apply_transform(lambda p: None, "m:f", pipe)
    with pytest.raises(TransformError, match="returned int"):
        apply_transform(lambda p: 3, "m:f", pipe)


def test_two_suites_with_a_module_of_the_same_name(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "hooks_same_name.py").write_text("def which(pipe):\n    return 'first'\n")
    (second / "hooks_same_name.py").write_text("def which(pipe):\n    return 'second'\n")
    assert resolve_transform("hooks_same_name:which", first)(None) == "first"
    assert resolve_transform("hooks_same_name:which", second)(None) == "second"
