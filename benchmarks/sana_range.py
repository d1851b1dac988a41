"""The Sana world's text encoder in each precision: its residual stream's peak per layer, and its output.

    python benchmarks/sana_range.py [--captions 16]

Prints one row per precision: the largest |activation| each decoder layer writes, whether
the output is finite, its largest |value| (what SanaPipeline casts to the transformer's
dtype), and its error against float32 (relative to the float32 output's spread). The
prompts are held-out captions behind SanaPipeline's default instruction, tokenized as the
pipeline tokenizes them. Then one line: the transformer's largest linear self-attention
output while sampling those captions in float32, against the float16 clip diffusers applies
there.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from harness.world.assets import load_world, world_dir
from harness.world.evaluate import held_out_captions
from harness.world.families.sana import FLOAT16_MAX, SanaWorld, instructed_probe
from harness.world.models import IMAGE_PX


def layer_peaks(encoder: torch.nn.Module, probe: dict) -> tuple[list[float], torch.Tensor]:
    peaks: list[float] = []
    hooks = [
        layer.register_forward_hook(lambda m, a, out: peaks.append(float(out[0].float().abs().max())))
        for layer in encoder.layers
    ]
    with torch.no_grad():
        output = encoder(**probe).last_hidden_state.float()
    for hook in hooks:
        hook.remove()
    return peaks, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=16)
    args = parser.parse_args()
    pipe = load_world(world_dir("sana"))
    probe = instructed_probe(pipe.tokenizer, held_out_captions(args.captions))
    encoder = pipe.text_encoder.eval()
    _, reference = layer_peaks(encoder, probe)
    spread = float(reference.std())
    print(f"float16's largest finite value: {FLOAT16_MAX:.0f}")
    print("| encoder dtype | residual peak per layer | output finite | output max abs | output error / spread |")
    print("| --- | --- | --- | --- | --- |")
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        peaks, output = layer_peaks(encoder.to(dtype), probe)
        finite = bool(torch.isfinite(output).all())
        error = float((output - reference).abs().max()) / spread if finite else float("nan")
        peak_text = ", ".join(f"{p:.3g}" for p in peaks)
        name = str(dtype).removeprefix("torch.")
        print(f"| {name} | {peak_text} | {finite} | {float(output.abs().max()):.3g} | {error:.3g} |")
    encoder.float()
    attention_peaks(pipe, held_out_captions(args.captions))


def attention_peaks(pipe: Any, captions: list[str]) -> None:
    """The transformer's linear self-attention outputs while sampling in float32, before float16's clip.

    diffusers' ``SanaLinearAttnProcessor2_0`` clips that output to +-65504 when it runs in
    float16; the real 1.6B fp16 checkpoint's reach +-5e5 there (diffusers#10336).
    """
    peaks: list[float] = []
    hooks = [
        block.attn1.to_out[0].register_forward_hook(lambda m, a, out: peaks.append(float(out.abs().max())))
        for block in pipe.transformer.transformer_blocks
    ]
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        pipe(
            captions,
            num_inference_steps=8,
            guidance_scale=SanaWorld.guidance,
            height=IMAGE_PX,
            width=IMAGE_PX,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
            **SanaWorld().sample_kwargs(),
        )
    for hook in hooks:
        hook.remove()
    print(f"\nlinear self-attention output, largest |value| over 8 float32 steps: {max(peaks):.3g}", end=" ")
    print(f"({max(peaks) / FLOAT16_MAX:.2g} of float16's clip at {FLOAT16_MAX:.0f})")


if __name__ == "__main__":
    main()
