"""The cost suite's generation as a plain diffusers script: the baseline for the harness's wall time.

What a user would write by hand to produce the same 3 x 64 images as
``benchmarks/suites/gpu_sd15_cost.toml``, with no harness code: import torch and diffusers,
load the float32 pipeline once, then per configuration copy it, cast it and move it to
the GPU (fp16, bf16, and fp16 with the UNet read from a Q8_0 GGUF file), generate in
batches of 8 and save every image as a PNG. No metrics, no report.

Usage: python benchmarks/gpu/plain_script.py MODEL_DIR GGUF_FILE OUT_DIR
Prints one JSON line of phase times; run it as a fresh process to include the imports.
"""

import copy
import json
import sys
import time
from pathlib import Path

started = time.perf_counter()
import torch  # noqa: E402
from diffusers import DiffusionPipeline, GGUFQuantizationConfig, UNet2DConditionModel  # noqa: E402

PROMPTS = Path(__file__).resolve().parent.parent / "suites" / "cost_prompts.txt"
SEEDS, BATCH, STEPS, SIZE, GUIDANCE = (0, 1, 2, 3), 8, 20, 512, 7.5


def main(model_dir: str, gguf_file: str, out_dir: Path) -> dict[str, float]:
    times = {"imports_s": time.perf_counter() - started}
    prompts = [line.strip() for line in PROMPTS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    samples = [(index, prompt, seed) for index, prompt in enumerate(prompts) for seed in SEEDS]
    start = time.perf_counter()
    base = DiffusionPipeline.from_pretrained(model_dir, local_files_only=True)
    base.set_progress_bar_config(disable=True)
    times["load_s"] = time.perf_counter() - start
    times.update(build_s=0.0, generate_s=0.0, save_s=0.0)
    for name in ("fp16", "bf16", "gguf_q8_0"):
        start = time.perf_counter()
        pipe = copy.deepcopy(base).to("cuda", torch.bfloat16 if name == "bf16" else torch.float16)
        if name == "gguf_q8_0":
            pipe.unet = UNet2DConditionModel.from_single_file(
                gguf_file,
                config=str(Path(gguf_file).parent),  # the harness writes the UNet's config.json beside the file
                local_files_only=True,
                quantization_config=GGUFQuantizationConfig(compute_dtype=torch.float16),
                torch_dtype=torch.float16,
            ).to("cuda")
        torch.cuda.synchronize()
        times["build_s"] += time.perf_counter() - start
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for first in range(0, len(samples), BATCH):
            batch = samples[first : first + BATCH]
            start = time.perf_counter()
            with torch.no_grad():
                images = pipe(
                    prompt=[prompt for _, prompt, _ in batch],
                    num_inference_steps=STEPS,
                    guidance_scale=GUIDANCE,
                    height=SIZE,
                    width=SIZE,
                    generator=[torch.Generator("cpu").manual_seed(seed) for _, _, seed in batch],
                ).images
            times["generate_s"] += time.perf_counter() - start
            start = time.perf_counter()
            for (index, _, seed), image in zip(batch, images, strict=True):
                image.save(folder / f"p{index:03d}-s{seed}.png", compress_level=1)  # as the harness writes them
            times["save_s"] += time.perf_counter() - start
        del pipe
        torch.cuda.empty_cache()
    times["in_process_s"] = time.perf_counter() - started
    return {key: round(value, 3) for key, value in times.items()}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))), flush=True)
