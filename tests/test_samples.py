"""FileWriter: background PNG writes give the same files as inline ones, and never hide a failure."""

from __future__ import annotations

import numpy as np
import pytest

from harness.samples import FileWriter, inspect_float_image, is_blank, load_png, save_png


def images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (48, 40, 3), dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize("workers", [0, 3])
def test_written_files_equal_the_arrays(tmp_path, workers):
    writer = FileWriter(workers)
    arrays = images(12)
    for index, array in enumerate(arrays):
        writer.submit(save_png, array, tmp_path / "sub" / f"{index}.png")
    writer.drain()
    for index, array in enumerate(arrays):
        assert np.array_equal(load_png(tmp_path / "sub" / f"{index}.png"), array)
    writer.close()


def test_background_failure_is_raised_at_drain(tmp_path):
    writer = FileWriter(2)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    writer.submit(save_png, images(1)[0], tmp_path / "fine.png")
    writer.submit(save_png, images(1)[0], blocker / "x.png")  # its folder cannot be made
    with pytest.raises(OSError):
        writer.drain()
    assert (tmp_path / "fine.png").is_file()  # the other write still happened
    writer.drain()  # a failure is reported once
    writer.close()


def test_close_finishes_queued_writes(tmp_path):
    writer = FileWriter(1)
    for index, array in enumerate(images(6)):
        writer.submit(save_png, array, tmp_path / f"{index}.png")
    writer.close()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"{i}.png" for i in range(6)]


def test_inline_failure_is_raised_at_submit(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        FileWriter(0).submit(save_png, images(1)[0], blocker / "x.png")


def test_is_blank():
    assert is_blank(np.full((8, 8, 3), 200, np.uint8))
    assert not is_blank(np.arange(192, dtype=np.uint8).reshape(8, 8, 3))


def test_is_blank_agrees_with_the_rule_for_generated_images():
    rng = np.random.default_rng(7)
    for spread in (0, 1, 2, 3, 4, 6, 255):  # around the one-level boundary, and far from it
        for _ in range(20):
            image = np.clip(100 + rng.integers(-spread, spread + 1, (16, 16, 3)), 0, 255).astype(np.uint8)
            assert is_blank(image) == inspect_float_image(image / 255.0).blank
