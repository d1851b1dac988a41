"""Metric networks on the CPU vs the run's GPU: `python benchmarks/metric_devices.py [--samples 64] [--repeats 3]`.

Times CLIP score and the feature extractors (``tiny``, and CLIP features with the builtin
tiny CLIP and with an open_clip ViT-L-14 of random weights, the size of the CLIP people
score with) over the same ``--samples`` 512 px images on the CPU and on CUDA, the devices
interleaved in each repeat. Prints the median seconds with their range and the largest
difference between the CPU's values and the GPU's, with TF32 off (as scoring runs) and on
for convolutions and matrix products (PyTorch's default turns it on for convolutions only). Nothing is asserted; the figures go into
docs/performance.md with the machine.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report_cost import scene  # noqa: E402
from harness.metrics import clip_model  # noqa: E402
from harness.metrics.clip_score import clip_scores  # noqa: E402
from harness.metrics.features import extractor_for  # noqa: E402
from harness.metrics.features.clip import ClipFeatures  # noqa: E402
from harness.metrics.tensors import exact_float32  # noqa: E402

BIG_CLIP = "ViT-L-14"


def big_clip(device: str) -> clip_model.LoadedClip:
    """An open_clip ViT-L-14 with random weights (no download), through the harness's loading path."""
    import torch

    key = (BIG_CLIP, None, device)
    if key not in clip_model._CACHE:
        torch.manual_seed(0)  # the same random weights on every device
        loaded = clip_model._load(BIG_CLIP, None)
        loaded.model.to(device)
        loaded.device = device
        clip_model._CACHE[key] = loaded
    return clip_model._CACHE[key]


def tasks(images: list[np.ndarray], prompts: list[str]) -> dict[str, Callable[[str], np.ndarray]]:
    tiny = {"model": "builtin:tiny", "pretrained": None}

    extractors: dict[str, ClipFeatures] = {}

    def big_features(device: str) -> np.ndarray:
        if device not in extractors:  # built once per device, as a run builds it once
            big_clip(device)
            extractors[device] = ClipFeatures({"model": BIG_CLIP, "pretrained": None}, device)
        return extractors[device].extract(images)

    def fresh(clip: Any) -> Any:
        clip.text_embeddings.clear()  # every prompt encoded in each repeat, as in a run's first pass
        return clip

    return {
        "clip_score, tiny CLIP": lambda d: np.asarray(
            clip_scores(fresh(clip_model.load_clip(tiny, d)), images, prompts)
        ),
        "clip_score, ViT-L-14": lambda d: np.asarray(clip_scores(fresh(big_clip(d)), images, prompts)),
        "features, tiny": lambda d: extractor_for({"features": "tiny"}, d).extract(images),
        "features, CLIP ViT-L-14": big_features,
    }


def timed(call: Callable[[], Any], cuda: bool) -> tuple[float, Any]:
    import torch

    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    value = call()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, value


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    rng = np.random.default_rng(0)
    images = [
        np.clip(scene(args.size, i) + rng.normal(0, 4, (args.size, args.size, 3)), 0, 255).astype(np.uint8)
        for i in range(args.samples)
    ]
    prompts = [f"a photograph of scene number {i}" for i in range(args.samples)]
    work = tasks(images, prompts)
    print(f"{args.samples} images at {args.size} px; CPU threads {torch.get_num_threads()}; devices {devices}")
    if "cuda" in devices:
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    for name, task in work.items():
        seconds: dict[str, list[float]] = {d: [] for d in devices}
        values: dict[str, Any] = {}
        for device in devices:  # warm-up: builds the network on each device
            with exact_float32():
                task(device)
        for repeat in range(args.repeats):
            for device in devices if repeat % 2 == 0 else devices[::-1]:
                with exact_float32():
                    took, values[device] = timed(functools.partial(task, device), device == "cuda")
                seconds[device].append(took)
        line = [f"{name:26s}"]
        for device in devices:
            s = seconds[device]
            line.append(f"{device} {statistics.median(s):7.3f} s [{min(s):.3f}, {max(s):.3f}]")
        if "cuda" in devices:
            ratio = statistics.median(seconds["cpu"]) / statistics.median(seconds["cuda"])
            line.append(f"speed-up {ratio:6.1f}x")
            exact = float(np.max(np.abs(values["cpu"] - values["cuda"])))
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
            loose = float(np.max(np.abs(values["cpu"] - task("cuda"))))
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = True, False
            scale = float(np.max(np.abs(values["cpu"])))
            line.append(f"max |cpu - cuda| {exact:.2e} (TF32 on: {loose:.2e}; values up to {scale:.3g})")
        print("  ".join(line), flush=True)


if __name__ == "__main__":
    main()
