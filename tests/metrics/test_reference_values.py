"""The reference value cache: values come back as stored, and anything doubtful reads as absent."""

from __future__ import annotations

import json
import math

from harness.metrics.reference_values import ReferenceValueCache

DIGEST = "a" * 64


def test_values_come_back_as_stored_including_non_finite_ones(tmp_path):
    cache = ReferenceValueCache(tmp_path)
    values = {"p000-s0": 31.25, "p001-s0": math.nan, "p002-s0": math.inf}
    cache.store(DIGEST, "clip_score", "id-1", values)
    loaded = cache.load(DIGEST, "clip_score", "id-1", ["p002-s0", "p000-s0", "p001-s0"])
    assert loaded is not None
    assert loaded["p000-s0"] == 31.25 and math.isnan(loaded["p001-s0"]) and loaded["p002-s0"] == math.inf
    assert list(loaded) == ["p002-s0", "p000-s0", "p001-s0"]  # in the order asked for


def test_another_id_digest_or_a_missing_key_is_a_miss(tmp_path):
    cache = ReferenceValueCache(tmp_path)
    cache.store(DIGEST, "clip_score", "id-1", {"p000-s0": 1.0})
    assert cache.load(DIGEST, "clip_score", "id-2", ["p000-s0"]) is None
    assert cache.load("b" * 64, "clip_score", "id-1", ["p000-s0"]) is None
    assert cache.load(DIGEST, "clip_score", "id-1", ["p000-s0", "p001-s0"]) is None
    assert cache.load(DIGEST, "clip_score", "id-1", ["p000-s0"]) == {"p000-s0": 1.0}


def test_a_truncated_or_foreign_file_is_a_miss(tmp_path):
    cache = ReferenceValueCache(tmp_path)
    path = cache.path(DIGEST, "m", "id")
    path.parent.mkdir(parents=True)
    path.write_text('{"id": "id", "values": {"p000-s0": 1.')
    assert cache.load(DIGEST, "m", "id", ["p000-s0"]) is None
    path.write_text(json.dumps({"id": "id", "values": {"p000-s0": "1.0"}}))
    assert cache.load(DIGEST, "m", "id", ["p000-s0"]) is None
    path.write_text(json.dumps({"id": "id", "values": {"p000-s0": True}}))
    assert cache.load(DIGEST, "m", "id", ["p000-s0"]) is None
    path.write_text(json.dumps({"id": "other", "values": {"p000-s0": 1.0}}))  # two ids on one file name
    assert cache.load(DIGEST, "m", "id", ["p000-s0"]) is None


def test_storing_leaves_no_temporary_file(tmp_path):
    cache = ReferenceValueCache(tmp_path)
    cache.store(DIGEST, "m", "id", {"k": 1.0})
    cache.store(DIGEST, "m", "id", {"k": 2.0})
    assert [p.name for p in (tmp_path / "reference_values").iterdir()] == [cache.path(DIGEST, "m", "id").name]
    assert cache.load(DIGEST, "m", "id", ["k"]) == {"k": 2.0}
