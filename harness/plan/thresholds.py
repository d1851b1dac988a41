"""Threshold declarations: what a suite says a metric must satisfy.

A threshold bounds one statistic of one metric for one configuration, either as an
absolute value (``psnr >= 30``) or as a change against another configuration
(``clip_score may drop at most 0.5 vs fp16``), judged on the point estimate or on
the whole confidence interval.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from harness import tomlread
from harness.errors import Where, unknown

STATS = ("mean", "median", "worst")
# p1 .. p50: a low tail, the value the worst q of the samples are at or beyond (the ceil(q x n)-th worst sample)
QUANTILE = re.compile(r"^p([1-9]|[1-4][0-9]|50)$")
BASES = ("estimate", "interval")
_KEYS = ("min", "max", "max_drop", "max_rise", "vs", "stat", "basis", "expected", "factor")
DEFAULT_DEVICE = "default"
REFERENCE_ALIAS = "reference"  # vs = "reference": the blessed reference images, as when vs is unset


@dataclass(frozen=True)
class Threshold:
    """One bound on one metric.

    ``min``/``max`` bound the statistic itself. ``max_drop``/``max_rise`` bound the
    paired per-sample change against configuration ``vs`` (the blessed reference
    images when unset), in the metric's own units: drop is ``vs - this`` and rise is
    ``this - vs``. (For PSNR or CLIP score a drop is a loss; for FID a rise is.)
    ``basis = "interval"`` fails only when the whole 95% interval of the mean is past
    the bound, so sampling noise alone cannot fail the check.
    """

    metric: str
    stat: str = "mean"
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    max_rise: float | None = None
    vs: str | None = None
    basis: str = "estimate"
    # nunchaku's rule, "value < expected x factor", with vllm-omni's per-GPU expected values:
    # (device class, expected) pairs, "default" for any other; factor > 1 bounds from above, < 1 from below
    expected: tuple[tuple[str, float], ...] = ()
    factor: float | None = None

    @property
    def quantile(self) -> float | None:
        """``stat = "p25"``: 0.25, the share of samples at or beyond the bounded value; ``None`` for other stats."""
        found = QUANTILE.match(self.stat)
        return int(found.group(1)) / 100.0 if found else None

    @property
    def relative(self) -> bool:
        return self.max_drop is not None or self.max_rise is not None

    @property
    def compared_config(self) -> str | None:
        """The configuration whose images this gate compares with; ``None`` for the reference images."""
        return None if self.vs in (None, REFERENCE_ALIAS) else self.vs

    def on_device(self, device_class: str) -> Threshold | None:
        """The bound for this device class (``expected x factor`` made a min or max); ``None``: no expected value."""
        if self.factor is None:
            return self
        table = dict(self.expected)
        value = table.get(device_class, table.get(DEFAULT_DEVICE))
        if value is None:
            return None
        bound = value * self.factor
        return replace(self, min=bound if self.factor < 1 else None, max=bound if self.factor > 1 else None)

    def describe(self) -> str:
        """A short human form, e.g. ``mean psnr >= 30`` or ``clip_score drop <= 0.5 vs fp16 (interval)``."""
        parts = []
        stat = "" if self.stat == "mean" else f"{self.stat} "
        if self.factor is not None and self.min is None and self.max is None:
            sign = "<=" if self.factor > 1 else ">="
            values = ", ".join(f"{value:g} on {device}" for device, value in self.expected)
            parts.append(f"{stat}{self.metric} {sign} expected x {self.factor:g} ({values})")
        if self.min is not None:
            parts.append(f"{stat}{self.metric} >= {self.min:g}")
        if self.max is not None:
            parts.append(f"{stat}{self.metric} <= {self.max:g}")
        vs = self.vs or "reference"
        if self.max_drop is not None:
            parts.append(f"{self.metric} drop <= {self.max_drop:g} vs {vs}")
        if self.max_rise is not None:
            parts.append(f"{self.metric} rise <= {self.max_rise:g} vs {vs}")
        text = " and ".join(parts)
        return f"{text} (interval)" if self.basis == "interval" else text

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Threshold:
        expected = tuple((str(device), float(value)) for device, value in data.get("expected", ()))
        return cls(**{**data, "expected": expected})


def parse_thresholds(
    table: Mapping[str, Any], where: Where, metric_names: tuple[str, ...]
) -> dict[str, tuple[Threshold, ...]]:
    """Parse a ``[thresholds]`` table: ``metric = {..}`` or ``metric = [{..}, ..]`` or ``metric = false``.

    ``false`` disables a suite-wide threshold for one configuration (an empty tuple).
    """
    parsed: dict[str, tuple[Threshold, ...]] = {}
    tomlread.check_keys(table, metric_names, where, "metric")
    for metric, value in table.items():
        if value is False:
            parsed[metric] = ()
            continue
        items = value if isinstance(value, list) else [value]
        thresholds = []
        for index, item in enumerate(items):
            key = metric if not isinstance(value, list) else f"{metric}[{index}]"
            if not isinstance(item, dict):
                raise where.error(key, "expected a table like { min = 30 }, a list of such tables, or false")
            thresholds.append(_parse_one(metric, item, where.child(key)))
        parsed[metric] = tuple(thresholds)
    return parsed


def _parse_one(metric: str, table: Mapping[str, Any], where: Where) -> Threshold:
    tomlread.check_keys(table, _KEYS, where)
    bounds = {key: tomlread.get(table, key, float, where) for key in ("min", "max", "max_drop", "max_rise")}
    expected, factor = _expected(table, where)
    if all(v is None for v in bounds.values()) and factor is None:
        raise where.error("", "a threshold needs at least one of min, max, max_drop, max_rise, or expected + factor")
    if factor is not None and any(v is not None for v in bounds.values()):
        raise where.error("factor", "expected x factor is a bound of its own; give it in a separate threshold")
    for key in ("max_drop", "max_rise"):
        value = bounds[key]
        if value is not None and value < 0:
            raise where.error(key, f"must be >= 0, got {value:g}")
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        raise where.error("min", f"min {bounds['min']:g} is above max {bounds['max']:g}")
    stat = tomlread.get(table, "stat", str, where, "mean") or "mean"
    if stat not in STATS and not QUANTILE.match(stat):
        raise where.error("stat", unknown("statistic", stat, [*STATS, "p1 .. p50 (a low tail, e.g. p25)"]))
    if QUANTILE.match(stat) and (bounds["max_drop"] is not None or bounds["max_rise"] is not None):
        raise where.error("stat", f"stat = {stat!r} bounds the metric itself: give min or max, not a change")
    basis = tomlread.get_choice(table, "basis", BASES, where, "estimate")
    if basis == "interval" and stat != "mean":
        raise where.error(
            "basis", f"basis = 'interval' judges the mean's 95% interval; it needs stat = 'mean', not {stat!r}"
        )
    vs = tomlread.get(table, "vs", str, where)
    if vs is not None and bounds["max_drop"] is None and bounds["max_rise"] is None:
        raise where.error("vs", "vs only applies with max_drop or max_rise")
    return Threshold(metric=metric, stat=stat, vs=vs, basis=basis, expected=expected, factor=factor, **bounds)


def _expected(table: Mapping[str, Any], where: Where) -> tuple[tuple[tuple[str, float], ...], float | None]:
    """``expected = 0.2`` or ``expected = { "cuda: NVIDIA H200" = 0.15, default = 0.2 }``, with ``factor``."""
    raw, factor = table.get("expected"), tomlread.get(table, "factor", float, where)
    if raw is None and factor is None:
        return (), None
    if raw is None or factor is None:
        raise where.error("expected" if raw is None else "factor", "expected and factor go together")
    if factor <= 0 or factor == 1:
        raise where.error("factor", f"must be > 1 (an upper bound) or between 0 and 1 (a lower bound), got {factor:g}")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return ((DEFAULT_DEVICE, float(raw)),), factor
    if (
        isinstance(raw, dict)
        and raw
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw.values())
    ):
        return tuple((str(device), float(value)) for device, value in raw.items()), factor
    raise where.error(
        "expected",
        'expected a number, or a table of device class -> number like { "cuda: NVIDIA H200" = 0.15, default = 0.2 }',
    )
