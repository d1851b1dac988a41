"""Half-precision convolutions and linear layers on CPUs without fast half-precision kernels.

On CPUs with AVX512-BF16/FP16 or AMX, PyTorch runs float16/bfloat16 convolutions and
matrix products through oneDNN: half-precision inputs and weights, float32 accumulation,
the output rounded to half precision. Without those instructions (e.g. AMD EPYC before
Zen 4) a half-precision convolution falls back to PyTorch's ``_slow_conv2d_forward``,
about 10x slower than float32: the default suite's fp16, bf16 and mixed configurations
took 110-130 s each instead of 4-7 s.

There, each ``nn.Conv2d`` and ``nn.Linear`` whose weights are half precision computes
what the native kernel computes: the same half-precision inputs and weights, widened to
float32, multiplied and accumulated in float32, and the output rounded back to the
layer's dtype. Everything else (attention, normalisation, activations, the values between
layers) stays in half precision. The images then differ from a native run only by the
order of float32 accumulation.

Which path each (dtype, operation) takes is decided once per machine and kept: with
``HARNESS_CPU_HALF = auto`` (the default) each of float16 and bfloat16 convolution and
linear layers is timed both ways at the sizes the shipped models run (interleaved repeats,
medians), the emulated path taken where the native one is more than 1.25x slower, and the
decision written to ``cpu_half.json`` in the cache folder under the machine's CPU model,
thread count and torch version. Every later run with that cache folder reads it, so the
numeric path (and the speed) is the same on every run that shares a cache; the folder's
decision wins over one a process made earlier for another folder, and such a decision is
written into a folder that has none (so a process never measures twice and a second
process finds the first one's answer). It is part of every sample's identity
and of results.json. (It used to be one small convolution timed in each process, which a
loaded machine answered differently from run to run: a 6x speed coin toss whose path the
cache key did not record.) ``native`` and ``float32-accumulate`` force a path.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import types
from pathlib import Path
from typing import Any

MODES = ("auto", "native", "float32-accumulate")
NATIVE, EMULATED = "native", "float32-accumulate"
DTYPES = ("float16", "bfloat16")
OPERATIONS = ("conv", "linear")
SLOWER = 1.25  # native more than this much slower than emulated: emulate
REPEATS = 5
DECISIONS = "cpu_half.json"
_DECIDED: dict[str, dict[str, Any]] = {}  # per process, by machine key: {"paths": ..., "timings": ...}


def mode() -> str:
    value = os.environ.get("HARNESS_CPU_HALF", "auto")
    if value not in MODES:
        from harness.errors import InputError

        raise InputError(f"HARNESS_CPU_HALF={value!r}: expected one of {', '.join(MODES)}")
    return value


def machine_key() -> str:
    """What a decision is kept under: the CPU model and threads, and torch's version (its kernels)."""
    import torch

    from harness.environment import device_class

    return f"{device_class('cpu')} | torch {torch.__version__}"


def paths(cache_dir: Path | None) -> dict[str, dict[str, str]]:
    """The path each half-precision dtype and operation takes on this CPU: ``{"float16": {"conv": "native" |
    "float32-accumulate", "linear": ...}, "bfloat16": {...}}``, decided once per machine (see the module's
    docstring) and kept in ``cache_dir/cpu_half.json``."""
    chosen = mode()
    if chosen != "auto":
        return {dtype: dict.fromkeys(OPERATIONS, chosen) for dtype in DTYPES}
    key = machine_key()
    stored = _stored(cache_dir, key)
    if stored is not None:  # the cache folder's decision is the one every run sharing the folder takes
        return stored
    if key not in _DECIDED:
        _DECIDED[key] = _decided(measure())
    _keep(cache_dir, key, _DECIDED[key])  # a decision this process made for another folder: this folder's too
    return _DECIDED[key]["paths"]


def _stored(cache_dir: Path | None, key: str) -> dict[str, dict[str, str]] | None:
    if cache_dir is None:
        return None
    try:
        found = json.loads((cache_dir / DECISIONS).read_text())[key]["paths"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    valid = isinstance(found, dict) and all(
        found.get(dtype, {}).get(op) in (NATIVE, EMULATED) for dtype in DTYPES for op in OPERATIONS
    )
    return found if valid else None


def _decided(timings: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    paths = {
        dtype: {op: EMULATED if t["native_s"] > SLOWER * t["emulated_s"] else NATIVE for op, t in ops.items()}
        for dtype, ops in timings.items()
    }
    return {"paths": paths, "timings": timings, "rule": f"emulated where native > {SLOWER} x emulated"}


def _keep(cache_dir: Path | None, key: str, record: dict[str, Any]) -> None:
    if cache_dir is None:
        return
    from harness.atomic import write_text

    path = cache_dir / DECISIONS
    try:
        known = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        known = {}
    known[key] = record
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(known, indent=1) + "\n")


def measure() -> dict[str, dict[str, dict[str, float]]]:
    """Median seconds of each half-precision operation, native and emulated, timed in interleaved repeats at the
    shipped models' sizes: a 3x3 convolution of 64 channels at 32x32 and a 512-wide linear layer on 256 tokens."""
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    conv, image = torch.nn.Conv2d(64, 64, 3, padding=1), torch.randn(2, 64, 32, 32)
    linear, tokens = torch.nn.Linear(512, 512), torch.randn(256, 512)
    torch.random.set_rng_state(state)
    found: dict[str, dict[str, dict[str, float]]] = {}
    for name in DTYPES:
        dtype = getattr(torch, name)
        found[name] = {
            "conv": _time_both(conv.to(dtype), image.to(dtype), _conv_forward),
            "linear": _time_both(linear.to(dtype), tokens.to(dtype), _linear_forward),
        }
    return found


def _time_both(layer: Any, data: Any, emulated: Any) -> dict[str, float]:
    """The layer's native and emulated forward, timed in turn ``REPEATS`` times after a warm-up: the medians."""
    import torch

    calls = {"native_s": lambda: layer(data), "emulated_s": lambda: emulated(layer, data)}
    samples: dict[str, list[float]] = {label: [] for label in calls}
    with torch.no_grad():
        for call in calls.values():
            call()
        for _ in range(REPEATS):
            for label, call in calls.items():
                start = time.perf_counter()
                call()
                samples[label].append(time.perf_counter() - start)
    return {label: round(statistics.median(values), 6) for label, values in samples.items()}


def slow_half(dtype: Any, cache_dir: Path | None = None) -> bool:
    """Whether this CPU takes the emulated path for ``dtype`` convolutions (the machine's kept decision)."""
    return paths(cache_dir)[str(dtype).removeprefix("torch.")]["conv"] == EMULATED


def _conv_forward(self: Any, data: Any) -> Any:
    bias = None if self.bias is None else self.bias.float()
    return self._conv_forward(data.float(), self.weight.float(), bias).to(self.weight.dtype)


def _linear_forward(self: Any, data: Any) -> Any:
    import torch.nn.functional as F

    bias = None if self.bias is None else self.bias.float()
    return F.linear(data.float(), self.weight.float(), bias).to(self.weight.dtype)


def accumulate_in_float32(pipe: Any, device: str, cache_dir: Path | None = None) -> dict[str, str]:
    """On a CPU, route the half-precision conv/linear layers whose (dtype, operation) takes the emulated path on this
    machine (:func:`paths`); the notes say which, and why."""
    import torch
    from torch import nn

    if device != "cpu" or mode() == NATIVE:
        return {}
    from harness.kinds.casting import module_components

    decided = paths(cache_dir)
    counts: dict[str, int] = {}
    for module in module_components(pipe).values():
        for layer in module.modules():
            kind = type(layer)
            if kind not in (nn.Conv2d, nn.Linear) or layer.weight.dtype not in (torch.float16, torch.bfloat16):
                continue
            name = str(layer.weight.dtype).removeprefix("torch.")
            if decided[name]["conv" if kind is nn.Conv2d else "linear"] != EMULATED:
                continue
            layer.forward = types.MethodType(_conv_forward if kind is nn.Conv2d else _linear_forward, layer)
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return {}
    layers = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    return {
        "cpu_half": f"{layers} conv/linear layers accumulate in float32 from half-precision inputs and weights, "
        "output rounded back (this CPU runs them slower natively; the machine's decision, kept in cpu_half.json; "
        "see harness/kinds/cpu_half.py)"
    }
