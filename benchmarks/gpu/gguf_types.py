"""GGUF types on a full-size SDXL UNet (random weights): file size, load time, step time and memory vs bf16.

The harness's own writer (``harness.kinds.gguf.file.write_gguf``) writes each type, one
process per type in parallel; each file is loaded through diffusers' GGUF path
(``from_single_file`` + ``GGUFQuantizationConfig``, compute in bf16) and timed on one
1024x1024 step at batch 2 (CFG), median and range of N repeats after warm-up (CUDA events).
Random weights: the figures are cost, not quality.

    python benchmarks/gpu/gguf_types.py /tmp/gguf-bench [--types Q8_0 Q4_0 Q4_K] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from families import sdxl, step_seconds, to_device


def build_unet():
    torch.manual_seed(0)
    model, inputs = sdxl()
    return model.eval(), inputs


def write(args: tuple[str, str]) -> dict:
    folder, quant_type = args
    from harness.kinds.gguf.file import write_gguf

    torch.set_num_threads(2)
    model, _ = build_unet()  # the same seed: the same weights in every process
    start = time.perf_counter()
    stats = write_gguf(model, Path(folder) / f"unet-{quant_type}.gguf", quant_type)
    return {"type": quant_type, "write_s": round(time.perf_counter() - start, 1), **stats.to_notes()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--types", nargs="+", default=["Q8_0", "Q4_0", "Q4_K"])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    model, inputs = build_unet()
    model.save_config(folder / "config")
    with ProcessPoolExecutor(len(args.types)) as pool:
        written = {row["type"]: row for row in pool.map(write, [(str(folder), t) for t in args.types])}
    from diffusers import GGUFQuantizationConfig, UNet2DConditionModel

    inputs = to_device(inputs)
    modes: list[tuple[str, dict]] = [("bf16", {})] + [(t, written[t]) for t in args.types]
    for mode, info in modes:
        torch.cuda.empty_cache()
        start = time.perf_counter()
        if mode == "bf16":
            unet = model.to("cuda", torch.bfloat16)
            size_mb = sum(p.numel() * p.element_size() for p in unet.parameters()) / 1e6
        else:
            unet = UNet2DConditionModel.from_single_file(
                str(folder / f"unet-{mode}.gguf"),
                config=str(folder / "config"),
                quantization_config=GGUFQuantizationConfig(compute_dtype=torch.bfloat16),
                torch_dtype=torch.bfloat16,
            ).to("cuda")
            size_mb = info["file_mb"]
        load_s = time.perf_counter() - start
        for _ in range(3):
            step_seconds(unet, inputs)
        torch.cuda.reset_peak_memory_stats()
        times = [step_seconds(unet, inputs) for _ in range(args.repeats)]
        row = {
            "model": "sdxl-unet",
            "mode": mode,
            "size_mb": round(size_mb, 1),
            "load_s": round(load_s, 1),
            "write_s": info.get("write_s"),
            "tensor_types": info.get("tensor_types"),
            "step_s_median": round(statistics.median(times), 4),
            "step_s_min": round(min(times), 4),
            "step_s_max": round(max(times), 4),
            "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
            "n": len(times),
            "gpu": torch.cuda.get_device_name(),
        }
        print(json.dumps(row), flush=True)
        if mode == "bf16":
            model = unet.to("cpu")
        del unet


if __name__ == "__main__":
    main()
