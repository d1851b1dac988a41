"""Sequential sampling: stop a configuration once every gate's verdict is decided, at the suite's error level.

A configuration's samples are generated in a seeded random order (every prefix is a simple random sample of the
suite's samples), and at looks that grow geometrically (``first``, ``first x growth``, ... whole batches) each gate
is judged with an **always-valid interval**: the asymptotic confidence sequence of Waudby-Smith, Arnold, Wu,
Ramdas and Howard (2021, "Time-uniform central limit theory and asymptotic confidence sequences"),

    mean +- sd * sqrt(2 (n rho^2 + 1) / (n^2 rho^2) * log(sqrt(n rho^2 + 1) / alpha)),

which covers the true mean at every look at once with probability 1 - alpha (asymptotically), so looking after
every round spends no extra error. ``rho`` makes it tightest at ``n* = sqrt(first x n_max)``; the radius is widened by
Student's t over the normal quantile, since at 8-16 samples of a skewed metric the asymptotics are not yet there. A gate is decided
when its interval lies wholly on one side of its bound; the configuration stops when

- an image is NaN/Inf or blank (fail fast: the health check has failed and cannot recover),
- a gate has failed beyond doubt (its interval wholly past the bound; a ``worst`` gate as soon as one sample is
  past it, since the worst can only get worse),
- every gate has passed beyond doubt,

or at the suite's full n, where the fixed-n rules judge as always. What cannot be decided early waits for full n:
set metrics (FID, KID, CMMD: biased in n, so only the full set is comparable with what their bounds were set on),
``median`` gates, ``worst`` gates' passes, and gates ``vs`` another configuration (that configuration runs whole).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.metrics.base import ImageMetric, Metric, PairMetric
from harness.metrics.tensors import exact_float32
from harness.plan.sequential import SequentialOptions
from harness.plan.thresholds import Threshold
from harness.samples import ImageHealth, SampleJob
from harness.score.accumulator import Scores
from harness.score.references import ReferenceView

if TYPE_CHECKING:
    from harness.kinds.base import ConfigSpec
    from harness.plan.suite import Suite
    from harness.results import ConfigResult

PASSED, FAILED = "pass", "fail"


def confidence_sequence(values: np.ndarray, alpha: float, n_star: float) -> tuple[float, float]:
    """The asymptotic confidence sequence's interval for the mean after ``len(values)`` samples."""
    n = values.size
    mean = float(values.mean())
    if n < 2:
        return -math.inf, math.inf
    sd = float(values.std(ddof=1))
    log_alpha = -2.0 * math.log(alpha)
    rho2 = (log_alpha + math.log(log_alpha + 1.0)) / max(n_star, 1.0)
    radius = sd * math.sqrt(2.0 * (n * rho2 + 1.0) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1.0) / alpha))
    radius *= small_sample_factor(n, alpha)
    return mean - radius, mean + radius


def small_sample_factor(n: int, alpha: float) -> float:
    """Student's t over the normal quantile at n - 1 degrees of freedom: the asymptotic interval trusts the sample
    sd, which at 8 or 16 samples of a skewed metric it should not (measured: tests/judge/test_sequential.py, docs)."""
    from scipy import stats

    return float(stats.t.ppf(1 - alpha / 2, n - 1) / stats.norm.ppf(1 - alpha / 2))


@dataclass(frozen=True)
class Decision:
    """One gate at one look: ``pass``/``fail`` once decided, ``None`` while open; ``why`` in words."""

    status: str | None
    why: str


def decide(
    threshold: Threshold,
    values: np.ndarray,
    higher_is_better: bool,
    alpha: float,
    n_star: float,
    relative: bool = False,
) -> Decision:
    """Judge one per-sample gate on what has been seen: ``values`` are the metric's values (``relative``: the paired
    changes ``this - reference``). Never decides what a later sample could overturn."""
    if values.size == 0:
        return Decision(None, "no finite values yet")
    if threshold.stat == "median" or threshold.quantile is not None:
        # the k-th worst of n moves either way as n grows (k does too): only the full set decides it
        return Decision(None, f"{threshold.stat} gates wait for full n")
    if threshold.stat == "worst":
        if relative:
            worst_drop, worst_rise = float(-values.min()), float(values.max())
            quantities = {"drop": (worst_drop, worst_drop), "rise": (worst_rise, worst_rise)}
        else:
            worst = float(values.min() if higher_is_better else values.max())
            quantities = {"value": (worst, worst)}
        # the worst only moves away from the passing side: it can fail early, never pass early
        for label, bound, low, high in _bounded(threshold, quantities, relative):
            if _past(label, bound, low, high):
                return Decision(FAILED, f"worst {label} {low:.4g} already past {bound:g}")
        return Decision(None, "worst gates pass only at full n")
    low, high = confidence_sequence(values, alpha, n_star)
    if relative:
        quantities = {"drop": (-high, -low), "rise": (low, high)}
    else:
        quantities = {"value": (low, high)}
    checks = _bounded(threshold, quantities, relative)
    of = " of the paired change" if relative else ""
    interval = f"always-valid {100 * (1 - alpha):.0f}% interval{of} {low:.4g} to {high:.4g}, n={values.size}"
    failed = [label for label, bound, lo, hi in checks if _past(label, bound, lo, hi)]
    if failed:
        return Decision(FAILED, f"{interval}: wholly past the {failed[0]} bound")
    if all(_within(label, bound, lo, hi) for label, bound, lo, hi in checks):
        return Decision(PASSED, f"{interval}: wholly within bounds")
    return Decision(None, f"{interval}: contains a bound")


def _past(label: str, bound: float, low: float, high: float) -> bool:
    """The whole interval [low, high] of the bounded quantity is on the failing side of a ``label`` bound."""
    return high < bound if label == "min" else low > bound


def _within(label: str, bound: float, low: float, high: float) -> bool:
    """The whole interval is on the passing side."""
    return low > bound if label == "min" else high < bound


def _bounded(
    threshold: Threshold, quantities: Mapping[str, tuple[float, float]], relative: bool
) -> list[tuple[str, float, float, float]]:
    if relative:
        pairs = (("drop", threshold.max_drop), ("rise", threshold.max_rise))
        return [(label, bound, *quantities[label]) for label, bound in pairs if bound is not None]
    low, high = quantities["value"]
    out = []
    if threshold.min is not None:
        out.append(("min", threshold.min, low, high))
    if threshold.max is not None:
        out.append(("max", threshold.max, low, high))
    return out


@dataclass
class Monitor:
    """Watches one configuration's samples as they are generated and says when to stop.

    ``reference`` gives the reference images and the reference set's per-sample scores when first needed
    (``image(key)``, ``scores[metric][key]``, ``blank`` keys).
    """

    config: str
    thresholds: Sequence[Threshold]
    metrics: Mapping[str, Metric]
    reference: Callable[[], ReferenceView]
    options: SequentialOptions
    total: int
    batch: int
    # a negative control stops only once every gate is decided: its job is to show each gate firing, and a gate
    # left undecided by an early stop (a set metric) would go unseen by the coverage check
    control: bool = False
    looks: list[int] = field(init=False)
    scores: Scores = field(init=False)  # the gated per-sample metrics' values, as generation feeds them
    seen: list[str] = field(init=False, default_factory=list)
    unhealthy: list[str] = field(init=False, default_factory=list)
    history: list[dict[str, Any]] = field(init=False, default_factory=list)
    stopped: str = field(init=False, default="")
    next_look: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.looks = self.options.looks(self.total, self.batch)
        self.n_star = math.sqrt(self.looks[0] * self.total)
        self.gated = {t.metric for t in self.thresholds if self._watchable(t)}
        self.scores = Scores([self.metrics[name] for name in sorted(self.gated)])

    @property
    def values(self) -> dict[str, dict[str, float]]:
        """The gated metrics' per-sample values so far, by metric then sample key."""
        return {name: values for name, values in self.scores.values.items() if values}

    def _watchable(self, threshold: Threshold) -> bool:
        metric = self.metrics.get(threshold.metric)
        return isinstance(metric, PairMetric | ImageMetric) and threshold.compared_config is None

    def observe(self, jobs: Sequence[SampleJob], images: Sequence[np.ndarray], health: Sequence[ImageHealth]) -> None:
        """Score a batch (uint8 HxWx3 images, as stored) with the gated per-sample metrics."""
        refs = self.reference()
        for job, state in zip(jobs, health, strict=True):
            if state.nonfinite_fraction > 0 or (state.blank and job.key not in refs.blank):
                self.unhealthy.append(job.key)
        self._score(refs, jobs, images)
        self.seen.extend(job.key for job in jobs)

    @exact_float32()
    def _score(self, refs: ReferenceView, jobs: Sequence[SampleJob], images: Sequence[np.ndarray]) -> None:
        references = [refs.image(job.key) for job in jobs] if self.scores.needs_references else None
        self.scores.update([job.key for job in jobs], images, [job.prompt for job in jobs], references)

    def stop(self) -> str:
        """Why to stop now (empty: go on). Health stops at once; gates are judged at the looks."""
        if self.stopped:
            return self.stopped
        if self.unhealthy and not self.control:
            self.stopped = f"fail fast: {len(self.unhealthy)} image(s) NaN/Inf or blank ({self.unhealthy[0]})"
            return self.stopped
        due = False
        while self.next_look < len(self.looks) and len(self.seen) >= self.looks[self.next_look]:
            self.next_look += 1
            due = True
        if due and len(self.seen) < self.total:  # at full n the fixed-n rules judge
            self.stopped = self._look()
        return self.stopped

    def _look(self) -> str:
        refs = self.reference()
        decisions: dict[str, Decision] = {}
        for threshold in self.thresholds:
            decisions[threshold.describe()] = self._decide(threshold, refs)
        self.history.append({"n": len(self.seen), "gates": {name: d.status or "open" for name, d in decisions.items()}})
        failed = [name for name, d in decisions.items() if d.status == FAILED]
        if failed and not self.control:
            return f"failed beyond doubt at n={len(self.seen)}: {failed[0]} ({decisions[failed[0]].why})"
        if decisions and all(d.status is not None for d in decisions.values()):
            if failed:
                return f"every gate decided at n={len(self.seen)}, {len(failed)} failed beyond doubt: {failed[0]}"
            return f"every gate passed beyond doubt at n={len(self.seen)}"
        return ""

    def _decide(self, threshold: Threshold, refs: ReferenceView) -> Decision:
        if not self._watchable(threshold):
            metric = self.metrics.get(threshold.metric)
            if metric is not None and metric.scope == "set":
                return Decision(None, "set metrics are judged on the full set")
            return Decision(None, f"compared with {threshold.vs}: judged at full n")
        metric = self.metrics[threshold.metric]
        mine = self.values.get(threshold.metric, {})
        if threshold.relative:
            theirs = refs.scores.get(threshold.metric, {})
            paired = [
                (mine[k], theirs[k])
                for k in self.seen
                if k in mine and k in theirs and math.isfinite(mine[k]) and math.isfinite(theirs[k])
            ]
            deltas = np.asarray([a - b for a, b in paired], dtype=np.float64)
            return decide(threshold, deltas, metric.higher_is_better, self.options.alpha, self.n_star, relative=True)
        values = np.asarray([mine[k] for k in self.seen if k in mine and math.isfinite(mine[k])], dtype=np.float64)
        return decide(threshold, values, metric.higher_is_better, self.options.alpha, self.n_star)

    def _why_whole(self) -> str:
        if len(self.seen) < self.total:
            return ""
        if not self.history:
            return "full n: no look before it"
        still = [name for name, status in self.history[-1]["gates"].items() if status == "open"]
        return f"full n: open at the last look (n={self.history[-1]['n']}): {', '.join(still) or 'none'}"

    def record(self) -> dict[str, Any]:
        """What results.json says: samples planned and generated, why it stopped, the looks."""
        return {
            "planned": self.total,
            "generated": len(self.seen),
            "stopped": self.stopped or self._why_whole(),
            "early": bool(self.stopped) and len(self.seen) < self.total,
            "looks": self.history,
            "alpha": self.options.alpha,
        }


def sample_order(jobs: Sequence[SampleJob], seed: int = 0) -> list[SampleJob]:
    """The jobs in a seeded random order, the same for every configuration: prefixes are simple random samples,
    and two configurations stopped at different n share their first samples."""
    order = np.random.default_rng(seed).permutation(len(jobs))
    return [jobs[int(index)] for index in order]


@dataclass(frozen=True)
class Sequential:
    """A run's sequential sampling: one :class:`Monitor` per configuration, except those that must run whole."""

    suite: Suite
    options: SequentialOptions
    metrics: Mapping[str, Metric]
    device_class: str
    reference: Callable[[], ReferenceView]
    exempt: frozenset[str] | set[str] = frozenset()  # configurations others compare with, and a live reference
    monitors: dict[str, Monitor] = field(default_factory=dict)  # by configuration, as handed out

    @classmethod
    def for_run(
        cls,
        suite: Suite,
        selected: Sequence[str],
        metrics: Sequence[Metric],
        device_class: str,
        reference: Callable[[], ReferenceView],
        live_reference: bool = False,
    ) -> Sequential:
        """The suite's sequential sampling for the ``selected`` configurations: every configuration a selected
        one's gates compare with (``vs``) runs whole, and so does the reference configuration where its images are
        the run's references (``live``). Against blessed references it is judged like any other configuration."""
        targets = {t.compared_config for name in selected for t in suite.thresholds_for(name) if t.compared_config}
        if live_reference:
            targets.add(suite.reference)
        metrics_by_name = {metric.name: metric for metric in metrics}
        return cls(suite, suite.sequential, metrics_by_name, device_class, reference, targets)

    def monitor(self, spec: ConfigSpec, total: int, batch: int) -> Monitor | None:
        if spec.name in self.exempt:
            return None
        thresholds = [
            resolved
            for threshold in self.suite.thresholds_for(spec.name)
            if (resolved := threshold.on_device(self.device_class)) is not None
        ]
        control = spec.expect == "fail"
        monitor = Monitor(spec.name, thresholds, self.metrics, self.reference, self.options, total, batch, control)
        self.monitors[spec.name] = monitor
        return monitor

    def scored(self, config: str) -> Mapping[str, Mapping[str, float]]:
        """The per-sample values a configuration's monitor computed (metric, then sample key): scoring reuses them,
        so the values recorded are the ones its stop was decided on."""
        monitor = self.monitors.get(config)
        return monitor.values if monitor is not None else {}


def in_plan_order(result: ConfigResult, jobs: Sequence[SampleJob]) -> ConfigResult:
    """A configuration's result with its samples back in the suite's (prompt-major) order."""
    position = {job.key: index for index, job in enumerate(jobs)}
    return replace(result, samples=tuple(sorted(result.samples, key=lambda s: position.get(s.key, len(position)))))
