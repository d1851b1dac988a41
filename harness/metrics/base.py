"""The metric base classes.

A metric is pure maths in a function plus a small class that declares its unit, its
direction (``higher_is_better``) and what it compares:

- ``pair``: a generated image against the reference image of the same prompt and seed
  (PSNR, SSIM, LPIPS),
- ``image``: a generated image on its own or against its prompt (CLIP score), compared
  between configurations through paired per-sample differences,
- ``set``: the generated set against the reference set (FID, KID).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from harness import options, tomlread
from harness.errors import Where
from harness.metrics.reference_values import ReferenceValueCache
from harness.metrics.tensors import Pairs

# built-in evaluators other than the tiny one, by name: each finds its open_clip folder (the registry's evaluators)
Evaluators = Mapping[str, Callable[[], Path]]
NO_EVALUATORS: Evaluators = MappingProxyType({})


@dataclass
class ScoringContext:
    """Shared by the metrics of one run: where to cache, which device, counters for results.json."""

    device: str
    cache_dir: Path
    references_digest: str
    counters: dict[str, int] = field(default_factory=dict)
    # built-in evaluators (CLIP models a plug-in ships, such as the shapes world's), by name: the registry's
    evaluators: Evaluators = field(default_factory=lambda: NO_EVALUATORS)
    warnings: list[str] = field(default_factory=list)

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


@dataclass(frozen=True)
class SetScore:
    """A set-level value with its bootstrap interval, and a note when it should not be trusted."""

    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    note: str = ""
    reliable: bool = True


class Metric(ABC):
    """Base of every metric; options come from the suite's ``[metrics]`` table."""

    name: ClassVar[str]
    unit: ClassVar[str]
    higher_is_better: ClassVar[bool]
    scope: ClassVar[str]
    summary: ClassVar[str]
    # the metric's options declared once (harness.options): parsing, option_keys and errors derive from it; None: the
    # metric reads its own table (the feature-space metrics, whose keys depend on each other's values)
    Options: ClassVar[type | None] = None
    option_keys: ClassVar[Mapping[str, str]] = {}
    # An optional backend (a package or weights most machines lack): when ``unavailable()`` gives a
    # reason, the run goes on without it and its checks are skipped with that reason, never an error.
    optional: ClassVar[bool] = False
    # The change against a baseline that fails a comparison unless the suite's [regression] says otherwise (its
    # keys are those of tolerance.Tolerance; why each value: docs/regression.md). None: the metric is shown
    # "untested: no tolerance" in comparisons until a suite gives one.
    default_tolerance: ClassVar[Mapping[str, float] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("Options")
        if declared is not None:
            cls.option_keys = options.keys(declared)

    @classmethod
    def resolve_defaults(cls, options: Mapping[str, Any], evaluator: str) -> dict[str, Any]:
        """Options the suite left open, filled for its pipeline: ``evaluator`` is the CLIP model its metrics default
        to (a plug-in's trained evaluator for its pipelines, such as the shapes world's; else the tiny built-in)."""
        return dict(options)

    def __init__(self, options: Mapping[str, Any] | None = None, context: ScoringContext | None = None):
        self.options = dict(options or {})
        self.context = context

    @property
    def device(self) -> str:
        """Where the metric computes: the run's device (the CPU without a run)."""
        return self.context.device if self.context is not None else "cpu"

    @property
    def evaluators(self) -> Evaluators:
        """The built-in evaluators this metric may name (``builtin:shapes``); none without a run."""
        return self.context.evaluators if self.context is not None else NO_EVALUATORS

    @classmethod
    def parse_options(cls, table: Mapping[str, Any], where: Where, suite_dir: Path) -> dict[str, Any]:
        """Validate the metric's options: read into its declared ``Options``; without them, none are accepted."""
        if cls.Options is not None:
            return dataclasses.asdict(options.parse(cls.Options, table, where, suite_dir))
        tomlread.check_keys(table, list(cls.option_keys), where, "option")
        return dict(table)

    @classmethod
    def check_options(cls, options: Mapping[str, Any], where: Where, evaluators: Evaluators = NO_EVALUATORS) -> None:
        """Deeper checks for ``validate`` (weights present, ...), without compute; ``evaluators`` are the built-in
        evaluators a CLIP-based metric may name."""
        return None

    @classmethod
    def check_prompts(cls, prompts: Sequence[str], where: Where) -> None:
        """Refuse prompts this metric cannot score (at suite load, before any compute)."""
        return None

    def unavailable(self) -> str | None:
        """Why this metric cannot be computed here (missing weights or package), or ``None``."""
        return None


class PairMetric(Metric):
    scope: ClassVar[str] = "pair"

    def score_pairs(self, images: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> list[float]:
        """One value per (image, reference) pair of uint8 HxWx3 arrays."""
        return self.score_chunk(Pairs(images, references))

    @abstractmethod
    def score_chunk(self, pairs: Pairs) -> list[float]:
        """One value per pair, from ``pairs.batches(self.device)``: in scoring, the pair metrics
        share the device copies of a chunk's pairs."""


class ImageMetric(Metric):
    """Scores each image on its own. The reference images' values are cached on disk when
    ``values_id`` says what they depend on, so a rerun against unchanged references does
    not score them again."""

    scope: ClassVar[str] = "image"

    @abstractmethod
    def score_images(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        """One value per uint8 HxWx3 image (with its prompt)."""

    def values_id(self) -> str | None:
        """Changes whenever ``score_images`` would give other values for the same images and
        prompts (options, weights, device type); ``None`` (the default) never caches them."""
        return None

    def _value_cache(self) -> tuple[ReferenceValueCache, str, str] | None:
        values_id = self.values_id()
        if values_id is None or self.context is None or not self.context.references_digest:
            return None
        return ReferenceValueCache(self.context.cache_dir), self.context.references_digest, values_id

    def cached_reference_values(self, keys: Sequence[str]) -> dict[str, float] | None:
        """The reference images' values from an earlier run (all of ``keys``), or ``None`` (counted)."""
        found = self._value_cache()
        if found is None:
            return None
        cache, references_digest, values_id = found
        values = cache.load(references_digest, self.name, values_id, keys)
        if values is not None and self.context is not None:
            self.context.count("reference_value_cache_hits", len(values))
        return values

    def keep_reference_values(self, values: Mapping[str, float]) -> None:
        """Called with freshly computed reference values (to cache them)."""
        found = self._value_cache()
        if found is not None:
            cache, references_digest, values_id = found
            cache.store(references_digest, self.name, values_id, values)


class SetMetric(Metric):
    """Compares the generated set with the reference set through features of each image.

    Features are extracted chunk by chunk (``features``) so that no set is ever held in
    memory whole; ``score_features`` turns the two feature sets into the score. Metrics
    with the same ``feature_key`` compute the same features (FID and KID on one extractor),
    and scoring extracts them once for both.
    """

    scope: ClassVar[str] = "set"

    @abstractmethod
    def features(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Features of some uint8 HxWx3 images, one row per image."""

    @abstractmethod
    def score_features(self, fake: np.ndarray, real: np.ndarray, label: str = "") -> SetScore:
        """One value for the generated features against the reference features; ``label`` seeds its interval."""

    def feature_key(self) -> str:
        """Equal for metrics whose ``features`` give the same values."""
        return f"{self.name}:{sorted(self.options.items())!r}"

    def cached_reference_features(self, count: int) -> np.ndarray | None:
        """The reference set's features from an earlier run (``count`` rows), or ``None``."""
        return None

    def keep_reference_features(self, features: np.ndarray) -> None:
        """Called with freshly extracted reference features (to cache them); nothing by default."""
        return None

    def count(self, name: str, amount: int) -> None:
        if self.context is not None:
            self.context.count(name, amount)

    def reference_features(self, references: Sequence[np.ndarray]) -> np.ndarray:
        """The reference features, cached or extracted (and kept)."""
        real = self.cached_reference_features(len(references))
        if real is None:
            real = self.features(references)
            self.keep_reference_features(real)
        return real

    def score_set(self, images: Sequence[np.ndarray], references: Sequence[np.ndarray], label: str = "") -> SetScore:
        """One value for two whole sets in memory (what scoring does chunk by chunk)."""
        real = self.reference_features(references)
        fake = self.features(images)
        self.count("generated_feature_extractions", len(fake))
        return self.score_features(fake, real, label)
