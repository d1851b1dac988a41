"""Speed and memory against a baseline, judged on measurements that are really independent.

Time: the unit is one timed generation call (a batch), never a sample, and warm-up calls
are left out. The change is the difference of the medians of seconds per image, with a
bootstrap interval that resamples each run's calls independently. With fewer than
``MIN_BATCHES`` calls on either side there is no verdict, only "not enough measurements".
On a CPU the seconds are also divided by the run's speed probe, so a virtual CPU that runs
faster in one process than in the next does not look like a change: a regression must show
both in the raw and in the probe-relative time. When other processes kept the machine busy
during either run, a rise is reported as inconclusive, not as a failure. Timings from
another machine, or from the sample cache, are never compared.

Memory: one measurement per run (allocator counters are exact), judged on the estimate
with a tolerance that has an absolute part in MB as well as a relative one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness.plan.tolerance import INCONCLUSIVE, REGRESSED, UNTESTED, Tolerance, judge
from harness.results import ConfigResult
from harness.stats import resampled_medians, stable_seed
from harness.timing import AUTO_TIMING_PASSES, BASELINE_TIMING_HINT, MIN_TIMED_CALLS, BatchTiming, measured

MIN_BATCHES = MIN_TIMED_CALLS
# Below MIN_BATCHES calls a rise still fails when every call of this run is slower than every call of
# the baseline by the tolerance plus this much: more than a single call's time was seen to vary between
# clean runs (2-7% on an H200; 17% probe-relative and 60% raw across fresh processes on a 2-core VM).
FAR_BEYOND_NOISE_PCT = 50.0
BUSY_CORES = 0.25  # other processes' CPU use (in cores) from which a CPU timing counts as disturbed
TIME_METRICS: Mapping[str, Callable[[BatchTiming], float | None]] = {
    "median_image_s": lambda t: t.image_s,
    "median_denoiser_s": lambda t: t.denoiser_image_s,
}
MEMORY_METRICS = ("peak_rss_mb", "peak_gpu_allocated_mb", "gpu_resident_mb")
UNITS = {**dict.fromkeys(TIME_METRICS, "s"), **dict.fromkeys(MEMORY_METRICS, "MB")}


@dataclass(frozen=True)
class Verdict:
    """A judged change of one performance metric: the values, the change with its interval, the words."""

    base_value: float | None
    value: float | None
    change: float | None
    low: float | None
    high: float | None
    n: int
    status: str
    reason: str


def _median_difference_interval(cur: np.ndarray, base: np.ndarray, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    cur_medians = resampled_medians(cur, rng)  # this run's first: the interval's seeds stay as they were
    low, high = np.quantile(cur_medians - resampled_medians(base, rng), [0.025, 0.975])
    return float(low), float(high)


def judge_time(tolerance: Tolerance, base: Sequence[float], cur: Sequence[float], seed: int) -> Verdict:
    """Judge per-call seconds per image of the baseline against this run's (warm-up already left out)."""
    base_array, cur_array = np.asarray(base, dtype=float), np.asarray(cur, dtype=float)
    if base_array.size < MIN_BATCHES or cur_array.size < MIN_BATCHES:
        base_value = float(np.median(base_array)) if base_array.size else None
        value = float(np.median(cur_array)) if cur_array.size else None
        change = value - base_value if value is not None and base_value is not None else None
        far = _far_beyond_noise(tolerance, base_array, cur_array)
        if far is not None:
            return Verdict(base_value, value, change, None, None, int(cur_array.size), REGRESSED, far)
        reason = (
            f"not enough measurements: n={cur_array.size} timed batches in this run, {base_array.size} in the "
            f"baseline (at least {MIN_BATCHES} each; a run with --baseline adds up to {AUTO_TIMING_PASSES} timing "
            "passes by itself, --timing-repeats N adds N to either run)"
        )
        if base_array.size < MIN_BATCHES:
            reason += f"; {BASELINE_TIMING_HINT} so that it can judge speed"
        return Verdict(base_value, value, change, None, None, int(cur_array.size), INCONCLUSIVE, reason)
    base_value, value = float(np.median(base_array)), float(np.median(cur_array))
    low, high = _median_difference_interval(cur_array, base_array, seed)
    status, reason = judge(tolerance, value - base_value, low, high, base_value, "s")
    if base_value > 0:
        detectable = 100.0 * (tolerance.allowed(base_value) + (high - low) / 2.0) / base_value
        reason += f"; n={cur_array.size}/{base_array.size} batches detect a rise of about {detectable:.0f}% or more"
    return Verdict(base_value, value, value - base_value, low, high, int(cur_array.size), status, reason)


def _far_beyond_noise(tolerance: Tolerance, base: np.ndarray, cur: np.ndarray) -> str | None:
    """The reason a rise is a regression even at small n, or ``None``: every call of this run slower than every
    call of the baseline by more than the tolerance plus ``FAR_BEYOND_NOISE_PCT``."""
    if not base.size or not cur.size or tolerance.sign < 0:
        return None
    slowest_base, fastest_cur = float(base.max()), float(cur.min())
    if slowest_base <= 0:
        return None
    bar = tolerance.allowed(slowest_base) + FAR_BEYOND_NOISE_PCT / 100.0 * slowest_base
    if fastest_cur - slowest_base <= bar:
        return None
    rise = 100.0 * (fastest_cur - slowest_base) / slowest_base
    return (
        f"n={cur.size}/{base.size} timed batches, too few for an interval, but even the fastest call of this run is "
        f"{rise:+.0f}% on the slowest of the baseline: beyond the tolerance plus the {FAR_BEYOND_NOISE_PCT:.0f}% "
        "a single call may vary between runs"
    )


def _load(timings: Sequence[BatchTiming]) -> float:
    others = [t.others_cores for t in timings if t.others_cores is not None]
    return float(np.median(others)) if others else 0.0


def time_verdict(
    metric: str, tolerance: Tolerance, config: ConfigResult, other: ConfigResult, on_cpu: bool
) -> Verdict | None:
    """The time verdict of one configuration, or ``None`` when neither run timed this metric."""
    of = TIME_METRICS[metric]
    cur_timings = [t for t in measured(config.batches) if of(t) is not None]
    base_timings = [t for t in measured(other.batches) if of(t) is not None]
    if not cur_timings and not base_timings:
        return None
    seed = stable_seed(config.name, metric)
    if on_cpu and tolerance.cpu_noise_pct:
        tolerance = replace(tolerance, max_rise_pct=(tolerance.max_rise_pct or 0.0) + tolerance.cpu_noise_pct)
    raw_cur = [v for t in cur_timings if (v := of(t)) is not None]
    raw_base = [v for t in base_timings if (v := of(t)) is not None]
    probed = on_cpu and all(t.probe_s for t in (*cur_timings, *base_timings))
    raw_verdict = judge_time(tolerance, raw_base, raw_cur, seed)
    verdict = raw_verdict
    if probed:
        # Seconds per image in units of the run's speed probe (the median of its probes, one before each call):
        # the speed the machine ran at in that process cancels. Per call the probe is too noisy to divide by.
        base_probe = float(np.median([t.probe_s or 0.0 for t in base_timings]))
        cur_probe = float(np.median([t.probe_s or 0.0 for t in cur_timings]))
        verdict = judge_time(tolerance, [v / base_probe for v in raw_base], [v / cur_probe for v in raw_cur], seed)
        verdict = _in_seconds(verdict, raw_base, raw_cur)
        # Two estimates of one change: a regression must show in both. Where only the raw time rose, the probe
        # slowed down as much (the machine was slower); where only the probe-relative time did, they disagree.
        if verdict.status == REGRESSED and raw_verdict.status != REGRESSED:
            verdict = replace(
                verdict,
                status=INCONCLUSIVE,
                reason=f"{verdict.reason}; but the raw time did not rise past the tolerance ({raw_verdict.reason}): "
                "the probe and the pipeline disagree about the machine's speed, not judged",
            )
    busy = max(_load(cur_timings), _load(base_timings))
    if verdict.status == REGRESSED and on_cpu and busy >= BUSY_CORES:
        # Measured: under contention this process's CPU time inflates too, so nothing here can be judged.
        return replace(
            verdict,
            status=INCONCLUSIVE,
            reason=f"{verdict.reason}; but other processes kept {busy:.2f} cores busy while it was timed: not judged",
        )
    return verdict


def _in_seconds(verdict: Verdict, raw_base: Sequence[float], raw_cur: Sequence[float]) -> Verdict:
    """A verdict judged on probe-relative times, shown in seconds (the raw medians, the change rescaled)."""
    if verdict.base_value is None or not raw_base or not raw_cur:
        return verdict
    base, cur = float(np.median(raw_base)), float(np.median(raw_cur))
    scale = base / verdict.base_value if verdict.base_value else 1.0

    def rescaled(value: float | None) -> float | None:
        return None if value is None else value * scale

    raw_change = 100.0 * (cur - base) / base if base else 0.0
    return replace(
        verdict,
        base_value=base,
        value=cur,
        change=rescaled(verdict.change),
        low=rescaled(verdict.low),
        high=rescaled(verdict.high),
        reason=f"{verdict.reason}; judged relative to each run's CPU speed probe "
        f"(raw medians {base:.4g} s -> {cur:.4g} s, {raw_change:+.1f}%)",
    )


def _memory_value(metric: str, config: ConfigResult) -> float | None:
    """A memory figure; peak RSS is the external runtime's own for command configurations."""
    return config.peak_rss_mb if metric == "peak_rss_mb" else config.memory.get(metric)


def memory_verdict(metric: str, tolerance: Tolerance, config: ConfigResult, other: ConfigResult) -> Verdict | None:
    base_raw, raw = _memory_value(metric, other), _memory_value(metric, config)
    if base_raw is None or raw is None:
        return None
    base_value, value = float(base_raw), float(raw)
    status, reason = judge(tolerance, value - base_value, None, None, base_value, "MB")
    return Verdict(base_value, value, value - base_value, None, None, 1, status, reason)


def not_comparable(config: ConfigResult, other: ConfigResult, machines: str | None) -> str | None:
    """Why this configuration's time and memory cannot be compared at all, if they cannot."""
    if machines:
        return machines
    if not config.measured:
        return "timing and memory not measured (cached) in this run"
    if not other.measured:
        return "timing and memory not measured (cached) in the baseline"
    return None


def _has(metric: str, config: ConfigResult) -> bool:
    if metric in TIME_METRICS:
        return any(TIME_METRICS[metric](t) is not None for t in config.batches)
    return _memory_value(metric, config) is not None


def machine_difference(current_env: Mapping[str, object], baseline_env: Mapping[str, object]) -> str | None:
    """Why two runs' timings are not comparable: another device class, CPU model or thread count."""
    mine, theirs = current_env.get("device_class"), baseline_env.get("device_class")
    if mine and theirs and mine != theirs:
        return f"not compared: the baseline ran on {theirs}, this run on {mine}"
    return None


def performance_verdicts(
    config: ConfigResult,
    other: ConfigResult,
    tolerances: Mapping[str, Tolerance],
    machines: str | None,
    on_cpu: bool,
) -> list[tuple[str, Verdict]]:
    """Every performance metric with a tolerance: its verdict, or an untested one that says why."""
    out: list[tuple[str, Verdict]] = []
    blocked = not_comparable(config, other, machines)
    for metric, tolerance in tolerances.items():
        if metric not in TIME_METRICS and metric not in MEMORY_METRICS:
            continue
        if blocked:
            if _has(metric, config) or _has(metric, other):
                out.append((metric, Verdict(None, None, None, None, None, 0, UNTESTED, blocked)))
            continue
        if metric in TIME_METRICS:
            verdict = time_verdict(metric, tolerance, config, other, on_cpu)
        else:
            verdict = memory_verdict(metric, tolerance, config, other)
        if verdict is not None:
            out.append((metric, verdict))
    return out
