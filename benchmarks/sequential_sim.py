"""Error rates of sequential sampling against fixed n, by simulation (issue #28).

For a gate ``mean >= bound`` on a per-sample metric, draws ``sims`` sample paths of ``N`` per-sample values whose
true mean sits ``effect`` per-sample standard deviations from the bound (negative: below it, a configuration that
should fail), and judges each path twice on the same values:

- fixed n: the mean of all N values against the bound (``basis = "estimate"``, the default), and the 95%
  interval (``basis = "interval"``: fail only when the whole interval is below);
- sequential: looks at ``SequentialOptions.looks(N, batch)``; stop with the decision once the always-valid interval
  is wholly on one side, else the fixed-n rule at N.

Prints, per distribution, N and effect: P(pass) under each rule (for effect < 0 that is the false-pass rate, for
effect >= 0 one minus the false-fail rate), how often the two verdicts on the same path differ, and the share of
the N samples the sequential rule generated. ``--json PATH`` writes the table.

    python benchmarks/sequential_sim.py --sims 4000
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.judge.sequential import small_sample_factor
from harness.plan.sequential import SequentialOptions

Draw = Callable[[np.random.Generator, tuple[int, int]], np.ndarray]

# Unit-variance, zero-mean shapes of per-sample values. PSNR and SSIM have a tail toward damage (a few prompts
# suffer most), so the skewed one has its long tail on the failing side.
DISTRIBUTIONS: dict[str, Draw] = {
    "normal": lambda rng, shape: rng.normal(0.0, 1.0, shape),
    "skewed (gamma k=2, tail down)": lambda rng, shape: -(rng.gamma(2.0, 1.0, shape) - 2.0) / math.sqrt(2.0),
    "heavy (t, 3 df)": lambda rng, shape: rng.standard_t(3, shape) / math.sqrt(3.0),
}
EFFECTS = (-2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0)


def confidence_sequences(values: np.ndarray, looks: list[int], alpha: float, n_star: float) -> list[np.ndarray]:
    """(low, high) of the always-valid interval at each look, for every path at once (same maths as
    harness.judge.sequential.confidence_sequence, vectorised)."""
    log_alpha = -2.0 * math.log(alpha)
    rho2 = (log_alpha + math.log(log_alpha + 1.0)) / n_star
    out = []
    for n in looks:
        head = values[:, :n]
        mean = head.mean(axis=1)
        sd = head.std(axis=1, ddof=1)
        radius = sd * math.sqrt(2.0 * (n * rho2 + 1.0) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1.0) / alpha))
        radius = radius * small_sample_factor(n, alpha)
        out.append(np.stack([mean - radius, mean + radius], axis=1))
    return out


def simulate(draw: Draw, total: int, effect: float, options: SequentialOptions, batch: int, sims: int, seed: int):
    rng = np.random.default_rng(seed)
    values = draw(rng, (sims, total)) + effect  # the bound is 0
    looks = options.looks(total, batch)
    n_star = math.sqrt(looks[0] * total)
    mean = values.mean(axis=1)
    half = 1.96 * values.std(axis=1, ddof=1) / math.sqrt(total)
    fixed_estimate = mean >= 0.0
    fixed_interval = mean + half >= 0.0
    verdict = fixed_estimate.copy()
    used = np.full(sims, total)
    open_ = np.ones(sims, dtype=bool)
    for n, interval in zip(looks[:-1], confidence_sequences(values, looks[:-1], options.alpha, n_star), strict=True):
        passed = open_ & (interval[:, 0] > 0.0)
        failed = open_ & (interval[:, 1] < 0.0)
        verdict[passed], verdict[failed] = True, False
        used[passed | failed] = n
        open_ &= ~(passed | failed)
    return {
        "p_pass_fixed": float(fixed_estimate.mean()),
        "p_pass_fixed_interval": float(fixed_interval.mean()),
        "p_pass_sequential": float(verdict.mean()),
        "differs_from_fixed": float((verdict != fixed_estimate).mean()),
        "samples_share": float(used.mean() / total),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sims", type=int, default=4000)
    parser.add_argument("--totals", type=int, nargs="+", default=[12, 64, 1000])
    parser.add_argument("--first", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    start = time.perf_counter()
    for name, draw in DISTRIBUTIONS.items():
        for total in args.totals:
            for first in args.first:
                options = SequentialOptions(enabled=True, first=first)
                for index, effect in enumerate(EFFECTS):
                    found = simulate(draw, total, effect, options, args.batch, args.sims, seed=1000 * index + total)
                    rows.append({"distribution": name, "n": total, "first": first, "effect_sd": effect, **found})
    header = (
        f"{'distribution':<30} {'N':>5} {'first':>5} {'effect':>7} {'P(pass) fixed':>14} {'fixed interval':>15} "
        f"{'sequential':>11} {'differs':>8} {'samples':>8}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['distribution']:<30} {row['n']:>5} {row['first']:>5} {row['effect_sd']:>+7.2f} "
            f"{row['p_pass_fixed']:>14.3f} {row['p_pass_fixed_interval']:>15.3f} {row['p_pass_sequential']:>11.3f} "
            f"{row['differs_from_fixed']:>8.3f} {row['samples_share']:>8.2f}"
        )
    print(f"{args.sims} paths per row, {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"sims": args.sims, "batch": args.batch, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
