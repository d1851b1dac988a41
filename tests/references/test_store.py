"""Blessing and verifying references: missing, stale and tampered references are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.errors import InputError
from harness.plan.suite import load_suite
from harness.references.store import MANIFEST, bless, check_pipeline, describe_changes, reference_hash, verify
from harness.registry import build_registry
from harness.samples import sample_key, save_png, sha256_file


def _bless_fake(suite):
    rng = np.random.default_rng(0)
    images = {sample_key(i, s): rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for i, _, s in suite.samples()}
    return bless(
        suite, build_registry().kinds, images, "weights-abc", {"device": "cpu"}, "2026-11-22T00:00:00+00:00"
    ), images


def test_bless_writes_images_and_manifest(write_suite, registry):
    suite = load_suite(write_suite(), registry)
    manifest, images = _bless_fake(suite)
    data = json.loads((suite.references_dir / MANIFEST).read_text())
    assert data["reference_hash"] == reference_hash(suite, registry.kinds)
    assert data["inputs"]["steps"] == 2 and data["inputs"]["prompts"] == list(suite.prompts)
    assert data["pipeline_fingerprint"] == "weights-abc"
    for entry in manifest.images:
        assert sha256_file(suite.references_dir / entry.file) == entry.sha256
    refs = verify(suite, registry.kinds)
    assert sorted(refs.sample_keys()) == sorted(images)
    np.testing.assert_array_equal(refs.image("p000-s0"), images["p000-s0"])


def test_missing_references_are_refused(write_suite, registry):
    suite = load_suite(write_suite(), registry)
    with pytest.raises(InputError, match="no blessed references: run `python -m harness bless SUITE`"):
        verify(suite, registry.kinds)


def test_stale_references_name_what_changed(write_suite, registry):
    path = write_suite()
    _bless_fake(load_suite(path, registry))
    path.write_text(path.read_text().replace("steps = 2", "steps = 3"))
    with pytest.raises(InputError, match=r"stale.*steps 2 -> 3"):
        verify(load_suite(path, registry), registry.kinds)


def test_changing_the_reference_configuration_makes_references_stale(write_suite, registry):
    path = write_suite()
    _bless_fake(load_suite(path, registry))
    path.write_text(path.read_text().replace('[configs.fp32]\ndtype = "float32"', '[configs.fp32]\ndtype = "float16"'))
    with pytest.raises(InputError, match="reference_config changed"):
        verify(load_suite(path, registry), registry.kinds)


def test_tampered_reference_is_refused(write_suite, registry):
    suite = load_suite(write_suite(), registry)
    _bless_fake(suite)
    target = suite.references_dir / "p001-s0.png"
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(target)
    with pytest.raises(InputError, match="modified after blessing") as caught:
        verify(suite, registry.kinds)
    assert "p001-s0.png" in str(caught.value)


def test_deleted_reference_and_corrupt_manifest(write_suite, registry):
    suite = load_suite(write_suite(), registry)
    _bless_fake(suite)
    (suite.references_dir / "p000-s0.png").unlink()
    with pytest.raises(InputError, match=r"p000-s0\.png listed in the manifest is missing"):
        verify(suite, registry.kinds)
    (suite.references_dir / MANIFEST).write_text("{not json")
    with pytest.raises(InputError, match="corrupt manifest"):
        verify(suite, registry.kinds)


def test_other_weights_are_refused(write_suite, registry):
    suite = load_suite(write_suite(), registry)
    _bless_fake(suite)
    refs = verify(suite, registry.kinds)
    check_pipeline(refs, "weights-abc")
    with pytest.raises(InputError, match="weights differ"):
        check_pipeline(refs, "weights-xyz")


def test_describe_changes():
    assert (
        describe_changes({"steps": 2, "prompts": ["a"]}, {"steps": 4, "prompts": ["b"]})
        == "prompts changed; steps 2 -> 4"
    )


def test_drift_names_what_differs_from_the_blessing():
    from harness.references.store import drift

    blessed = {"device_class": "cpu: Intel Xeon, 2 threads", "libraries": {"torch": "2.14.1", "transformers": "5.23.0"}}
    assert drift(blessed, blessed) == []
    here = {"device_class": "cpu: AMD EPYC, 2 threads", "libraries": {"torch": "2.14.1", "transformers": "5.24.0"}}
    device, libraries = drift(blessed, here)
    assert "blessed on cpu: Intel Xeon, 2 threads, this run is on cpu: AMD EPYC, 2 threads" in device
    assert libraries == "library versions differ from the blessing: transformers 5.23.0 -> 5.24.0"
    # a package the blessing did not record says nothing; another CPU half path is named
    here = {**blessed, "libraries": {**blessed["libraries"], "optimum-quanto": "0.2.7"}}
    assert drift(blessed, here) == []
    emulated = {"float16": {"conv": "float32-accumulate", "linear": "native"}}
    native = {"float16": {"conv": "native", "linear": "native"}}
    (half,) = drift({**blessed, "cpu_half": native}, {**blessed, "cpu_half": emulated})
    assert "half precision taking" in half and "float32-accumulate" in half


def test_bless_copies_png_files_it_is_given(write_suite, registry, tmp_path):
    suite = load_suite(write_suite(), registry)
    rng = np.random.default_rng(1)
    files, images = {}, {}
    for index, _, seed in suite.samples():
        key = sample_key(index, seed)
        images[key] = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        files[key] = tmp_path / "generated" / f"{key}.png"
        save_png(images[key], files[key])
    manifest = bless(
        suite, build_registry().kinds, files, "weights-abc", {"device": "cpu"}, "2026-12-01T00:00:00+00:00"
    )
    refs = verify(suite, registry.kinds)
    for entry in manifest.images:
        assert entry.sha256 == sha256_file(files[entry.key])  # the file itself, byte for byte
        np.testing.assert_array_equal(refs.image(entry.key), images[entry.key])
