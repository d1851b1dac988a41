"""Writers of one file at once each succeed, and a reader never sees half a file."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import atomic
from harness.kinds.gguf.file import open_gguf, write_gguf
from harness.metrics.features import extractor_for
from harness.metrics.features.base import FeatureCache


def at_once(count: int, work) -> list[BaseException]:
    """Run ``work(i)`` on ``count`` threads released together; the exceptions they raised."""
    barrier, errors = threading.Barrier(count), []

    def run(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as error:  # collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "entry.json"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError), atomic.replacing(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_each_writer_has_its_own_temporary_name(tmp_path):
    names: list[Path] = []
    at_once(4, lambda _: names.append(atomic.temporary_path(tmp_path / "x")))
    assert len(set(names)) == 4 and all(name.name.startswith(".x.") for name in names)


def test_gguf_files_written_by_several_writers_at_once(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.Linear(512, 256))
    target = tmp_path / "cache" / "unet.gguf"
    errors = at_once(6, lambda _: write_gguf(model, target, "Q4_0"))
    assert not errors, errors
    reader = open_gguf(target)
    assert len(reader.tensors) == 4
    assert [p.name for p in target.parent.iterdir()] == ["unet.gguf"]


def test_reference_features_stored_by_several_runs_at_once(tmp_path):
    extractor = extractor_for({"features": "tiny"})
    features = np.random.default_rng(0).normal(size=(500, 64)).astype(np.float32)
    cache = FeatureCache(tmp_path)
    errors = at_once(6, lambda _: cache.store("abc", extractor, features))
    assert not errors, errors
    np.testing.assert_array_equal(np.load(cache.path("abc", extractor)), features)
