"""Writing and reading GGUF files of diffusers components.

The writer stores a component's state dict under its diffusers key names (what
diffusers' GGUF loader accepts). It quantizes what GGUF loaders quantize: the 2-D
weights of ``nn.Linear`` layers whose last dimension fits the 32-element blocks and
that are not tiny. Everything else keeps a float type: 1-D tensors (biases, norms) in
F32, other tensors (convolutions, embeddings) in F16, or F32 with ``float_type = "F32"``.

The K-quants (Q6_K, Q5_K, Q4_K) need rows of 256; a quantizable weight whose rows are
only a multiple of 32 gets the type llama.cpp's quantizer falls back to (Q8_0, Q5_1, Q5_0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import replacing
from harness.errors import InputError
from harness.quant.kquants import SUPER_BLOCK, quantize_k

QUANT_TYPES = ("Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0", "Q3_K", "Q2_K", "BF16", "F16")
# llama.cpp's fallbacks for rows that do not fill 256-element super-blocks (its Q3_K/Q2_K fallback,
# IQ4_NL, has no writer in the gguf package: Q4_0 is the nearest legacy type)
K_FALLBACK = {"Q6_K": "Q8_0", "Q5_K": "Q5_1", "Q4_K": "Q5_0", "Q3_K": "Q4_0", "Q2_K": "Q4_0"}
LAYOUTS = ("diffusers", "original")
BLOCK = 32
# convert.py (ComfyUI-GGUF) keeps tensors of at most this many elements in F32, never quantized or F16
SMALL_TENSOR_ELEMENTS = 1024
ARCH = "harness-diffusers"  # diffusers' key names: a layout no community loader reads by architecture
# general.architecture of original-layout files, as ComfyUI-GGUF's loader (IMG_ARCH_LIST) and its convert.py name them
ORIGINAL_ARCH = {"FluxTransformer2DModel": "flux", "SD3Transformer2DModel": "sd3"}
# llama.cpp's file type for a uniform K-quant: the _S mix is all base type but a few tensors
UNIFORM_FILE_TYPE = {"Q3_K": "Q3_K_S", "Q4_K": "Q4_K_S", "Q5_K": "Q5_K_S", "F16": "F16", "F32": "F32"}


@dataclass(frozen=True)
class GGUFStats:
    """What a GGUF file holds, for the report."""

    quantized_tensors: int
    float_tensors: int
    file_bytes: int
    fp16_bytes: int
    types: Mapping[str, int]

    @property
    def compression_vs_fp16(self) -> float:
        return self.fp16_bytes / self.file_bytes if self.file_bytes else 0.0

    def to_notes(self) -> dict[str, Any]:
        return {
            "quantized_tensors": self.quantized_tensors,
            "float_tensors": self.float_tensors,
            "file_mb": round(self.file_bytes / 1e6, 3),
            "fp16_weights_mb": round(self.fp16_bytes / 1e6, 3),
            "compression_vs_fp16": round(self.compression_vs_fp16, 3),
            "tensor_types": dict(self.types),
        }


def linear_weight_names(module: Any) -> set[str]:
    from torch import nn

    return {f"{name}.weight" for name, sub in module.named_modules() if isinstance(sub, nn.Linear)}


def should_quantize(name: str, array: Any, linear_weights: set[str]) -> bool:
    """Whether a weight (numpy array or torch tensor) is one GGUF loaders quantize."""
    return (
        name in linear_weights
        and len(array.shape) == 2
        and array.shape[-1] % BLOCK == 0
        and int(np.prod(array.shape)) > SMALL_TENSOR_ELEMENTS
    )


def tensor_type(quant_type: str, row_length: int) -> str:
    """The type a quantizable weight is stored in: ``quant_type``, or a K-quant's fallback."""
    if quant_type in K_FALLBACK and row_length % SUPER_BLOCK:
        return K_FALLBACK[quant_type]
    return quant_type


def keyed_state(module: Any, layout: str) -> tuple[dict[str, Any], set[str]]:
    """The state dict to write, under diffusers or original (single-file) keys, and its Linear weights' keys.

    The original layout is the one of the files people download: ``model.diffusion_model.``
    keys for SD1.x/SDXL UNets (diffusers' UNet converter needs the prefix), BFL's keys for
    FLUX.1 and Stability's for SD3.x (``harness.convert``, checked against diffusers' own
    converters). In the transformers' layouts every 2-D ``.weight`` is a Linear layer's.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    linear = linear_weight_names(module)
    if layout == "diffusers":
        return state, linear
    from harness.convert.ldm import UnmappedKeys, component_to_ldm

    component = "unet" if type(module).__name__ == "UNet2DConditionModel" else "transformer"
    try:
        renamed = component_to_ldm(component, module, state)
    except UnmappedKeys as error:
        raise InputError(
            f"layout: {error}; the original layout is written for SD1.x/SDXL UNets and FLUX.1/SD3.x "
            "transformers: use layout = 'diffusers'"
        ) from None
    if component == "unet":  # renamed only: a Linear weight is the same tensor under its new key
        by_tensor = {id(tensor): key for key, tensor in renamed.items()}
        return renamed, {by_tensor[id(state[name])] for name in linear if id(state[name]) in by_tensor}
    return renamed, {key for key, tensor in renamed.items() if key.endswith(".weight") and tensor.dim() == 2}


def architecture(module: Any, layout: str) -> str:
    """``general.architecture`` for ``module`` written in ``layout``: ``flux``/``sd3``/``sdxl``/``sd1`` for the
    original layout (what ComfyUI-GGUF accepts), :data:`ARCH` for diffusers' key names."""
    if layout == "diffusers":
        return ARCH
    name = type(module).__name__
    if name == "UNet2DConditionModel":
        return "sdxl" if getattr(module.config, "addition_embed_type", None) == "text_time" else "sd1"
    return ORIGINAL_ARCH.get(name, ARCH)


def file_type(label: str) -> int:
    """``general.file_type`` (llama.cpp's ``LlamaFileType``) of a file of type or mix ``label`` (``Q4_K_M``)."""
    import gguf

    name = "ALL_F32" if label == "F32" else f"MOSTLY_{UNIFORM_FILE_TYPE.get(label, label)}"
    member = getattr(gguf.LlamaFileType, name, gguf.LlamaFileType.GUESSED)
    return int(member)


def write_gguf(
    module: Any,
    path: Path,
    quant_type: str,
    float_type: str = "F16",
    policy: str = "uniform",
    layout: str = "diffusers",
) -> GGUFStats:
    """Write ``module``'s weights to ``path`` (atomically) and return what was written.

    ``policy`` ``"S"``/``"M"``/``"L"`` gives llama.cpp's mixes of ``quant_type`` (see
    :mod:`harness.quant.gguf_policy`); ``layout`` the key names.
    """
    from harness.quant.gguf_policy import assign_types, kept_float, mix_name

    state, linear = keyed_state(module, layout)
    arch = architecture(module, layout)
    quantizable = [
        name for name, tensor in state.items() if should_quantize(name, tensor, linear) and not kept_float(arch, name)
    ]
    planned = (
        assign_types(quantizable, mix_name(quant_type, policy))
        if policy != "uniform"
        else dict.fromkeys(quantizable, quant_type)
    )
    header = (arch, file_type(mix_name(quant_type, policy)))
    with replacing(path) as temporary:
        counts, quantized, floats, fp16_bytes = _write_tensors(
            temporary, module, state, planned, quant_type, float_type, header
        )
    return GGUFStats(quantized, floats, path.stat().st_size, fp16_bytes, counts)


def _write_tensors(
    temporary: Path,
    module: Any,
    state: Any,
    planned: dict[str, str],
    quant_type: str,
    float_type: str,
    header: tuple[str, int],
) -> tuple[dict[str, int], int, int, int]:
    import gguf
    import torch

    arch, kind_of_file = header
    writer = gguf.GGUFWriter(str(temporary), arch)
    writer.add_name(type(module).__name__)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type(kind_of_file)
    counts: dict[str, int] = {}
    quantized = floats = fp16_bytes = 0
    for name, tensor in state.items():
        array = tensor.to(torch.float32).numpy()  # one tensor at a time: a full-size model never doubles in RAM
        fp16_bytes += array.size * 2
        if quant_type != "F16" and name in planned:
            kind = tensor_type(planned[name], array.shape[-1])
            target = getattr(gguf.GGMLQuantizationType, kind)
            data = quantize_k(array, kind) if kind in K_FALLBACK else gguf.quants.quantize(array, target)
            writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=target)
            quantized += 1
        elif array.ndim >= 2 and array.size > SMALL_TENSOR_ELEMENTS and (quant_type == "F16" or float_type == "F16"):
            writer.add_tensor(name, array.astype(np.float16))
            kind, floats = "F16", floats + 1
        else:
            writer.add_tensor(name, array)
            kind, floats = "F32", floats + 1
        counts[kind] = counts.get(kind, 0) + 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return counts, quantized, floats, fp16_bytes


def read_gguf_stats(path: Path) -> GGUFStats:
    """Read a GGUF file's tensor list; a truncated or corrupt file is an :class:`InputError`."""
    reader = open_gguf(path)
    import gguf

    float_types = {gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16}
    counts: dict[str, int] = {}
    quantized = floats = fp16_bytes = 0
    for tensor in reader.tensors:
        name = tensor.tensor_type.name
        counts[name] = counts.get(name, 0) + 1
        elements = int(np.prod([int(d) for d in tensor.shape]))
        fp16_bytes += elements * 2
        if tensor.tensor_type in float_types:
            floats += 1
        else:
            quantized += 1
    return GGUFStats(quantized, floats, path.stat().st_size, fp16_bytes, counts)


def open_gguf(path: Path) -> Any:
    """A ``GGUFReader``; anything unreadable becomes one clear message."""
    from gguf import GGUFReader

    if not path.is_file():
        raise InputError("GGUF file not found", file=path)
    try:
        return GGUFReader(str(path))
    except Exception as error:  # GGUFReader raises ValueError, struct.error, IndexError... on bad bytes
        raise InputError(
            f"not a readable GGUF file (truncated or corrupt?): {type(error).__name__}: {error}", file=path
        ) from None
