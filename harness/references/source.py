"""Where a run's reference images come from: the blessed store, or the reference configuration run now.

``blessed`` (the default) judges every configuration against images stored once with
``harness bless``. They are exact on the machine that blessed them; on another CPU model
or GPU even the reference configuration reproduces them only to 94-97 dB, and a
quantized configuration's margin is then measured partly against that machine
difference.

``live`` generates the reference configuration in the same run (same machine, same
libraries, same process) and judges every configuration against those images, so a
margin measures the configuration alone. The blessed images, where present and current,
are still compared with the live ones: that comparison (PSNR per sample, mean and worst,
identical count) is the drift of the reference itself, recorded in results.json and shown
in every report, but it gates nothing. A live reference that errors or gives NaN or blank
images ends the run (exit 1): nothing else can be judged against it.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import InputError
from harness.kinds.base import ConfigKind
from harness.plan.suite import Suite
from harness.references import store as references
from harness.references.store import Manifest, ReferenceImage, ReferenceSet
from harness.results import STATUS_OK, RunResult
from harness.samples import sample_key, sha256_file

BLESSED, LIVE = "blessed", "live"
MODES = (BLESSED, LIVE)


class ReferenceFailure(RuntimeError):
    """The live reference configuration could not produce healthy images."""


class ReferenceSource:
    """The blessed references (verified now) and, in ``live`` mode, the ones this run generates."""

    def __init__(self, suite: Suite, mode: str, kinds: Mapping[str, ConfigKind]):
        if mode not in MODES:
            raise InputError(f"references {mode!r}: expected one of {', '.join(MODES)}", file=suite.path)
        self.suite, self.mode, self.kinds = suite, mode, kinds
        self.blessed: ReferenceSet | None = None
        self.warnings: list[str] = []
        if mode == BLESSED:
            self.blessed = references.verify(suite, kinds)
            return
        try:
            self.blessed = references.verify(suite, kinds)
        except InputError as error:
            self.warnings.append(f"live references: the blessed set cannot be compared, drift not measured ({error})")

    @property
    def live(self) -> bool:
        return self.mode == LIVE

    @property
    def digest(self) -> str:
        """The blessed set's digest; empty until a live set exists (metrics then cache nothing yet)."""
        return self.blessed.manifest.digest if self.blessed is not None and not self.live else ""

    def check_pipeline(self, fingerprint: str) -> None:
        """Blessed mode refuses other weights; live mode only warns (the drift then shows the difference)."""
        if self.blessed is None:
            return
        try:
            references.check_pipeline(self.blessed, fingerprint)
        except InputError as error:
            if not self.live:
                raise
            self.warnings.append(f"live references: {error}")

    def environment_warnings(self, described: Mapping[str, Any]) -> list[str]:
        """Machine and library differences from the blessing; in live mode the measured drift says more."""
        if self.blessed is None or self.live:
            return []
        return references.drift(self.blessed.manifest.environment, described)

    def start(self, run_dir: Path) -> None:
        """Copy blessed references into the run folder at once, so even a crashed run is a complete artifact."""
        if not self.live:
            assert self.blessed is not None
            copy_references(self.blessed, run_dir / "images" / "reference")

    def resolve(self, result: RunResult, run_dir: Path, environment: Mapping[str, Any]) -> ReferenceSet:
        """The set every configuration is scored against (in ``run_dir/images/reference`` too)."""
        if not self.live:
            assert self.blessed is not None
            return self.blessed
        chosen = live_set(self.suite, self.kinds, result, run_dir, environment)
        copy_references(chosen, run_dir / "images" / "reference")
        return chosen

    def describe(self, chosen: ReferenceSet) -> dict[str, Any]:
        """What results.json records under ``references``: the source, and in live mode the drift."""
        manifest = chosen.manifest
        record: dict[str, Any] = {
            "source": self.mode,
            "config": manifest.reference_config,
            "device_class": manifest.environment.get("device_class"),
            "created": manifest.created,
        }
        if self.live:
            record["blessed"] = drift(chosen, self.blessed) if self.blessed is not None else None
        return record


def live_set(
    suite: Suite, kinds: Mapping[str, ConfigKind], result: RunResult, run_dir: Path, environment: Mapping[str, Any]
) -> ReferenceSet:
    """The reference configuration's images from this run, as a reference set (refused if unhealthy)."""
    name = suite.reference
    config = result.config(name)
    if config is None or config.status != STATUS_OK:
        why = "did not run" if config is None else f"{config.status}: {config.message}"
        raise ReferenceFailure(f"the live reference configuration {name!r} {why}; nothing can be judged against it")
    unhealthy = [s.key for s in config.samples if s.nonfinite_fraction > 0 or s.blank]
    if unhealthy:
        raise ReferenceFailure(
            f"the live reference configuration {name!r} gave NaN/Inf or blank images ({', '.join(unhealthy)}); "
            "nothing can be judged against it"
        )
    by_key = {s.key: s for s in config.samples}
    images = []
    for prompt_index, prompt, seed in suite.samples():
        key = sample_key(prompt_index, seed)
        file = str(by_key[key].image)
        images.append(ReferenceImage(key, prompt_index, prompt, seed, file, sha256_file(run_dir / file)))
    manifest = Manifest(
        suite=suite.name,
        reference_config=name,
        reference_hash=references.reference_hash(suite, kinds),
        inputs=references.reference_inputs(suite, kinds),
        pipeline_fingerprint="",  # held in memory only: this run's own pipeline
        environment=dict(environment),
        created=result.started,
        images=tuple(images),
    )
    return ReferenceSet(run_dir, manifest)


def drift(live: ReferenceSet, blessed: ReferenceSet) -> dict[str, Any]:
    """How far the blessed images are from the live ones: PSNR per sample (inf where identical)."""
    values = {key: pixel_psnr(live.image(key), blessed.image(key)) for key in live.sample_keys()}
    finite = [value for value in values.values() if math.isfinite(value)]
    worst = min(values, key=lambda key: values[key])
    return {
        "n": len(values),
        "identical": len(values) - len(finite),
        "psnr_mean": float(np.mean(finite)) if finite else math.inf,
        "psnr_min": values[worst],
        "worst": worst,
        "device_class": blessed.manifest.environment.get("device_class"),
        "created": blessed.manifest.created,
    }


def pixel_psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB of two 8-bit images (inf when identical)."""
    error = np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return math.inf if error == 0 else float(10 * np.log10(255.0**2 / error))


def copy_references(refs: ReferenceSet, target: Path) -> None:
    """Copy the reference images into the run folder, so it is a complete artifact on its own."""
    target.mkdir(parents=True, exist_ok=True)
    for key in refs.sample_keys():
        source = refs.path(key)
        if source.resolve() != (target / f"{key}.png").resolve():
            shutil.copyfile(source, target / f"{key}.png")
