"""Where a run's wall time goes: startup, pipeline load, builds, generation, scoring per metric, report.

The per-configuration figures are already in each configuration's ``timing`` (``load_s``,
``generate_s``, ``score_<metric>_s``); this module adds them up into one ``phases`` table
for results.json, the console and the report, so the harness's own cost next to the
generation it measures is visible on every run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.results import RunResult


def since_process_start() -> float:
    """Seconds since this process started (imports included)."""
    import psutil

    return max(0.0, time.time() - psutil.Process().create_time())


def run_phases(
    configs: Any,
    startup_s: float,
    pipeline_load_s: float,
    reference_scoring_s: float,
    checks_s: float,
    scoring_memory: Mapping[str, Any] | None = None,
    setup_s: float = 0.0,
) -> dict[str, float]:
    """The phase table of a finished run (seconds, rounded), ``report_s`` and ``wall_s`` added by the caller.

    ``scoring_memory`` (a :class:`~harness.memory.PeakMemory` report of the scoring) adds
    ``scoring_peak_rss_mb`` and ``scoring_rss_rise_mb``: what scoring held beyond the process.
    ``setup_s`` is the run's preparation besides the pipeline load: verifying references,
    building the metrics, starting the device, and the imports these need.
    """
    phases: dict[str, float] = {"startup_s": startup_s, "setup_s": setup_s, "pipeline_load_s": pipeline_load_s}
    build = generate = timing_repeats = 0.0
    scoring: dict[str, float] = {}
    for config in configs:
        timing: Mapping[str, float] = config.timing
        build += float(timing.get("load_s", 0.0) or 0.0)
        generate += float(timing.get("generate_s", 0.0) or 0.0)
        timing_repeats += float(timing.get("repeats_s", 0.0) or 0.0)
        for key, value in timing.items():
            if key.startswith("score_") and key.endswith("_s"):
                scoring[key] = scoring.get(key, 0.0) + float(value)
    phases.update(build_s=build, generate_s=generate)
    if timing_repeats:
        phases["timing_repeats_s"] = timing_repeats
    phases["reference_scoring_s"] = reference_scoring_s
    phases.update(scoring)
    phases["scoring_s"] = reference_scoring_s + sum(scoring.values())
    phases["checks_s"] = checks_s
    if scoring_memory:
        phases["scoring_peak_rss_mb"] = float(scoring_memory["peak_rss_mb"])
        phases["scoring_rss_rise_mb"] = float(scoring_memory["rss_rise_mb"])
    return {key: round(value, 3) for key, value in phases.items()}


def with_report_time(result: RunResult, report_s: float) -> RunResult:
    """The run with the report's time and the whole wall time (since the process started) in its phases."""
    wall = since_process_start()
    return replace(result, phases={**result.phases, "report_s": round(report_s, 3), "wall_s": round(wall, 3)})


def describe(phases: Mapping[str, float]) -> str:
    """One line: the wall time and its parts, with scoring and overhead relative to generation."""
    if not phases:
        return ""
    generate = phases.get("generate_s", 0.0)
    wall = phases.get("wall_s", 0.0)
    metrics = sorted(
        ((k.removeprefix("score_").removesuffix("_s"), v) for k, v in phases.items() if k.startswith("score_")),
        key=lambda item: -item[1],
    )
    parts = [
        f"startup {phases.get('startup_s', 0.0):.1f}",
        f"setup {phases.get('setup_s', 0.0):.1f}",
        f"load {phases.get('pipeline_load_s', 0.0):.1f}",
        f"builds {phases.get('build_s', 0.0):.1f}",
        f"generation {generate:.1f}",
    ]
    if phases.get("timing_repeats_s"):
        parts.append(f"timing repeats {phases['timing_repeats_s']:.1f}")
    scoring = phases.get("scoring_s", 0.0)
    detail = ", ".join(f"{name} {value:.1f}" for name, value in metrics[:3])
    if "scoring_rss_rise_mb" in phases:
        detail += f"{', ' if detail else ''}memory +{phases['scoring_rss_rise_mb']:.0f} MB"
    parts.append(f"scoring {scoring:.1f}" + (f" ({detail})" if detail else ""))
    if "report_s" in phases:
        parts.append(f"report {phases['report_s']:.1f}")
    known = (
        "startup_s",
        "setup_s",
        "pipeline_load_s",
        "build_s",
        "generate_s",
        "timing_repeats_s",
        "scoring_s",
        "checks_s",
    )
    other = wall - sum(phases.get(key, 0.0) for key in (*known, "report_s"))
    if wall and other > 0.05:
        parts.append(f"other {other:.1f} (per-configuration memory resets and clean-up, results.json)")
    if not wall:  # before the report is written: the parts so far
        text = "time (s): " + " + ".join(parts)
        return text + (f"; scoring/generation {100 * scoring / generate:.0f}%" if generate > 0 else "")
    text = f"time: wall {wall:.1f} s = " + " + ".join(parts)
    if generate > 0:
        text += f"; wall/generation {wall / generate:.2f}x, scoring/generation {100 * scoring / generate:.0f}%"
    return text
