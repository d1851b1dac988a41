"""How many samples FID, KID and CMMD need to tell a damaged configuration from a sound one.

Reads a finished run (every configuration scored against the same references) and, for
each sample count n, draws random subsets of n prompt/seed keys (the same keys for the
reference and the generated sets, as a PR gate would have), computes each distance with
the harness's own metric classes and feature extractor, and counts a subset as
*separated* when the damaged configuration's whole 95% bootstrap interval lies above the
sound configuration's value. Prints a table: the share of subsets separated per n.

    python benchmarks/metric_samples.py RUN_DIR --sound fp16 --damaged flawed unet_noise_0_5 [--trials 20]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from harness.metrics.cmmd import CMMD
from harness.metrics.features import extractor_for, resolve_defaults
from harness.metrics.fid import FID
from harness.metrics.kid import KID
from harness.samples import load_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--sound", default="fp16")
    parser.add_argument("--damaged", nargs="+", default=["flawed", "unet_noise_0_5"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[4, 8, 12, 16, 24, 32, 48])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--world", action="store_true", help="features of the shapes world (its evaluator)")
    parser.add_argument("--metrics", nargs="+", default=["fid", "kid", "cmmd"], help="FID's bootstrap is slow")
    parser.add_argument("--bootstrap", type=int, default=100)
    args = parser.parse_args()
    results = json.loads((args.run_dir / "results.json").read_text())
    options = resolve_defaults({"features": None, "bootstrap": args.bootstrap}, args.world)
    extractor = extractor_for(options)
    by_config = {c["name"]: {s["key"]: s["image"] for s in c["samples"] if s.get("image")} for c in results["configs"]}
    keys = sorted(by_config[args.sound])
    reference = extractor.extract([load_png(args.run_dir / "images" / "reference" / f"{k}.png") for k in keys])
    features = {
        name: extractor.extract([load_png(args.run_dir / by_config[name][k]) for k in keys])
        for name in (args.sound, *args.damaged)
    }
    metrics = [cls(options) for cls in (FID, KID, CMMD) if cls.name in args.metrics]
    rng = np.random.default_rng(0)
    rows = []
    for n in [size for size in args.sizes if size <= len(keys)]:
        separated = {(m.name, d): 0 for m in metrics for d in args.damaged}
        for trial in range(args.trials):
            pick = np.sort(rng.choice(len(keys), n, replace=False))
            for metric in metrics:
                sound = metric.distance(reference[pick], features[args.sound][pick])
                for damaged in args.damaged:
                    low, _ = metric.bootstrap(reference[pick], features[damaged][pick], f"{damaged}-{n}-{trial}")
                    separated[(metric.name, damaged)] += int(low is not None and low > sound)
        row = {"n": n, **{f"{m}/{d}": count / args.trials for (m, d), count in separated.items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    header = ["n"] + [f"{m.name} {d}" for m in metrics for d in args.damaged]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        cells = [str(row["n"])] + [f"{row[f'{m.name}/{d}']:.0%}" for m in metrics for d in args.damaged]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
