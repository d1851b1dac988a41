"""``python -m training train --out DIR`` (and ``render``, ``captions``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.families import FamilyPlan
from training.world import Part, Plan, plan_from_json, run_part, train_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="The shapes world: render scenes, list captions, train the generator and evaluator.",
        epilog="example: python -m training train --out harness/world/weights --device cuda",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train VAE, generator, flawed generator and evaluator from seeds")
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--device", default="cuda")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--dataset", type=int, default=60000, help="training renders (default 60000)")
    for name, default in (
        ("vae", Plan.vae),
        ("generator", Plan.generator),
        ("flawed", Plan.flawed),
        ("evaluator", Plan.evaluator),
    ):
        train.add_argument(f"--{name}-steps", type=int, default=default.steps)
        train.add_argument(f"--{name}-batch", type=int, default=default.batch)
        train.add_argument(f"--{name}-seconds", type=float, default=default.max_seconds, help="wall-clock cap")
    train.add_argument("--sequential", action="store_true", help="train the three models one after another (CPU)")
    families = commands.add_parser(
        "train-families",
        help="train the world in the FLUX.1, SD3, SDXL, Sana and PixArt-Σ architectures, and the moving world as Wan 2.1 (after the shapes world: it reuses its parts)",
    )
    families.add_argument(
        "archs",
        nargs="*",
        default=["flux", "sd3", "sdxl"],
        help="flux, sd3, sdxl, sana, pixart, wan (default: the first three)",
    )
    families.add_argument("--out", type=Path, required=True)
    families.add_argument("--device", default="cuda")
    families.add_argument("--seed", type=int, default=0)
    families.add_argument("--dataset", type=int, default=60000, help="training renders or clips (default 60000)")
    families.add_argument("--steps", type=int, default=0, help="steps per architecture (default: fit --seconds)")
    family_defaults = FamilyPlan(out=Path("."))
    families.add_argument("--batch", type=int, default=None, help=f"default: {family_defaults.archs['flux'].batch}")
    families.add_argument("--seconds", type=float, default=None, help="each architecture's time budget")
    families.add_argument("--vae-steps", type=int, default=0)
    families.add_argument("--vae-batch", type=int, default=None, help=f"default: {family_defaults.vae.batch}")
    families.add_argument(
        "--vae-seconds", type=float, default=None, help=f"default: {family_defaults.vae.max_seconds:g}"
    )
    families.add_argument("--captions", type=int, default=64, help="held-out captions to evaluate on")
    families.add_argument("--resume", type=Path, help="continue from the pipelines in this folder (<arch>/)")
    families.add_argument("--sequential", action="store_true", help="one architecture after another (CPU)")
    families.add_argument(
        "--frozen-text",
        action="store_true",
        help="train the denoiser alone on the text encoders' outputs, computed once per caption (with --resume; from seeds the encoders stay random)",
    )
    families.add_argument(
        "--vae-continue",
        action="store_true",
        help="train the autoencoder already in OUT/_<kind>/ further (default: reuse it as it is)",
    )
    family = commands.add_parser("_family", help=argparse.SUPPRESS)
    family.add_argument("arch")
    family.add_argument("plan")
    part = commands.add_parser("_part", help=argparse.SUPPRESS)
    part.add_argument("part")
    part.add_argument("plan")
    render = commands.add_parser("render", help="write renders of random scenes to a PNG grid")
    render.add_argument("--out", type=Path, required=True)
    render.add_argument("--count", type=int, default=16)
    render.add_argument("--seed", type=int, default=0)
    commands.add_parser("captions", help="count the captions of the grammar and the held-out split")
    args = parser.parse_args(argv)

    if args.command == "_part":
        plan = plan_from_json(args.plan)
        log = run_part(plan, args.part)
        (plan.out / f"_{args.part}.json").write_text(json.dumps(log))
        return 0
    if args.command in ("train-families", "_family"):
        return _families(args)
    if args.command == "train":
        parts = {
            name: Part(
                getattr(args, f"{name}_steps"),
                getattr(args, f"{name}_batch"),
                getattr(Plan, name).lr,
                getattr(args, f"{name}_seconds"),
            )
            for name in ("vae", "generator", "flawed", "evaluator")
        }
        plan = Plan(out=args.out, device=args.device, seed=args.seed, dataset=args.dataset, **parts)
        logs = train_all(plan, parallel=not args.sequential)
        print(json.dumps({k: v for k, v in logs.items() if k != "plan"}, indent=1))
        return 0
    if args.command == "render":
        import numpy as np
        from PIL import Image

        from harness.world.scene import random_scene, render_batch

        scenes = [random_scene(args.seed + i, held_out=None) for i in range(args.count)]
        Image.fromarray(np.concatenate(list(render_batch(scenes)), axis=1)).save(args.out)
        for scene in scenes:
            print(scene.caption())
        return 0
    from harness.world.scene import all_captions, is_held_out

    captions = all_captions()
    held = sum(is_held_out(c) for c in captions)
    print(
        f"{len(captions)} captions ({sum(' and ' not in c for c in captions)} one-object); {held} two-object captions held out"
    )
    return 0


def _families(args: argparse.Namespace) -> int:
    from training.families import plan_from_json as family_plan
    from training.families import train_arch, train_families

    if args.command == "_family":
        plan = family_plan(args.plan)
        log = train_arch(plan, args.arch)
        (plan.out / f"_{args.arch}.json").write_text(json.dumps(log))
        return 0
    defaults = FamilyPlan(out=args.out)
    archs = {
        name: Part(args.steps, args.batch or part.batch, part.lr, args.seconds or part.max_seconds)
        for name, part in defaults.archs.items()
    }
    plan = FamilyPlan(
        out=args.out,
        device=args.device,
        seed=args.seed,
        dataset=args.dataset,
        vae=Part(
            args.vae_steps,
            args.vae_batch or defaults.vae.batch,
            defaults.vae.lr,
            args.vae_seconds or defaults.vae.max_seconds,
        ),
        archs=archs,
        evaluation_captions=args.captions,
        resume=args.resume,
        frozen_text=args.frozen_text,
        vae_continue=args.vae_continue,
    )
    logs = train_families(plan, args.archs, parallel=not args.sequential)
    print(json.dumps({k: v for k, v in logs.items() if k != "plan"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
