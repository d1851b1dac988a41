"""Range files: round trip, and one clear error per kind of bad line."""

from __future__ import annotations

import pytest

from harness.errors import InputError
from harness.kinds.int8.ranges import Range, check_names, parse_ranges, read_ranges, scaled, write_ranges


def test_round_trip_is_exact(tmp_path):
    ranges = {
        "vae.decoder.conv_in": Range(-53.71434392929077, 54.806847515107144),
        "vae.decoder.conv_out": Range(-1e-7, 3.0),
    }
    path = tmp_path / "r.txt"
    write_ranges(ranges, path)
    assert path.read_text().splitlines()[0] == "vae.decoder.conv_in,-53.71434392929077,54.806847515107144"
    assert read_ranges(path) == ranges


def test_comments_and_blank_lines_are_allowed(tmp_path):
    assert parse_ranges("# made by hand\n\na,0,1\n  b , -1 , 2 \n", tmp_path / "r.txt") == {
        "a": Range(0, 1),
        "b": Range(-1, 2),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,0\n", "line 1: expected 'name,min,max'"),
        ("a,0,1\nb,zero,1\n", "line 2: min and max must be numbers"),
        ("a,2,1\n", "line 1: a: min 2 is greater than max 1"),
        ("a,0,inf\n", "must be finite"),
        ("a,0,1\na,0,2\n", "line 2: a appears twice"),
        (",0,1\n", "line 1: expected 'name,min,max'"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_ranges(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="range file not found"):
        read_ranges(tmp_path / "none.txt")


def test_names_must_match_the_model(tmp_path):
    ranges = {"a": Range(0, 1), "b": Range(0, 1), "zzz": Range(0, 1)}
    check_names({"a": Range(0, 1)}, ["a"], tmp_path)
    with pytest.raises(InputError) as caught:
        check_names(ranges, ["a", "b", "c"], tmp_path / "r.txt")
    message = str(caught.value)
    assert "1 names match no quantized layer of this model (first: zzz)" in message
    assert "1 quantized layers have no range (first: c)" in message


def test_merge_and_scale():
    assert Range(-1, 1).merged(Range(-2, 0.5)) == Range(-2, 1)
    assert scaled({"a": Range(-2, 4)}, 0.1) == {"a": Range(-0.2, 0.4)}
