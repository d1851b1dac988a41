"""How much worse than the baseline a value may get, and the verdict on one change.

A tolerance has one direction (a drop or a rise) and an absolute part, a relative part,
or both: the change allowed is ``absolute + percent x |baseline|``, like ``isclose``'s
``atol + rtol``. Memory uses both (``{ max_rise = 32, max_rise_pct = 1 }``: 32 MB plus 1%),
so a small regression on a large footprint is still seen and a few MB of allocator noise
on a small one is not.

``saturate_at`` says where differences stop being visible: per-sample values beyond it
count as that level before pairing (PSNR above 48 dB, an RMS error under one 8-bit level,
counts as 48 dB), so 60 -> 59 dB is no regression while 45 -> 40 dB is one.

``cpu_noise_pct`` (time only) is added to the relative part when the run is on a CPU: on a
shared CPU the same work timed in two processes differs by up to that much with no change
at all (measured in docs/regression.md), which no interval within one run can see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness import tomlread
from harness.errors import Where

REGRESSED, IMPROVED, PASSED, UNTESTED, INCONCLUSIVE = "regressed", "improved", "pass", "untested", "inconclusive"
BOUNDS = ("max_drop", "max_rise", "max_drop_pct", "max_rise_pct")
KEYS = (*BOUNDS, "basis", "saturate_at", "cpu_noise_pct")
# Time and memory; each quality metric carries its own (Metric.default_tolerance). Why these values:
# docs/regression.md (noise floors, measured false-alarm rates and detectable effects).
PERFORMANCE_TOLERANCES: dict[str, dict[str, float]] = {
    "median_image_s": {"max_rise_pct": 5.0, "cpu_noise_pct": 10.0},
    "median_denoiser_s": {"max_rise_pct": 5.0, "cpu_noise_pct": 10.0},
    "peak_rss_mb": {"max_rise": 32.0, "max_rise_pct": 5.0},
    "peak_gpu_allocated_mb": {"max_rise": 32.0, "max_rise_pct": 1.0},
    "gpu_resident_mb": {"max_rise": 32.0, "max_rise_pct": 1.0},
}


@dataclass(frozen=True)
class Tolerance:
    """One metric's allowed change against the baseline."""

    metric: str
    max_drop: float | None = None
    max_rise: float | None = None
    max_drop_pct: float | None = None
    max_rise_pct: float | None = None
    basis: str = "interval"
    saturate_at: float | None = None
    cpu_noise_pct: float | None = None  # time only: added on a CPU, where separate processes differ this much

    @property
    def sign(self) -> int:
        """-1 when a drop is what gets worse, +1 for a rise."""
        return -1 if self.max_drop is not None or self.max_drop_pct is not None else 1

    @property
    def absolute(self) -> float:
        value = self.max_drop if self.sign < 0 else self.max_rise
        return value or 0.0

    @property
    def percent(self) -> float:
        value = self.max_drop_pct if self.sign < 0 else self.max_rise_pct
        return value or 0.0

    @property
    def relative_only(self) -> bool:
        return self.absolute == 0.0 and self.percent > 0.0

    def allowed(self, base_value: float) -> float:
        """The change allowed, in the metric's units, for this baseline value."""
        return self.absolute + self.percent / 100.0 * abs(base_value)

    def describe(self) -> str:
        word = "drop" if self.sign < 0 else "rise"
        parts = []
        if self.absolute:
            parts.append(f"{self.absolute:g}")
        if self.percent:
            parts.append(f"{self.percent:g}%")
        text = f"{self.metric} {word} <= {' + '.join(parts) or '0'} vs baseline"
        if self.saturate_at is not None:
            text += f" (values beyond {self.saturate_at:g} count as {self.saturate_at:g})"
        if self.cpu_noise_pct:
            text += f" (+{self.cpu_noise_pct:g}% on a CPU)"
        return text + (" (interval)" if self.basis == "interval" else "")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tolerance:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def judge(
    tolerance: Tolerance, change: float, low: float | None, high: float | None, base_value: float, unit: str = ""
) -> tuple[str, str]:
    """``regressed`` / ``improved`` / ``pass`` and the words for it.

    On ``basis = "interval"`` a change regresses only when the whole 95% interval is past
    the tolerance, so noise alone never fails the gate.
    """
    use_interval = tolerance.basis == "interval" and low is not None and high is not None
    sign = tolerance.sign
    worse = sign * change
    interval = sorted([sign * low, sign * high]) if use_interval else None  # type: ignore[operator]
    allowed = tolerance.allowed(base_value)
    if tolerance.relative_only and base_value:
        scale, shown_unit = 100.0 / abs(base_value), "%"
        bound_text = f"{tolerance.percent:g}%"
    else:
        scale, shown_unit = 1.0, (f" {unit}" if unit else "")
        bound_text = f"{allowed:.4g}{shown_unit}"
        if tolerance.percent:
            bound_text += f" ({tolerance.absolute:g} + {tolerance.percent:g}% of {abs(base_value):.4g})"
    word = "drop" if sign < 0 else "rise"
    text = f"{word} {worse * scale:.4g}{shown_unit}"
    if interval:
        text += f" (95% CI {interval[0] * scale:.4g} to {interval[1] * scale:.4g}{shown_unit})"
    judged = interval[0] if interval else worse
    if judged > allowed:
        return REGRESSED, f"{text}: past the tolerance of {bound_text}" + (
            " for the whole interval" if use_interval else ""
        )
    # Better than the baseline: the whole interval below zero, or an estimate better by more than the tolerance.
    if (interval[1] < 0) if interval else (worse < -allowed):
        return IMPROVED, f"{text}: better than the baseline"
    return PASSED, f"{text}: within {bound_text}"


def default_tolerances(metrics: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Default tolerances by name: each metric class's ``default_tolerance`` (``metrics``: name -> class), then
    time and memory's."""
    return {
        **{name: dict(cls.default_tolerance) for name, cls in metrics.items() if cls.default_tolerance},
        **PERFORMANCE_TOLERANCES,
    }


def regression_tolerances(
    table: Mapping[str, Any] | None, where: Where, metric_names: Sequence[str], metrics: Mapping[str, Any]
) -> dict[str, Tolerance]:
    """A suite's ``[regression]`` table for its ``metric_names``, time and memory, over the defaults (each metric
    class's ``default_tolerance`` from ``metrics``, name -> class, then time and memory's)."""
    return parse_tolerances(table, where, [*metric_names, *PERFORMANCE_TOLERANCES], default_tolerances(metrics))


def parse_tolerances(
    table: Mapping[str, Any] | None,
    where: Where,
    names: Sequence[str],
    defaults: Mapping[str, Mapping[str, float]],
) -> dict[str, Tolerance]:
    """A suite's ``[regression]`` table over ``defaults``, for the metrics ``names`` (quality, time and memory)."""
    tolerances = {name: Tolerance.from_dict({"metric": name, **defaults[name]}) for name in names if name in defaults}
    tomlread.check_keys(table or {}, names, where, "metric")
    for name, value in (table or {}).items():
        if value is False:
            tolerances.pop(name, None)
            continue
        inner = where.child(name)
        if not isinstance(value, dict):
            raise where.error(name, "expected a table like { max_drop = 0.5 } or false")
        tomlread.check_keys(value, KEYS, inner)
        bounds = {key: tomlread.get(value, key, float, inner) for key in BOUNDS}
        given = [key for key, bound in bounds.items() if bound is not None]
        if not given or len({key.split("_")[1] for key in given}) > 1:
            raise inner.error(
                "",
                "give one direction: max_drop and/or max_drop_pct, or max_rise and/or max_rise_pct "
                "(the parts add up: { max_rise = 32, max_rise_pct = 1 } allows 32 plus 1% of the baseline)",
            )
        for key in given:
            if bounds[key] < 0:  # type: ignore[operator]
                raise inner.error(key, "must be >= 0")
        basis = tomlread.get_choice(value, "basis", ("interval", "estimate"), inner, "interval")
        # The noise floors (saturate_at, cpu_noise_pct) are kept from the defaults unless given; false turns one off.
        floors = {
            key: None
            if value.get(key) is False
            else tomlread.get(value, key, float, inner)
            if key in value
            else defaults.get(name, {}).get(key)
            for key in ("saturate_at", "cpu_noise_pct")
        }
        tolerances[name] = Tolerance(name, basis=basis, **floors, **bounds)
    return tolerances
