"""FLUX.1-dev or SDXL at full size (random weights) through the harness on one GPU: what an evaluation costs.

    python benchmarks/gpu/production_harness.py OUT.json [--model flux|sdxl] [--prompts 4] [--seeds 1] [--px 1024]
    python benchmarks/gpu/production_harness.py OUT.json --layers 1 --px 64 --steps 2 --device cpu   # the code path

A ``FluxPipeline`` of FLUX.1-dev's configuration (transformer 19 + 38 blocks of width 3072, T5-XXL encoder, CLIP-L,
16-channel VAE, its scheduler config) is built in Python with random weights (no checkpoint can be downloaded on the
device machine; a step's cost does not depend on the weights' values), kept on the CPU in bf16, and handed to the
harness as an object (``harness.api``). The suite runs bf16 (the live reference), float8 layerwise storage and a
GGUF Q4_K file in llama.cpp's S mix in the original layout (what the community's Q4_K_S is), written by the harness
from the bf16 weights. ``--layers N`` keeps the widths and gives every stack N layers (a test of the code path).

The speed-ups (step caches, torch.compile, attention backends, bitsandbytes) are timed against bf16 in the same run:
their speedup with its interval, warm-up apart, and the effects found ("did it apply?") are in each row's ``speed``.

Written to OUT.json: each configuration's seconds per image (generation, steady batches), load and build seconds,
scoring seconds per image, peak GPU memory of build and generation, the run's phases and wall time, and the
projected hours for 1,000 and 5,000 prompts (one seed) at the measured per-image cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from families import SDXL_UNET

PROMPTS = [
    "a photograph of an astronaut riding a horse on the moon",
    "a bowl of ramen on a wooden table, studio lighting",
    "an oil painting of a lighthouse in a storm",
    "a red fox in the snow, telephoto lens",
    "a city street at night in the rain, neon signs",
    "a watercolor of mountains at sunrise",
    "a close-up of a hummingbird drinking from a flower",
    "a cozy reading nook with a cat, warm light",
]


def made(device: str, build: Any) -> Any:
    """A module built (seeded) on ``device`` with its default random initialisation, returned on the CPU in bf16."""
    import torch

    torch.manual_seed(0)
    with torch.device(device):
        module = build()
    return module.to(torch.bfloat16).to("cpu").eval()


def full_vae(latent_channels: int, **config: Any) -> Any:
    """The 4-level AutoencoderKL of SD/SDXL/FLUX (128-256-512-512, two layers a block)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[128, 256, 512, 512],
        layers_per_block=2,
        latent_channels=latent_channels,
        **config,
    )


def random_flux_dev(layers: int | None, device: str) -> Any:
    """FLUX.1-dev's components with random weights, initialised on ``device`` and returned on the CPU in bf16."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from harness.pipelines.tokenizers import byte_clip_tokenizer, byte_t5_tokenizer

    clip_tokenizer, t5_tokenizer = byte_clip_tokenizer(77), byte_t5_tokenizer(512)
    transformer = made(
        device,
        lambda: FluxTransformer2DModel(
            guidance_embeds=True,
            num_layers=layers if layers is not None else 19,
            num_single_layers=layers if layers is not None else 38,
        ),
    )
    clip = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=layers or 12,
        num_attention_heads=12,
        max_position_embeddings=77,
        projection_dim=768,
        hidden_act="quick_gelu",
        bos_token_id=clip_tokenizer.bos_token_id,
        eos_token_id=clip_tokenizer.eos_token_id,
        pad_token_id=clip_tokenizer.pad_token_id,
    )
    t5 = T5Config(
        vocab_size=32128,
        d_model=4096,
        d_kv=64,
        d_ff=10240,
        num_layers=layers or 24,
        num_heads=64,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        pad_token_id=t5_tokenizer.pad_token_id,
        eos_token_id=t5_tokenizer.eos_token_id,
    )
    vae = made(
        device,
        lambda: full_vae(
            16, use_quant_conv=False, use_post_quant_conv=False, scaling_factor=0.3611, shift_factor=0.1159
        ),
    )
    scheduler = FlowMatchEulerDiscreteScheduler(  # FLUX.1-dev's scheduler_config.json
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        transformer=transformer,
        text_encoder=made(device, lambda: CLIPTextModel(clip)),
        tokenizer=clip_tokenizer,
        text_encoder_2=made(device, lambda: T5EncoderModel(t5)),
        tokenizer_2=t5_tokenizer,
    )


def random_sdxl(layers: int | None, device: str) -> Any:
    """SDXL base 1.0's components with random weights, initialised on ``device``, returned on the CPU in bf16."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from harness.pipelines.tokenizers import byte_clip_tokenizer

    tokenizer, tokenizer_2 = byte_clip_tokenizer(77), byte_clip_tokenizer(77)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    clip_l = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=layers or 12,
        num_attention_heads=12,
        projection_dim=768,
        hidden_act="quick_gelu",
        **ids,
    )
    clip_g = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=1280,
        intermediate_size=5120,
        num_hidden_layers=layers or 32,
        num_attention_heads=20,
        projection_dim=1280,
        hidden_act="gelu",
        **ids,
    )
    unet = made(
        device,
        lambda: UNet2DConditionModel(
            **{**SDXL_UNET, **({"transformer_layers_per_block": (1, 1, 1)} if layers else {})}
        ),
    )
    vae = made(device, lambda: full_vae(4, scaling_factor=0.13025, sample_size=1024))
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading"
    )
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=made(device, lambda: CLIPTextModel(clip_l)),
        text_encoder_2=made(device, lambda: CLIPTextModelWithProjection(clip_g)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
    )


def configs(denoiser: str) -> dict[str, dict[str, Any]]:
    """Every configuration the benchmark can run; the speed-ups carry ``min_speedup = 0.01`` so that the harness
    times them (and bf16, their base) in the run, with the timing passes an interval needs."""
    timed = {"dtype": "bfloat16", "min_speedup": 0.01}
    return {
        "bf16": {"dtype": "bfloat16"},
        "first_block": {**timed, "cache": {"hook": "first_block", "threshold": 0.12}},
        "taylorseer": {**timed, "cache": {"hook": "taylorseer"}},
        "mag": {**timed, "cache": {"hook": "mag"}},
        "pab": {**timed, "cache": {"hook": "pyramid_attention_broadcast"}},
        "compile_blocks": {**timed, "compile": {"scope": "blocks"}},
        "compile": {**timed, "compile": True},
        "sdpa_flash": {**timed, "attention_backend": "_native_flash"},
        "sdpa_cudnn": {**timed, "attention_backend": "_native_cudnn"},
        "sdpa_math": {**timed, "attention_backend": "_native_math"},
        "nf4": {**timed, "kind": "bitsandbytes", "mode": "nf4", "components": [denoiser]},
        "int8_bnb": {**timed, "kind": "bitsandbytes", "mode": "int8", "components": [denoiser]},
        "fp8": {"kind": "layerwise_casting", "dtype": "bfloat16", "components": [denoiser]},
        "q4_k_s": {
            "kind": "gguf",
            "dtype": "bfloat16",
            "components": [denoiser],
            "type": "Q4_K",
            "policy": "S",
            "layout": "original",
            "compute_dtype": "bfloat16",
        },
    }


MODELS = {  # name: (builder, denoiser, steps, guidance)
    "flux": (random_flux_dev, "transformer", 28, 3.5),
    "sdxl": (random_sdxl, "unet", 30, 5.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--model", choices=sorted(MODELS), default="flux")
    parser.add_argument("--steps", type=int, default=None, help="default: the model's (FLUX 28, SDXL 30)")
    parser.add_argument("--px", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=None, help="layers per stack (default: FLUX.1-dev's)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--configs", nargs="+", default=["bf16", "fp8", "q4_k_s"])
    args = parser.parse_args()

    import torch

    from harness import api

    builder, denoiser, steps, guidance = MODELS[args.model]
    start = time.perf_counter()
    pipe = builder(args.layers, args.device)
    built_s = time.perf_counter() - start
    params = {
        name: sum(p.numel() for p in m.parameters()) for name, m in pipe.components.items() if hasattr(m, "parameters")
    }
    print(f"built in {built_s:.1f} s: {json.dumps(params)}", flush=True)
    suite = api.Suite(
        name=f"{args.model}_full",
        pipeline=pipe,
        prompts=PROMPTS[: args.prompts],
        seeds=list(range(args.seeds)),
        steps=args.steps or steps,
        width=args.px,
        height=args.px,
        guidance=guidance,
        reference_images="live",
        metrics={"psnr": {}, "ssim": {}},
        thresholds={"psnr": {"min": 0}},
        configs={name: configs(denoiser)[name] for name in args.configs},
        reference="bf16",
        folder="/tmp/flux_dev_full",
    )
    outcome = api.run(
        suite,
        device=args.device,
        cache_dir="/tmp/flux_dev_full/cache",
        reports_root="/tmp/flux_dev_full/reports",
        batch_size=args.batch_size,
        use_cache=False,
    )
    rows = {}
    for config in outcome.result.configs:
        timing, memory = dict(config.timing), dict(config.memory)
        rows[config.name] = {
            "status": config.status,
            "message": config.message[:300],
            "images": timing.get("images"),
            "batch_size": timing.get("batch_size"),
            "per_image_s": timing.get("per_image_s"),
            "median_image_s": timing.get("median_image_s"),
            "load_s": timing.get("load_s"),
            "scoring_s_per_image": (timing.get("scoring_s") or 0) / max(1, timing.get("images") or 1),
            "memory": memory,
            "notes": {k: str(v)[:300] for k, v in dict(config.notes).items()},
            "speed": dict(config.speed),
            "summaries": {m.metric: [m.mean, m.worst] for m in config.summaries},
        }
        image_s = timing.get("median_image_s") or timing.get("per_image_s")
        if image_s:
            rows[config.name]["hours_1000"] = round(image_s * 1000 / 3600, 2)
            rows[config.name]["hours_5000"] = round(image_s * 5000 / 3600, 2)
    record = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
        "args": vars(args) | {"out": str(args.out)},
        "parameters": params,
        "build_s": round(built_s, 1),
        "exit_code": outcome.exit_code,
        "phases": dict(outcome.result.phases),
        "configs": rows,
        "checks": [(c.config, c.check, c.status, c.value) for c in outcome.checks],
        "warnings": list(outcome.result.warnings)[:10],
    }
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
