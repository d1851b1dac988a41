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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import InputError
from harness.plan.suite import Suite
from harness.references import store as references
from harness.references.store import Manifest, ReferenceImage, ReferenceSet
from harness.results import STATUS_OK, RunResult, now, write_results
from harness.samples import sample_key, sha256_file

if TYPE_CHECKING:
    from harness.judge.sequential import ReferenceView
    from harness.metrics.base import Metric
    from harness.score.scoring import ReferenceScoring

BLESSED, LIVE = "blessed", "live"
MODES = (BLESSED, LIVE)


class ReferenceFailure(RuntimeError):
    """The live reference configuration could not produce healthy images."""


class ReferenceSource:
    """The blessed references (verified now) and, in ``live`` mode, the ones this run generates."""

    def __init__(self, suite: Suite, mode: str):
        if mode not in MODES:
            raise InputError(f"references {mode!r}: expected one of {', '.join(MODES)}", file=suite.path)
        self.suite, self.mode = suite, mode
        self.blessed: ReferenceSet | None = None
        self.warnings: list[str] = []
        if mode == BLESSED:
            self.blessed = references.verify(suite)
            return
        try:
            self.blessed = references.verify(suite)
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
        chosen = live_set(self.suite, result, run_dir, environment)
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


def live_set(suite: Suite, result: RunResult, run_dir: Path, environment: Mapping[str, Any]) -> ReferenceSet:
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
        reference_hash=suite.reference_hash(),
        inputs=suite.reference_inputs(),
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


def describe(record: Mapping[str, Any]) -> str:
    """One line for reports: where the references came from and, for live ones, the drift of the blessed set."""
    if not record:
        return ""
    source, config = record.get("source"), record.get("config")
    if source != LIVE:
        return (
            f"references: blessed ({config!r} on {record.get('device_class') or '?'}, {record.get('created') or '?'})"
        )
    text = f"references: live (generated by {config!r} in this run)"
    blessed = record.get("blessed")
    if not blessed:
        return text + "; no current blessed set to measure drift against"
    mean, low = blessed.get("psnr_mean"), blessed.get("psnr_min")
    if blessed.get("identical") == blessed.get("n"):
        return text + f"; the blessed set ({blessed.get('device_class')}) is identical"
    differing = int(blessed.get("n", 0)) - int(blessed.get("identical", 0))
    return (
        text + f"; the blessed set ({blessed.get('device_class')}) differs in {differing}/{blessed.get('n')} "
        f"images: PSNR mean {_db(mean)}, worst {_db(low)} ({blessed.get('worst')})"
    )


def _db(value: Any) -> str:
    return "inf" if value is None or not math.isfinite(float(value)) else f"{float(value):.1f} dB"


@dataclass
class RunReferences:
    """The run's references, resolved once: when sequential sampling first needs them, or when scoring starts."""

    source: ReferenceSource
    run_dir: Path
    results_path: Path
    metrics: tuple[Metric, ...]
    cache_dir: Path
    result: RunResult | None = None  # the run so far (live references are the reference configuration's images)
    _set: ReferenceSet | None = None
    _scoring: ReferenceScoring | None = None

    def resolve(self) -> ReferenceSet:
        """The reference images (the blessed set, or the live reference configuration's); a failure is recorded in
        results.json before it is raised."""
        if self._set is None:
            assert self.result is not None
            try:
                self._set = self.source.resolve(self.result, self.run_dir, self.result.environment)
            except ReferenceFailure as error:
                failed = replace(self.result, state="failed", warnings=(str(error),), finished=now())
                write_results(failed, self.results_path)
                raise
        return self._set

    def scoring(self, on_progress: Callable[[float], None] | None = None) -> ReferenceScoring:
        """What the reference set contributes to scoring (image-metric values, set features, blank keys), once."""
        from harness.score.scoring import score_references

        if self._scoring is None:
            self._scoring = score_references(self.metrics, self.resolve(), on_progress, cache_dir=self.cache_dir)
        elif on_progress is not None:
            on_progress(len(self.metrics))
        return self._scoring

    def view(self) -> ReferenceView:
        """What sequential sampling reads of the references."""
        from harness.judge.sequential import ReferenceView

        refs, scoring = self.resolve(), self.scoring()
        return ReferenceView(refs.image, scoring.scores, frozenset(scoring.blank))
