"""Full-size FLUX.1-dev, SD3.5-large and SDXL denoisers with random weights on one GPU: step time and memory.

Random weights (no checkpoint can be downloaded on the device machine): the figures are
the architectures' cost, not image quality. Each denoiser runs one 1024x1024 step
(SDXL: batch 2 for CFG; FLUX: guidance embedding, batch 1; SD3.5: batch 2 for CFG) in
bf16, then with float8 e4m3 weight storage and layerwise upcasting. Per mode: weights
in GB, the median and range of the step time over interleaved repeats (CUDA events),
and peak allocated memory. Prints one JSON line per measurement and a table.

    python benchmarks/gpu/families.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def flux():
    from diffusers import FluxTransformer2DModel

    model = FluxTransformer2DModel(guidance_embeds=True)  # the defaults are FLUX.1's: 19 + 38 blocks, width 3072
    inputs = {
        "hidden_states": torch.randn(1, 4096, 64),
        "encoder_hidden_states": torch.randn(1, 512, 4096),
        "pooled_projections": torch.randn(1, 768),
        "timestep": torch.tensor([1.0]),
        "img_ids": torch.zeros(4096, 3),
        "txt_ids": torch.zeros(512, 3),
        "guidance": torch.tensor([3.5]),
    }
    return model, inputs


def sd35():
    from diffusers import SD3Transformer2DModel

    model = SD3Transformer2DModel(
        sample_size=128,
        patch_size=2,
        in_channels=16,
        num_layers=38,
        attention_head_dim=64,
        num_attention_heads=38,
        joint_attention_dim=4096,
        caption_projection_dim=2432,
        pooled_projection_dim=2048,
        out_channels=16,
        pos_embed_max_size=192,
        qk_norm="rms_norm",
    )
    inputs = {
        "hidden_states": torch.randn(2, 16, 128, 128),
        "encoder_hidden_states": torch.randn(2, 333, 4096),
        "pooled_projections": torch.randn(2, 2048),
        "timestep": torch.tensor([500.0, 500.0]),
    }
    return model, inputs


SDXL_UNET = dict(  # stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
    sample_size=128,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280),
    transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20),
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)


def sdxl():
    from diffusers import UNet2DConditionModel

    model = UNet2DConditionModel(**SDXL_UNET)
    inputs = {
        "sample": torch.randn(2, 4, 128, 128),
        "timestep": torch.tensor([500.0, 500.0]),
        "encoder_hidden_states": torch.randn(2, 77, 2048),
        "added_cond_kwargs": {"text_embeds": torch.randn(2, 1280), "time_ids": torch.randn(2, 6)},
    }
    return model, inputs


def to_device(value):
    if isinstance(value, dict):
        return {k: to_device(v) for k, v in value.items()}
    return value.to("cuda", torch.bfloat16 if value.is_floating_point() else value.dtype)


def weights_gb(model):
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9


def step_seconds(model, inputs):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    with torch.no_grad():
        model(**inputs)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = []
    for name, build in (("sdxl", sdxl), ("sd3.5-large", sd35), ("flux.1-dev", flux)):
        began = time.perf_counter()
        torch.set_default_dtype(torch.bfloat16)
        with torch.device("cuda"):
            model, inputs = build()
        torch.set_default_dtype(torch.float32)
        model.eval()
        inputs = to_device(inputs)
        built_s = time.perf_counter() - began
        modes = {"bf16": model}
        times: dict[str, list[float]] = {"bf16": []}
        peaks: dict[str, float] = {}
        sizes = {"bf16": weights_gb(model)}
        for mode in ("bf16", "fp8_layerwise"):
            if mode == "fp8_layerwise":
                model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
                sizes[mode], times[mode] = weights_gb(model), []
            for _ in range(3):
                step_seconds(model, inputs)  # warm-up
            torch.cuda.reset_peak_memory_stats()
            for _ in range(args.repeats):
                times[mode].append(step_seconds(model, inputs))
            peaks[mode] = torch.cuda.max_memory_allocated() / 1e9
        for mode in times:
            row = {
                "model": name,
                "mode": mode,
                "weights_gb": round(sizes[mode], 2),
                "step_s_median": round(statistics.median(times[mode]), 4),
                "step_s_min": round(min(times[mode]), 4),
                "step_s_max": round(max(times[mode]), 4),
                "peak_gb": round(peaks[mode], 2),
                "n": len(times[mode]),
                "build_s": round(built_s, 1),
                "gpu": torch.cuda.get_device_name(),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
        del model, modes, inputs
        torch.cuda.empty_cache()
    print(f"\n{'model':<12} {'mode':<14} {'weights GB':>10} {'step s (median [min, max])':>28} {'peak GB':>8}")
    for r in rows:
        spread = f"{r['step_s_median']:.3f} [{r['step_s_min']:.3f}, {r['step_s_max']:.3f}]"
        print(f"{r['model']:<12} {r['mode']:<14} {r['weights_gb']:>10} {spread:>28} {r['peak_gb']:>8}")


if __name__ == "__main__":
    main()
