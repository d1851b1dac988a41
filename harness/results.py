"""The values that flow out of a run, as frozen dataclasses that round-trip through JSON.

``results.json`` is :class:`RunResult` serialised; ``report`` and ``compare`` read it
back with :meth:`RunResult.from_dict`. Non-finite floats are written as ``null``
(JSON has no NaN) and read back as NaN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.atomic import write_text
from harness.errors import InputError
from harness.timing import BatchTiming, from_dicts

if TYPE_CHECKING:
    import numpy as np

SCHEMA_VERSION = 1
STATUS_OK, STATUS_ERROR, STATUS_SKIPPED = "ok", "error", "skipped"
PASS, FAIL, ERROR, SKIPPED = "pass", "fail", "error", "skipped"
XFAIL = "xfail"  # a check of a negative-control configuration that failed, as it must


@dataclass(frozen=True)
class SampleResult:
    """One generated image and its per-sample values."""

    key: str
    prompt_index: int
    prompt: str
    seed: int
    image: str | None = None
    seconds: float | None = None
    nonfinite_fraction: float = 0.0
    blank: bool = False
    metrics: Mapping[str, float] = field(default_factory=dict)
    cached: bool = False


@dataclass(frozen=True)
class MetricSummary:
    """A metric over one configuration, with its unit, n and interval."""

    metric: str
    unit: str
    higher_is_better: bool
    scope: str
    n: int
    mean: float
    median: float | None = None
    worst: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    note: str = ""
    reliable: bool = True


@dataclass(frozen=True)
class ConfigResult:
    """Everything recorded for one configuration."""

    name: str
    kind: str
    status: str
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    error_type: str = ""
    traceback: str = ""
    samples: tuple[SampleResult, ...] = ()
    summaries: tuple[MetricSummary, ...] = ()
    timing: Mapping[str, float] = field(default_factory=dict)
    memory: Mapping[str, Any] = field(default_factory=dict)
    notes: Mapping[str, Any] = field(default_factory=dict)
    batches: tuple[BatchTiming, ...] = ()  # one entry per timed generation call: the unit of speed verdicts
    # sequential sampling (harness/judge/sequential.py): samples planned and generated, why it stopped, the looks; {} when off
    sequential: Mapping[str, Any] = field(default_factory=dict)
    # everything its images depend on (harness.identity.ConfigIdentity) and its digest: the sample cache's key
    identity: Mapping[str, Any] = field(default_factory=dict)
    # speed against its base in this run, with its interval, and the effects it shows (harness/judge/speed.py)
    speed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        """Whether this run measured the configuration's time and memory (``False`` when served from the cache)."""
        return bool(self.timing.get("measured", 1))

    def summary(self, metric: str) -> MetricSummary | None:
        for item in self.summaries:
            if item.metric == metric:
                return item
        return None

    @property
    def peak_rss_mb(self) -> float | None:
        """The memory that matters for this configuration: the external runtime's own for commands."""
        child = self.notes.get("child_peak_rss_mb")
        return float(child) if child is not None else self.memory.get("peak_rss_mb")

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfigResult:
        return _build(
            cls,
            data,
            samples=tuple(_build(SampleResult, s, metrics=_nan(s.get("metrics", {}))) for s in data.get("samples", [])),
            summaries=tuple(_build(MetricSummary, m) for m in data.get("summaries", [])),
            batches=from_dicts(data.get("batches", [])),
        )


@dataclass(frozen=True)
class CheckOutcome:
    """One check of one configuration: pass, fail, error or skipped, with the reason in words."""

    config: str
    check: str
    status: str
    reason: str
    metric: str = ""
    value: float | None = None
    bound: float | None = None
    n: int = 0


@dataclass(frozen=True)
class RunResult:
    """A whole run: the suite, the environment, every configuration and every check."""

    suite: Mapping[str, Any]
    run_id: str
    started: str
    finished: str = ""
    state: str = "running"
    environment: Mapping[str, Any] = field(default_factory=dict)
    configs: tuple[ConfigResult, ...] = ()
    reference_scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    references: Mapping[str, Any] = field(default_factory=dict)  # source (blessed | live); live: drift of blessed
    checks: tuple[CheckOutcome, ...] = ()
    counters: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    comparison: Mapping[str, Any] = field(default_factory=dict)
    phases: Mapping[str, float] = field(default_factory=dict)  # where the wall time went (harness.phases)
    verdict: str = ""
    exit_code: int | None = None
    schema: int = SCHEMA_VERSION

    def config(self, name: str) -> ConfigResult | None:
        for item in self.configs:
            if item.name == name:
                return item
        return None

    def with_config(self, result: ConfigResult) -> RunResult:
        """A copy with ``result`` added or replacing the configuration of the same name."""
        if any(c.name == result.name for c in self.configs):
            return replace(self, configs=tuple(result if c.name == result.name else c for c in self.configs))
        return replace(self, configs=(*self.configs, result))

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        configs = tuple(ConfigResult.from_dict(c) for c in data.get("configs", []))
        checks = tuple(_build(CheckOutcome, c) for c in data.get("checks", []))
        reference_scores = {k: _nan(v) for k, v in data.get("reference_scores", {}).items()}
        return _build(
            cls,
            data,
            configs=configs,
            checks=checks,
            reference_scores=reference_scores,
            warnings=tuple(data.get("warnings", [])),
        )


def _build(cls: type[Any], data: Mapping[str, Any], **overrides: Any) -> Any:
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    values.update(overrides)
    for key, value in values.items():
        if value is None and key in ("mean",):
            values[key] = math.nan
    return cls(**values)


def _nan(values: Mapping[str, Any]) -> dict[str, float]:
    return {k: (math.nan if v is None else float(v)) for k, v in values.items()}


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_results(result: RunResult, path: Path) -> None:
    """Write atomically (temp file + rename), so a crash never leaves a half-written results.json."""
    write_text(path, json.dumps(result.to_dict(), indent=1, sort_keys=False) + "\n")


class Journal:
    """The one writer of a run's ``results.json``: every state the run passes through is written here, atomically;
    on the other ranks of a multi-process run nothing is written."""

    def __init__(self, path: Path, main: bool):
        self.path, self.main = path, main

    def write(self, result: RunResult) -> RunResult:
        if self.main:
            write_results(result, self.path)
        return result

    def ended(self, result: RunResult, state: str, *warnings: str) -> RunResult:
        """The run stopped early (``interrupted``, ``failed``): recorded as it stood."""
        return self.write(replace(result, state=state, warnings=(*result.warnings, *warnings), finished=now()))


def read_results(path: Path) -> RunResult:
    """Read a results.json (or the one inside a run folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise InputError("no results.json here (give a run folder or its results.json)", file=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunResult.from_dict(data)
    except (json.JSONDecodeError, TypeError, KeyError) as error:
        raise InputError(f"not a readable results.json: {error}", file=path) from None


def image_equivalence(
    result: ConfigResult, target: ConfigResult, run_dir: Path, first_difference: bool = False
) -> dict[str, Any]:
    """The largest 8-bit pixel difference between two configurations' images of the same samples; with
    ``first_difference``, only until one sample differs (whether they are identical, read at the cost of two images
    for any configuration that changes pixels)."""
    import numpy

    from harness.samples import load_png

    theirs = {s.key: s for s in target.samples if s.image}
    largest, compared, differing = 0, 0, 0
    for sample in result.samples:
        other = theirs.get(sample.key)
        if sample.image is None or other is None or other.image is None:
            continue
        mine, partner = load_png(run_dir / sample.image), load_png(run_dir / other.image)
        difference = (
            int(numpy.abs(mine.astype(numpy.int16) - partner.astype(numpy.int16)).max())
            if mine.shape == partner.shape
            else 255
        )
        largest = max(largest, difference)
        compared += 1
        differing += difference > 0
        if first_difference and differing:
            break
    return {
        "target": target.name,
        "samples_compared": compared,
        "samples_differing": differing,
        "max_pixel_diff": largest,
        "identical": compared > 0 and largest == 0,
    }


def sample_values(result: ConfigResult, metric: str) -> dict[str, float]:
    """``metric`` of each sample of ``result`` that has it, by sample key."""
    return {s.key: s.metrics[metric] for s in result.samples if metric in s.metrics}


def paired_values(
    this: ConfigResult,
    other: Mapping[Any, float | None],
    metric: str,
    key: Callable[[SampleResult], Hashable] = lambda sample: sample.key,
    value: Callable[[float | None], float | None] = lambda v: v,
) -> tuple[np.ndarray, np.ndarray, list[Hashable]]:
    """Per-sample values of ``metric`` in ``this`` and ``other`` (values by ``key``: the sample key within a run,
    (prompt, seed) across runs) for the samples both have, finite in both after ``value`` (e.g. saturation)."""
    import numpy as np

    keys: list[Hashable] = []
    mine: list[float] = []
    theirs: list[float] = []
    for sample in this.samples:
        own = value(sample.metrics.get(metric))
        partner = value(other.get(key(sample)))
        if own is None or partner is None or not (math.isfinite(own) and math.isfinite(partner)):
            continue
        keys.append(key(sample))
        mine.append(own)
        theirs.append(partner)
    return np.asarray(mine), np.asarray(theirs), keys


def now() -> str:
    """A results.json timestamp: UTC, to the second."""
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
