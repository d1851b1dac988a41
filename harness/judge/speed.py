"""Speed against a configuration of the same run, and whether a configuration did anything at all.

The speedup of a configuration is the median seconds per image of its base (the suite's
reference configuration, or ``speedup_vs``) over its own, on the calls of this run: the
unit is one timed generation call (a batch), warm-up calls (the first of each
configuration, where torch.compile compiles and caches calibrate) left out and reported
apart. Its 95% interval resamples each side's calls independently. On a CPU each call's
time is taken relative to the speed probe timed before it (the machine's speed at that
moment, :mod:`harness.timing`), so the minutes between two configurations do not count as
a speed-up. With fewer than ``MIN_TIMED_CALLS`` calls on either side there is no interval.

``min_speedup`` gates it: the check fails only when the whole interval is below the bound
(noise alone cannot fail it) and is skipped, saying why, when there is no interval.

"Did it apply?": a configuration is compared with its base for each effect it could have:
``pixels`` (images bit-identical to the base's), ``speed`` (a speedup whose interval holds
1) and ``memory`` (peak GPU memory within 1% of the base's: allocator counters are exact;
on a CPU the process RSS is too coarse to tell). Each no-op found is reported; the effects
a configuration lists in ``effects`` fail it when they are missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.kinds.base import ConfigSpec
from harness.plan.suite import Suite
from harness.results import FAIL, PASS, SKIPPED, STATUS_OK, CheckOutcome, ConfigResult, RunResult, image_equivalence
from harness.stats import resampled_medians, stable_seed
from harness.timing import MIN_TIMED_CALLS, BatchTiming, measured

SPEEDUP = "speedup"  # the metric name of the speed gate's outcomes
EFFECT_WORDS = {"pixels": "pixels differ from", "speed": "faster than", "memory": "peak memory differs from"}
MEMORY_SAME_PCT = 1.0  # peak GPU memory within this of the base's: no memory effect


@dataclass(frozen=True)
class Speedup:
    """One configuration's speed against its base, in this run."""

    vs: str
    value: float | None = None  # base seconds per image / this configuration's (steady state)
    low: float | None = None
    high: float | None = None
    n: int = 0  # timed calls (batches) of this configuration, warm-up left out
    n_vs: int = 0
    image_s: float | None = None  # median seconds per image, steady state
    vs_image_s: float | None = None
    warmup_image_s: float | None = None  # the first call, per image (compiling, calibrating, first kernels)
    vs_warmup_image_s: float | None = None
    relative_to_probe: bool = False
    note: str = ""

    def describe(self) -> str:
        if self.value is None:
            return f"speedup vs {self.vs}: {self.note}"
        interval = (
            f" (95% CI {self.low:.3g} to {self.high:.3g})" if self.low is not None and self.high is not None else ""
        )
        return f"speedup vs {self.vs} {self.value:.3g}x{interval}, n={self.n}/{self.n_vs} timed calls"


def speedup(config: ConfigResult, base: ConfigResult, on_cpu: bool) -> Speedup:
    """``config``'s speedup over ``base`` from the calls each timed in this run."""
    mine, theirs = measured(config.batches), measured(base.batches)
    found = Speedup(vs=base.name, warmup_image_s=_warmup(config.batches), vs_warmup_image_s=_warmup(base.batches))
    if not config.measured or not base.measured or not mine or not theirs:
        cached = config.name if not config.measured or not mine else base.name
        return replace(found, note=f"no timed calls of {cached!r} in this run (served from the sample cache?)")
    probed = on_cpu and all(t.probe_s for t in (*mine, *theirs))
    cur, ref = _per_image(mine, probed), _per_image(theirs, probed)
    found = replace(
        found,
        n=len(mine),
        n_vs=len(theirs),
        image_s=float(np.median([t.image_s for t in mine])),
        vs_image_s=float(np.median([t.image_s for t in theirs])),
        relative_to_probe=probed,
        value=float(np.median(ref) / np.median(cur)),
    )
    if len(mine) < MIN_TIMED_CALLS or len(theirs) < MIN_TIMED_CALLS:
        return replace(
            found,
            note=f"n={len(mine)}/{len(theirs)} timed calls: too few for an interval (at least {MIN_TIMED_CALLS} "
            "each; --timing-repeats N adds N passes, a smaller batch_size more calls)",
        )
    rng = np.random.default_rng(stable_seed(config.name, base.name, SPEEDUP))
    ratios = resampled_medians(ref, rng) / resampled_medians(cur, rng)
    low, high = np.quantile(ratios, [0.025, 0.975])
    return replace(found, low=float(low), high=float(high))


def _per_image(timings: Sequence[BatchTiming], probed: bool) -> np.ndarray:
    """Seconds per image of each call; on a CPU in units of the speed probe timed just before it."""
    return np.asarray([t.image_s / (t.probe_s or 1.0) if probed else t.image_s for t in timings], dtype=float)


def _warmup(timings: Sequence[BatchTiming]) -> float | None:
    first = [t for t in timings if t.warmup]
    return round(first[0].image_s, 6) if first else None


def effect_base(spec: ConfigSpec, suite: Suite) -> str:
    """The configuration whose images and memory ``spec`` is compared with for "did it apply?": the same
    configuration without its speed-ups where the suite has one, else its speed base."""
    speedups = getattr(spec.options, "speedups", None)
    if speedups is not None and speedups.any:
        plain = replace(spec.options, speedups=type(speedups)())
        for other in suite.configs:
            if other.name != spec.name and other.kind == spec.kind and other.options == plain:
                return other.name
    return suite.speed_base(spec.name)


def _claims_speed(spec: ConfigSpec) -> bool:
    speedups = getattr(spec.options, "speedups", None)
    return spec.min_speedup is not None or "speed" in spec.effects or bool(speedups is not None and speedups.any)


def effects(
    config: ConfigResult, base: ConfigResult | None, spec: ConfigSpec, speed: Speedup | None, run_dir: Path
) -> dict[str, Any]:
    """Each effect the configuration shows against ``base`` (``True``/``False``/``None`` unknown), with why."""
    found: dict[str, Any] = {"base": base.name if base else None}
    if base is None or base.status != STATUS_OK:
        found["note"] = "its base did not run in this run"
        return found
    pixels = image_equivalence(config, base, run_dir, first_difference=True)
    found["pixels"] = None if not pixels["samples_compared"] else not pixels["identical"]
    found["pixels_detail"] = pixels
    if speed is not None and speed.value is not None and speed.low is not None and speed.high is not None:
        found["speed"] = not (speed.low <= 1.0 <= speed.high)
    else:
        found["speed"] = None
    mine, theirs = config.memory.get("peak_gpu_allocated_mb"), base.memory.get("peak_gpu_allocated_mb")
    if mine is not None and theirs and config.measured and base.measured:
        found["memory"] = abs(float(mine) - float(theirs)) > MEMORY_SAME_PCT / 100.0 * float(theirs)
    else:
        found["memory"] = None
    found["noop"] = _noop_words(found, spec, base.name)
    return found


def _noop_words(found: Mapping[str, Any], spec: ConfigSpec, base: str) -> list[str]:
    words = []
    if found.get("pixels") is False:
        words.append(f"images bit-identical to those of {base!r}")
    if found.get("speed") is False and _claims_speed(spec):
        words.append(f"no speedup over {base!r} beyond noise")
    if found.get("memory") is False and "memory" in spec.effects:
        words.append(f"peak GPU memory within {MEMORY_SAME_PCT:g}% of that of {base!r}")
    return words


def judge_speed(
    result: RunResult, suite: Suite, run_dir: Path, judged: Sequence[str]
) -> tuple[RunResult, dict[str, list[CheckOutcome]]]:
    """Every configuration's speedup and effects into its result (``speed``), and the outcomes of the speed gates
    and the required effects, by configuration."""
    on_cpu = str(result.environment.get("device_class", "")).startswith("cpu")
    outcomes: dict[str, list[CheckOutcome]] = {}
    names = {spec.name for spec in suite.configs}
    for config in result.configs:
        if config.name not in names or config.status != STATUS_OK:
            continue
        spec = suite.config(config.name)
        vs = suite.speed_base(spec.name)
        other = result.config(vs)
        speed = (
            speedup(config, other, on_cpu)
            if other is not None and other.status == STATUS_OK and vs != config.name
            else None
        )
        target = effect_base(spec, suite)
        shown = effects(config, result.config(target), spec, speed, run_dir) if target != config.name else {}
        record = {**({"speedup": asdict(speed)} if speed else {}), **({"effects": shown} if shown else {})}
        result = result.with_config(replace(config, speed=record))
        if config.name in judged:
            outcomes[config.name] = _outcomes(spec, speed, shown, vs)
    return result, outcomes


def _outcomes(spec: ConfigSpec, speed: Speedup | None, shown: Mapping[str, Any], vs: str) -> list[CheckOutcome]:
    out = []
    if spec.min_speedup is not None:
        out.append(speed_check(spec, speed, vs))
    for effect in spec.effects:
        name = f"applies ({EFFECT_WORDS[effect]} {shown.get('base') or vs})"
        state = shown.get(effect)
        if state is None:
            why = shown.get("note") or (
                "not measurable here (GPU allocator counters only)" if effect == "memory" else "not measured"
            )
            out.append(CheckOutcome(spec.name, name, SKIPPED, f"not judged: {why}", metric=f"effect_{effect}"))
        elif state:
            out.append(
                CheckOutcome(spec.name, name, PASS, f"{effect}: an effect is measured", metric=f"effect_{effect}")
            )
        else:
            words = "; ".join(shown.get("noop", [])) or f"no {effect} effect"
            out.append(CheckOutcome(spec.name, name, FAIL, f"did it apply? {words}", metric=f"effect_{effect}"))
    return out


def speed_check(spec: ConfigSpec, speed: Speedup | None, vs: str) -> CheckOutcome:
    """``min_speedup``: fails when the whole 95% interval of the speedup is below the bound."""
    bound = float(spec.min_speedup or 0.0)
    name = f"{SPEEDUP} >= {bound:g} vs {vs}"
    if speed is None:
        return CheckOutcome(spec.name, name, SKIPPED, f"not judged: {vs!r} did not run", metric=SPEEDUP)
    if speed.value is None or speed.low is None or speed.high is None:
        return CheckOutcome(
            spec.name, name, SKIPPED, f"not judged: {speed.describe()}", metric=SPEEDUP, value=speed.value, n=speed.n
        )
    if speed.high < bound:
        status, words = FAIL, f"below {bound:g} for the whole interval"
    elif speed.value < bound:
        status, words = PASS, f"the estimate is below {bound:g}, but not the whole interval: not failed on noise"
    else:
        status, words = PASS, "within bounds"
    warm = (
        f"; warm-up call {speed.warmup_image_s:.3g} s/image (steady {speed.image_s:.3g})"
        if speed.warmup_image_s is not None and speed.image_s is not None
        else ""
    )
    return CheckOutcome(
        spec.name,
        name,
        status,
        f"{speed.describe()}{warm}: {words}",
        metric=SPEEDUP,
        value=speed.value,
        bound=bound,
        n=speed.n,
    )
