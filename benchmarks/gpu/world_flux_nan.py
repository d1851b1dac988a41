"""Where the FLUX world's loss turns non-finite under bf16 autocast on a GPU (it did on the H200; never on a CPU).

One batch of the training loss, forward and backward, with and without bf16 autocast:
prints the loss, whether the text conditioning is finite, and the first parameters
whose gradient is not. Usage: ``python benchmarks/gpu/world_flux_nan.py [--batch 256]``.
"""

from __future__ import annotations

import argparse

import torch

from harness.world.assets import generator_dir, load_generator
from harness.world.families import world_archs
from harness.world.families.base import build_vae16
from training.world import dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    arch = world_archs()["flux"]
    shapes = load_generator(generator_dir())
    pipe = arch.build(build_vae16(0), 0, shapes.text_encoder).to(args.device)  # type: ignore[attr-defined]
    images, captions = dataset(args.batch, 0, args.device)
    with torch.no_grad():
        x0 = arch.normalise(pipe.vae, pipe.vae.encode(images.float() / 127.5 - 1.0).latent_dist.mean)
    drop = torch.zeros(args.batch, dtype=torch.bool, device=args.device)
    drop[::10] = True
    for autocast in (False, True):
        pipe.transformer.zero_grad(set_to_none=True)
        generator = torch.Generator(args.device).manual_seed(0)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            embeds, pooled, _ = pipe.encode_prompt(
                prompt=captions, prompt_2=None, device=args.device, max_sequence_length=64
            )
            loss = arch.loss(pipe, x0, captions, drop, generator)
        loss.backward()
        bad = [
            n for n, p in pipe.transformer.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()
        ]
        print(
            f"autocast={autocast}: loss {float(loss):.4f}, embeds finite {bool(torch.isfinite(embeds).all())}, "
            f"pooled finite {bool(torch.isfinite(pooled).all())}, non-finite grads {len(bad)}: {bad[:5]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
