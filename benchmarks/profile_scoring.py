"""Where scoring's time goes: score a finished run's configurations again under cProfile.

Usage: python benchmarks/profile_scoring.py SUITE RUN_DIR [--cache-dir DIR] [--device D] [--top N]
Scores the references and every configuration of ``RUN_DIR/results.json`` with the suite's
metrics, as ``run`` does, and prints the wall time of each step and the functions with the
most time of their own. Nothing is asserted; nothing in the run folder is changed.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

from harness.environment import resolve_device
from harness.metrics.base import ScoringContext
from harness.plan.suite import load_suite
from harness.references import store as references
from harness.registry import build_registry
from harness.results import read_results
from harness.score.scoring import score_config, score_references


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", type=Path)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--cache-dir", type=Path, default=Path(".harness_cache"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    registry = build_registry()
    suite = load_suite(args.suite, registry)
    refs = references.verify(suite, registry.kinds)
    device = resolve_device(args.device)
    context = ScoringContext(device=device, cache_dir=args.cache_dir, references_digest=refs.manifest.digest)
    classes = registry.metrics
    metrics = [classes[request.name](request.options, context) for request in suite.metrics]
    run = read_results(args.run_dir)
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    reference = score_references(metrics, refs, cache_dir=args.cache_dir)
    steps = [("references", time.perf_counter() - start)]
    for config in run.configs:
        begun = time.perf_counter()
        score_config(config, metrics, refs, reference, args.run_dir)
        steps.append((config.name, time.perf_counter() - begun))
    profile.disable()
    print(", ".join(f"{name} {seconds:.2f} s" for name, seconds in steps), f"on {device}")
    print(f"counters: {context.counters}")
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
