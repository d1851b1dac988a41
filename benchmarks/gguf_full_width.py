"""GGUF at full width: a diffusers round trip of the community's files, and the writer's throughput.

    python benchmarks/gguf_full_width.py roundtrip [--types Q4_K_M Q8_0]
    python benchmarks/gguf_full_width.py throughput [--model blocks|flux-dev] [--types ...] [--repeats 3]

``roundtrip`` builds random FLUX.1 (width 3072: one double and one single block, guidance
embedding) and SD3.5-large-width (2432: one joint block) transformers, writes each in the
original layout with the community's types (``policy = "community"``, BF16 float storage),
loads the file through diffusers' ``from_single_file`` with ``GGUFQuantizationConfig``, and
checks every tensor: the loaded model's weights, dequantized by diffusers and mapped back to
the original keys, against the harness's own dequantization (``gguf.quants.dequantize``) of
the file's tensors. Float tensors must agree exactly; quantized ones to 2^-8 of the tensor's
largest value, because diffusers dequantizes in float16 (its ``d * q`` products are fp16)
where ggml and the gguf package compute in float32. Exit code 1 on any mismatch.

``throughput`` writes FLUX.1 tensors of the real shapes (``blocks``: the round trip's 0.55B
parameters; ``flux-dev``: all 19 double and 38 single blocks, 11.9B) from a pool of random
values (views, so making the tensors costs nothing and the model is never in memory), one
process per write, types interleaved over the repeats. Prints parameters per second and the
process's peak resident memory during the write (VmHWM, reset before it) beside its resident
memory before (Python, torch and the pool), median and range; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from math import prod
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMMUNITY = {  # llama.cpp file type -> (harness type, policy)
    "Q8_0": ("Q8_0", "community"),
    "Q6_K": ("Q6_K", "community"),
    "Q5_K_S": ("Q5_K", "S"),
    "Q4_K_S": ("Q4_K", "S"),
    "Q4_K_M": ("Q4_K", "M"),
    "Q4_0": ("Q4_0", "community"),
    "Q3_K_M": ("Q3_K", "M"),
    "Q2_K": ("Q2_K", "community"),
    "BF16": ("BF16", "community"),
}


def flux(blocks: tuple[int, int], device: str = "cpu"):
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    with torch.device(device):
        model = FluxTransformer2DModel(num_layers=blocks[0], num_single_layers=blocks[1], guidance_embeds=True)
    return model if device == "meta" else _random_weights(model)


def sd35_large_width():
    import torch
    from diffusers import SD3Transformer2DModel

    from harness.pipelines.sd3 import SD35_LARGE_TRANSFORMER

    torch.manual_seed(0)
    return _random_weights(SD3Transformer2DModel(**{**SD35_LARGE_TRANSFORMER, "num_layers": 1}))


def _random_weights(model):
    import torch

    with torch.no_grad():
        for param in model.parameters():  # diffusers' default init leaves some layers at zero
            param.normal_(0, 0.02)
    return model


def roundtrip(file_types: list[str], folder: Path) -> int:
    import gguf
    import numpy as np
    import torch
    from diffusers import GGUFQuantizationConfig
    from diffusers.quantizers.gguf.utils import GGUFParameter, dequantize_gguf_tensor

    from harness.atomic import save_config
    from harness.convert.ldm import component_to_ldm
    from harness.kinds.gguf.file import open_gguf, write_gguf

    failures = 0
    rows = []
    for label, build in (("FLUX.1 (3072)", lambda: flux((1, 1))), ("SD3.5-large width (2432)", sd35_large_width)):
        module = build()
        save_config(module, folder / "config")
        original = {
            k: v.detach().float() for k, v in component_to_ldm("transformer", module, module.state_dict()).items()
        }
        for file_type in file_types:
            quant_type, policy = COMMUNITY[file_type]
            path = folder / f"{label.split()[0]}-{file_type}.gguf"
            start = time.perf_counter()
            stats = write_gguf(module, path, quant_type, float_type="BF16", policy=policy, layout="original")
            write_s = time.perf_counter() - start
            start = time.perf_counter()
            loaded = type(module).from_single_file(
                str(path),
                config=str(folder / "config"),
                local_files_only=True,
                quantization_config=GGUFQuantizationConfig(compute_dtype=torch.float32),
                torch_dtype=torch.float32,
            )
            load_s = time.perf_counter() - start
            state = {
                name: dequantize_gguf_tensor(value).float() if isinstance(value, GGUFParameter) else value.float()
                for name, value in loaded.state_dict().items()
            }
            from_diffusers = component_to_ldm("transformer", loaded, state)
            file = {t.name: t for t in open_gguf(path).tensors}
            worst, errors, worst_by_type = 0.0, {}, {}
            missing = set(file) ^ set(from_diffusers)
            for name, tensor in file.items():
                if name not in from_diffusers:
                    continue
                mine = np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
                theirs = from_diffusers[name].numpy().reshape(mine.shape)
                scale = float(np.abs(mine).max()) or 1.0
                difference = float(np.abs(mine - theirs).max()) / scale
                worst = max(worst, difference)
                reference = original[name].numpy().reshape(mine.shape)
                kind = tensor.tensor_type.name
                worst_by_type[kind] = max(worst_by_type.get(kind, 0.0), difference)
                rel = float(np.linalg.norm(mine - reference) / (np.linalg.norm(reference) or 1.0))
                errors.setdefault(kind, []).append(rel)
            # diffusers dequantizes in float16 (d * q with d an fp16 tensor) before casting to the compute dtype, so
            # quantized tensors agree to a few fp16 roundings of the tensor's largest value; float tensors exactly
            ok = (
                not missing
                and worst <= 2**-8
                and all(worst_by_type.get(kind, 0.0) == 0.0 for kind in ("F32", "F16", "BF16"))
            )
            failures += not ok
            rows.append(
                {
                    "model": label,
                    "file_type": file_type,
                    "tensors": len(file),
                    "params_M": round(sum(v.numel() for v in original.values()) / 1e6, 1),
                    "types": dict(stats.types),
                    "file_MB": round(stats.file_bytes / 1e6, 1),
                    "write_s": round(write_s, 2),
                    "load_s": round(load_s, 2),
                    "max_rel_diff_diffusers_vs_harness": worst,
                    "max_rel_diff_by_type": worst_by_type,
                    "keys_not_matched": sorted(missing)[:5],
                    "rel_error_vs_fp32_by_type": {k: round(statistics.median(v), 5) for k, v in errors.items()},
                    "ok": ok,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            path.unlink()
    _table(
        "round trip through diffusers (GGUFQuantizationConfig, compute float32)",
        [
            "model",
            "file type",
            "tensors",
            "params M",
            "file MB",
            "write s",
            "load s",
            "diffusers vs harness",
            "error vs fp32 (median by type)",
            "ok",
        ],
        [
            [
                *(r[k] for k in ("model", "file_type", "tensors", "params_M", "file_MB", "write_s", "load_s")),
                f"{r['max_rel_diff_diffusers_vs_harness']:.1e}",
                ", ".join(f"{k} {v:.4f}" for k, v in r["rel_error_vs_fp32_by_type"].items() if k != "F32"),
                r["ok"],
            ]
            for r in rows
        ],
    )
    return 1 if failures else 0


def write_one(model: str, label: str, path: Path) -> dict:
    """One timed write in this process: FLUX.1 shapes, tensors as views of one random pool.

    ``label`` is a file type, or ``TYPE@whole`` for the writer before chunking: each tensor in one call, one thread.
    """
    import numpy as np

    from harness.kinds.gguf import ggml_types
    from harness.kinds.gguf.file import Header, keyed_state, planned_types, write_tensors
    from harness.kinds.gguf.file import file_type as llama_file_type
    from harness.kinds.gguf.ggml_types import default_workers
    from harness.memory import status_bytes

    blocks = {"blocks": (1, 1), "flux-dev": (19, 38)}[model]
    meta = flux(blocks, device="meta")
    state, linear = keyed_state(meta, "original")
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    file_type, _, variant = label.partition("@")
    workers = default_workers()
    if variant == "whole":
        ggml_types.CHUNK_ELEMENTS, workers = 2**62, 1
    quant_type, policy = COMMUNITY[file_type]
    types = planned_types(shapes, linear, "flux", quant_type, "BF16", policy)
    pool = np.random.default_rng(0).standard_normal(max(prod(s) for s in shapes.values()), dtype=np.float32)
    pool *= 0.02
    header = Header("flux", llama_file_type(file_type), "FluxTransformer2DModel")
    rss_before = status_bytes("VmRSS") or 0
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the present resident size
    start = time.perf_counter()
    stats = write_tensors(path, shapes, types, lambda name: pool[: prod(shapes[name])], header, workers)
    seconds = time.perf_counter() - start
    params = sum(prod(s) for s in shapes.values())
    return {
        "model": model,
        "file_type": label,
        "params": params,
        "seconds": seconds,
        "mparams_per_s": params / seconds / 1e6,
        "file_gb": stats.file_bytes / 1e9,
        "peak_rss_mb": (status_bytes("VmHWM") or 0) / 2**20,  # during the write
        "rss_before_write_mb": rss_before / 2**20,
        "workers": workers,
    }


def throughput(model: str, file_types: list[str], repeats: int, folder: Path, out: Path | None) -> None:
    from harness.kinds.gguf.ggml_types import default_workers

    unknown = [
        t for t in file_types if t.partition("@")[0] not in COMMUNITY or t.partition("@")[2] not in ("", "whole")
    ]
    if unknown:
        raise SystemExit(f"unknown types {unknown}; known: {', '.join(COMMUNITY)}, each optionally with @whole")
    runs: dict[str, list[dict]] = {t: [] for t in file_types}
    for repeat in range(repeats):
        for file_type in file_types:  # interleaved: a slow spell of the machine hits every type alike
            path = folder / f"{file_type.replace('@', '-')}.gguf"
            done = subprocess.run(
                [sys.executable, __file__, "_one", model, file_type, str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            path.unlink(missing_ok=True)
            runs[file_type].append(result)
            print(json.dumps({"repeat": repeat, **result}), flush=True)
    rows = []
    for file_type, results in runs.items():
        rates = [r["mparams_per_s"] for r in results]
        seconds = [r["seconds"] for r in results]
        peaks = [r["peak_rss_mb"] for r in results]
        rows.append(
            [
                file_type,
                results[0]["workers"],
                f"{results[0]['params'] / 1e9:.2f}B",
                f"{statistics.median(rates):.0f} [{min(rates):.0f}, {max(rates):.0f}]",
                f"{statistics.median(seconds):.1f} [{min(seconds):.1f}, {max(seconds):.1f}]",
                f"{results[0]['file_gb']:.2f}",
                f"{statistics.median(peaks):.0f} ({statistics.median(r['rss_before_write_mb'] for r in results):.0f})",
            ]
        )
    _table(
        f"writer throughput, FLUX.1 shapes ({model}), {default_workers()} CPUs, {repeats} repeats",
        ["type", "threads", "params", "Mparam/s median [range]", "seconds", "file GB", "peak RSS MB (before)"],
        rows,
    )
    if out:
        out.write_text(json.dumps(runs, indent=1))


def _table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}\n| " + " | ".join(header) + " |\n|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        print(json.dumps(write_one(sys.argv[2], sys.argv[3], Path(sys.argv[4]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["roundtrip", "throughput"])
    parser.add_argument(
        "--types",
        nargs="+",
        default=None,
        help=f"file types ({', '.join(COMMUNITY)}); TYPE@whole: the writer before chunking (one call, one thread)",
    )
    parser.add_argument("--model", choices=["blocks", "flux-dev"], default="blocks")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None, help="where files are written (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="write the throughput runs as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as directory:
        folder = Path(directory)
        if args.what == "roundtrip":
            return roundtrip(args.types or ["Q8_0", "Q4_K_M", "Q4_0", "Q2_K", "BF16"], folder)
        throughput(args.model, args.types or ["Q8_0", "Q6_K", "Q4_K_M", "Q4_0", "Q2_K"], args.repeats, folder, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
