"""The run's references as scoring sees them: resolved once (the blessed set, or the live reference
configuration's images), scored once, and the view sequential sampling reads of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.metrics.base import Metric
from harness.references.source import ReferenceSource
from harness.references.store import ReferenceSet
from harness.results import RunResult
from harness.score.scoring import ReferenceScoring, score_references


@dataclass(frozen=True)
class ReferenceView:
    """What a monitor reads of the references: images by key, the reference set's per-sample scores (by metric,
    then key) and the keys of blank reference images."""

    image: Callable[[str], np.ndarray]
    scores: Mapping[str, Mapping[str, float]]
    blank: frozenset[str]


@dataclass
class RunReferences:
    """The run's references, resolved once: when sequential sampling first needs them, or when scoring starts.

    A live reference configuration that failed raises :class:`~harness.references.source.ReferenceFailure` from
    :meth:`resolve`; the runner records it."""

    source: ReferenceSource
    run_dir: Path
    metrics: tuple[Metric, ...]
    cache_dir: Path
    result: RunResult | None = None  # the run so far (live references are the reference configuration's images)
    _set: ReferenceSet | None = None
    _scoring: ReferenceScoring | None = None

    def resolve(self) -> ReferenceSet:
        """The reference images: the blessed set, or the live reference configuration's."""
        if self._set is None:
            assert self.result is not None
            self._set = self.source.resolve(self.result, self.run_dir, self.result.environment)
        return self._set

    def scoring(self, on_progress: Callable[[float], None] | None = None) -> ReferenceScoring:
        """What the reference set contributes to scoring (image-metric values, set features, blank keys), once."""
        if self._scoring is None:
            self._scoring = score_references(self.metrics, self.resolve(), on_progress, cache_dir=self.cache_dir)
        elif on_progress is not None:
            on_progress(len(self.metrics))
        return self._scoring

    def view(self) -> ReferenceView:
        """What sequential sampling reads of the references."""
        refs, scoring = self.resolve(), self.scoring()
        return ReferenceView(refs.image, scoring.scores, frozenset(scoring.blank))
