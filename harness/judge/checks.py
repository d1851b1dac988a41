"""Thresholds to outcomes: pass / fail / error / skipped, each with its reason in words.

Like nox's results, outcomes behave as booleans and the exit code is a reduction over
them: 0 when nothing failed or errored, 1 otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness.errors import EXIT_FAILED, EXIT_OK
from harness.plan.thresholds import REFERENCE_ALIAS, Threshold
from harness.results import (
    ERROR,
    FAIL,
    PASS,
    SKIPPED,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SKIPPED,
    XFAIL,
    CheckOutcome,
    ConfigResult,
    MetricSummary,
    RunResult,
    paired_values,
    sample_values,
)
from harness.stats import bootstrap_interval, stable_seed, tail_value

HEALTH_CHECK = "images are finite and not blank"


NEGATIVE_CONTROL_CHECK = "is flagged (negative control)"
RUNS_CHECK = "runs"  # a configuration that crashed or was skipped: its one outcome
JUDGED_CHECK = "judged"  # a configuration run only to support another's comparison: its one outcome


def run_checks(
    run: RunResult,
    thresholds_for: Mapping[str, Sequence[Threshold]],
    reference_blank: Iterable[str] = (),
    expected_to_fail: Iterable[str] = (),
    not_computed: Mapping[str, str] | None = None,
    supporting: Mapping[str, str] | None = None,
    more: Mapping[str, Sequence[CheckOutcome]] | None = None,
) -> tuple[CheckOutcome, ...]:
    """Every outcome of every configuration, in configuration order.

    ``not_computed`` maps optional metrics this machine could not compute to the reason:
    each configuration gets a skipped outcome for each, and thresholds on them are skipped.

    A configuration in ``expected_to_fail`` is a negative control: its failed checks
    become ``xfail``, and if none failed, one ``fail`` says the gates lost their teeth.
    A configuration in ``supporting`` was run only for another's comparison (``--config``
    did not name it): it gets one skipped outcome saying so, and is not judged. ``more`` holds outcomes judged
    elsewhere (the speed gate and the "did it apply?" effects, :mod:`harness.judge.speed`), by configuration.
    """
    blank_refs = set(reference_blank)
    controls = set(expected_to_fail)
    missing = dict(not_computed or {})
    outcomes: list[CheckOutcome] = []
    support = dict(supporting or {})
    for config in run.configs:
        if config.name in support:
            outcomes.append(
                CheckOutcome(config.name, JUDGED_CHECK, SKIPPED, f"not judged: run only because {support[config.name]}")
            )
            continue
        if config.status == STATUS_ERROR:
            outcomes.append(CheckOutcome(config.name, RUNS_CHECK, ERROR, config.message))
            continue
        if config.status == STATUS_SKIPPED:
            outcomes.append(CheckOutcome(config.name, RUNS_CHECK, SKIPPED, config.message))
            continue
        own = [health_outcome(config, blank_refs)]
        own += [
            CheckOutcome(config.name, f"{metric} computed", SKIPPED, f"not computed: {reason}", metric=metric)
            for metric, reason in missing.items()
        ]
        own += [
            evaluate(threshold, config, run)
            for threshold in thresholds_for.get(config.name, ())
            if threshold.metric not in missing
        ]
        own += list((more or {}).get(config.name, ()))
        if config.name in controls:
            own = _as_negative_control(config.name, own)
        outcomes.extend(own)
    return tuple(outcomes)


def _as_negative_control(name: str, outcomes: list[CheckOutcome]) -> list[CheckOutcome]:
    flagged = [o for o in outcomes if o.status == FAIL]
    converted = [
        replace(o, status=XFAIL, reason=f"expected failure: {o.reason}") if o.status == FAIL else o for o in outcomes
    ]
    if flagged:
        return [
            *converted,
            CheckOutcome(name, NEGATIVE_CONTROL_CHECK, PASS, f"{len(flagged)} checks flag it, as they must"),
        ]
    return [
        *converted,
        CheckOutcome(
            name,
            NEGATIVE_CONTROL_CHECK,
            FAIL,
            "this known-bad configuration passed every check: the gates no longer catch what they are meant to",
        ),
    ]


def uncovered_gates(
    outcomes: Iterable[CheckOutcome],
    thresholds_for: Mapping[str, Sequence[Threshold]],
    controls: Iterable[str],
    also_gated: Iterable[str] = (),
) -> list[str]:
    """Gated metrics (and ``also_gated``: the speed gate, required effects) that no negative control of the run
    trips: gates nobody has seen fail."""
    controls = set(controls)
    gated = {threshold.metric for thresholds in thresholds_for.values() for threshold in thresholds}
    gated |= set(also_gated)
    caught = {o.metric for o in outcomes if o.config in controls and o.status == XFAIL}
    return sorted(gated - caught)


def coverage_warnings(
    outcomes: Iterable[CheckOutcome],
    thresholds_for: Mapping[str, Sequence[Threshold]],
    controls: Iterable[str],
    also_gated: Iterable[str] = (),
) -> list[str]:
    """One warning per gate that the run's negative controls never trip (none when the run has no control)."""
    controls = list(controls)
    if not controls:
        return []
    return [
        f'no negative control trips the {metric} gate: add a configuration with expect = "fail" that it must '
        "catch, or the gate may be unable to fail (docs/regression.md)"
        for metric in uncovered_gates(outcomes, thresholds_for, controls, also_gated)
    ]


def exit_code(outcomes: Iterable[CheckOutcome]) -> int:
    return EXIT_FAILED if any(o.status in (FAIL, ERROR) for o in outcomes) else EXIT_OK


def health_outcome(config: ConfigResult, reference_blank: set[str]) -> CheckOutcome:
    """NaN/Inf anywhere, or a blank image where the reference is not blank, fails on its own."""
    nonfinite = [s.key for s in config.samples if s.nonfinite_fraction > 0]
    blank = [s.key for s in config.samples if s.blank and s.key not in reference_blank]
    n = len(config.samples)
    if not nonfinite and not blank:
        return CheckOutcome(config.name, HEALTH_CHECK, PASS, f"all {n} images finite and not blank", n=n)
    parts = []
    if nonfinite:
        parts.append(f"{len(nonfinite)}/{n} images contain NaN/Inf ({_few(nonfinite)})")
    if blank:
        parts.append(f"{len(blank)}/{n} images are blank ({_few(blank)})")
    return CheckOutcome(
        config.name, HEALTH_CHECK, FAIL, "; ".join(parts), value=float(len(nonfinite) + len(blank)), n=n
    )


def _few(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.4g}"


def evaluate(threshold: Threshold, config: ConfigResult, run: RunResult) -> CheckOutcome:
    """Judge one threshold for one configuration."""
    summary = config.summary(threshold.metric)
    name = threshold.describe()
    device_class = str(run.environment.get("device_class", ""))
    resolved = threshold.on_device(device_class)
    if resolved is None:
        return CheckOutcome(
            config.name,
            name,
            SKIPPED,
            f"no expected value for device class {device_class!r} and no default: add one to expected",
            metric=threshold.metric,
        )
    threshold = resolved
    if summary is None:
        return CheckOutcome(config.name, name, ERROR, f"{threshold.metric} was not computed", metric=threshold.metric)
    skipped = _not_judged(threshold, config, summary)
    if skipped:
        return CheckOutcome(config.name, name, SKIPPED, skipped, metric=threshold.metric, n=summary.n)
    if threshold.relative:
        return _evaluate_relative(threshold, config, run, summary.scope, summary.unit)
    return _evaluate_absolute(threshold, config, summary, name)


def _not_judged(threshold: Threshold, config: ConfigResult, summary: MetricSummary) -> str:
    """Why this summary cannot be judged against its bound (empty when it can)."""
    if summary.scope == "set" and config.sequential.get("early"):
        # A set metric is biased in n: only the full set is comparable with the bound (harness/judge/sequential.py).
        return (
            f"not judged: {threshold.metric} needs the full set of {config.sequential.get('planned')} samples; "
            f"sequential sampling stopped at n={summary.n} ({config.sequential.get('stopped')})"
        )
    if not summary.reliable:
        # Gating on a number that cannot be trusted at this n would pass or fail by chance.
        return f"not judged: {threshold.metric} is unreliable here ({summary.note})"
    return ""


def _evaluate_absolute(threshold: Threshold, config: ConfigResult, summary: MetricSummary, name: str) -> CheckOutcome:
    """A ``min``/``max`` bound on the mean (estimate or interval), the median, a low tail (``p25``: the value a
    quarter of the samples are at or beyond) or the worst sample."""
    unit = f" {summary.unit}" if summary.unit.strip("()") else ""
    value: float | None
    if summary.scope == "set" or threshold.stat == "mean":
        value, low, high = summary.mean, summary.ci_low, summary.ci_high
    elif threshold.quantile is not None:
        values = list(sample_values(config, threshold.metric).values())
        value, low, high = tail_value(values, summary.higher_is_better, threshold.quantile), None, None
    else:
        value = summary.median if threshold.stat == "median" else summary.worst
        low = high = None
    stat_text = f"{threshold.stat} {threshold.metric}" if summary.scope != "set" else threshold.metric
    interval = f" (95% CI {_fmt(low)} to {_fmt(high)})" if low is not None else ""
    detail = f"{stat_text} = {_fmt(value)}{unit}{interval}, n={summary.n}"
    if summary.note:
        detail += f"; {summary.note}"
    if value is None or not np.isfinite(value):
        return CheckOutcome(config.name, name, FAIL, f"{detail}: no finite value", metric=threshold.metric, n=summary.n)
    failures = []
    use_interval = threshold.basis == "interval" and low is not None and high is not None
    if threshold.min is not None:
        judged = high if use_interval else value
        if judged is not None and judged < threshold.min:
            failures.append(f"below {threshold.min:g}" + (" for the whole interval" if use_interval else ""))
    if threshold.max is not None:
        judged = low if use_interval else value
        if judged is not None and judged > threshold.max:
            failures.append(f"above {threshold.max:g}" + (" for the whole interval" if use_interval else ""))
    bound = threshold.min if threshold.min is not None else threshold.max
    status = FAIL if failures else PASS
    reason = f"{detail}: " + ("; ".join(failures) if failures else "within bounds")
    return CheckOutcome(
        config.name, name, status, reason, metric=threshold.metric, value=value, bound=bound, n=summary.n
    )


@dataclass(frozen=True)
class _Change:
    """``this - other``: the chosen statistic, the mean's 95% interval, and the worst per-sample changes."""

    n: int
    delta: float
    low: float | None
    high: float | None
    worst_drop: float
    worst_rise: float


def _change(threshold: Threshold, config: ConfigResult, run: RunResult, scope: str) -> _Change | str:
    """The paired change against ``threshold.vs``, or why it cannot be computed."""
    target = threshold.vs or REFERENCE_ALIAS
    metric = threshold.metric
    if target == REFERENCE_ALIAS:
        if scope == "set":
            return f"{metric} is a set metric; give vs = a configuration to compare with"
        reference_values = run.reference_scores.get(metric)
        if reference_values is None:
            return f"{metric} of the reference images is not available"
        other_values: Mapping[str, float] = reference_values
        other_summary = None
    else:
        other = run.config(target)
        if other is None or other.status != STATUS_OK:
            return f"cannot compare: configuration {target!r} " + (
                "was not run" if other is None else f"is {other.status}"
            )
        other_values = sample_values(other, metric)
        other_summary = other.summary(metric)
    if scope == "set":
        mine = config.summary(metric)
        if mine is None or other_summary is None:
            return f"{metric} missing for {config.name if mine is None else target}"
        delta = mine.mean - other_summary.mean
        low = high = None
        if (
            mine.ci_low is not None
            and mine.ci_high is not None
            and other_summary.ci_low is not None
            and other_summary.ci_high is not None
        ):
            # Conservative interval of a difference of two independent bootstrap intervals.
            low, high = mine.ci_low - other_summary.ci_high, mine.ci_high - other_summary.ci_low
        return _Change(mine.n, delta, low, high, -delta, delta)
    mine_values, theirs, keys = paired_values(config, other_values, metric)
    if not keys:
        return f"no paired samples of {metric} with {target}"
    deltas = mine_values - theirs
    low, high = bootstrap_interval(deltas, lambda m: m.mean(axis=1), stable_seed(config.name, metric, target))
    centre = float(np.median(deltas)) if threshold.stat == "median" else float(deltas.mean())
    return _Change(len(keys), centre, low, high, float(-deltas.min()), float(deltas.max()))


def _evaluate_relative(
    threshold: Threshold, config: ConfigResult, run: RunResult, scope: str, unit: str
) -> CheckOutcome:
    name = threshold.describe()
    metric = threshold.metric
    target = threshold.vs or REFERENCE_ALIAS
    change = _change(threshold, config, run, scope)
    if isinstance(change, str):
        return CheckOutcome(config.name, name, ERROR, change, metric=metric)
    unit_text = f" {unit}" if unit.strip("()") else ""
    has_interval = change.low is not None and change.high is not None and threshold.stat == "mean"
    use_interval = threshold.basis == "interval" and has_interval
    texts, failures = [], []
    for word, bound, estimate, worst, interval in (
        ("drop", threshold.max_drop, -change.delta, change.worst_drop, (_neg(change.high), _neg(change.low))),
        ("rise", threshold.max_rise, change.delta, change.worst_rise, (change.low, change.high)),
    ):
        if bound is None:
            continue
        value = worst if threshold.stat == "worst" else estimate
        text = f"{threshold.stat} {word} {_fmt(value)}{unit_text}"
        if has_interval:
            text += f" (95% CI {_fmt(interval[0])} to {_fmt(interval[1])})"
        texts.append(text)
        judged = interval[0] if use_interval else value
        if judged is not None and judged > bound:
            failures.append(f"{word} above {bound:g}" + (" for the whole interval" if use_interval else ""))
    detail = f"{metric} vs {target}: " + ", ".join(texts) + f", n={change.n}"
    bound_value = threshold.max_drop if threshold.max_drop is not None else threshold.max_rise
    status = FAIL if failures else PASS
    reason = f"{detail}: " + ("; ".join(failures) if failures else "within tolerance")
    return CheckOutcome(
        config.name, name, status, reason, metric=metric, value=change.delta, bound=bound_value, n=change.n
    )


def _neg(value: float | None) -> float | None:
    return None if value is None else -value
