"""Writing and reading GGUF files of diffusers components.

The writer stores a component's state dict under diffusers' key names or the original
(single-file) layout of the files people download, with each tensor's type from
:func:`planned_types`: the community's rules (``policy = "community"`` or a mix, see
:mod:`harness.kinds.gguf.policy`) or the harness's ``uniform`` policy, which quantizes every
2-D ``nn.Linear`` weight that fits 32-element blocks and is not tiny. Unquantized tensors
are F32 when 1-D or of at most 1024 elements, else F16 (or BF16, or F32: ``float_type``).

The file is written as a stream: header and tensor index first, then one tensor at a time,
each quantized in row chunks on all cores (:mod:`harness.kinds.gguf.ggml_types`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import replacing
from harness.errors import InputError
from harness.kinds.gguf.ggml_types import FLOAT_KINDS, default_workers, encode, nbytes
from harness.kinds.gguf.policy import (
    SMALL_TENSOR_ELEMENTS,
    SUPER_BLOCK,
    community_types,
    float_storage,
    kept_float,
    mix_name,
)

QUANT_TYPES = ("Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0", "Q3_K", "Q2_K", "BF16", "F16")
# llama.cpp's fallbacks for rows that do not fill 256-element super-blocks (its Q3_K/Q2_K fallback,
# IQ4_NL, has no writer in the gguf package: Q4_0 is the nearest legacy type)
K_FALLBACK = {"Q6_K": "Q8_0", "Q5_K": "Q5_1", "Q4_K": "Q5_0", "Q3_K": "Q4_0", "Q2_K": "Q4_0"}
LAYOUTS = ("diffusers", "original")
BLOCK = 32
ARCH = "harness-diffusers"  # diffusers' key names: a layout no community loader reads by architecture
# general.architecture of original-layout files, as ComfyUI-GGUF's loader (IMG_ARCH_LIST) and its convert.py name them
ORIGINAL_ARCH = {"FluxTransformer2DModel": "flux", "SD3Transformer2DModel": "sd3", "WanTransformer3DModel": "wan"}
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


def should_quantize(name: str, shape: tuple[int, ...], linear_weights: set[str]) -> bool:
    """Whether a weight of ``shape`` is one diffusers' GGUF loader can load quantized (a Linear weight, rows of
    32-element blocks) and the community would quantize (more than 1024 elements)."""
    return name in linear_weights and len(shape) == 2 and shape[-1] % BLOCK == 0 and prod(shape) > SMALL_TENSOR_ELEMENTS


def tensor_type(quant_type: str, row_length: int) -> str:
    """The type a quantizable weight is stored in by the ``uniform`` policy: ``quant_type``, or a K-quant's
    legacy fallback (the community's files fall back to F16: :mod:`harness.kinds.gguf.policy`)."""
    if quant_type in K_FALLBACK and row_length % SUPER_BLOCK:
        return K_FALLBACK[quant_type]
    return quant_type


def planned_types(
    shapes: Mapping[str, tuple[int, ...]],
    linear: set[str],
    architecture: str,
    quant_type: str,
    float_type: str = "F16",
    policy: str = "uniform",
    overrides: Sequence[tuple[str, str]] = (),
) -> dict[str, str]:
    """Every tensor's GGML type, in file order.

    ``uniform``: every quantizable Linear weight in ``quant_type`` (short K rows in a legacy type). Any other
    policy: the community's file (:func:`gguf_policy.community_types`, convolutions left in float as diffusers
    needs), where a tensor diffusers would not load quantized (not a Linear weight, rows not a multiple of 32)
    stays float. Then ``overrides``, (glob, type) pairs on the tensor names where the last match wins: an override
    to a quantized type applies only to a tensor diffusers loads quantized, a float one to any.
    """
    if policy != "uniform":
        types = community_types(architecture, shapes, mix_name(quant_type, policy), float_type, shape_fix=False)
        for name, kind in types.items():
            if kind not in FLOAT_KINDS and not should_quantize(name, shapes[name], linear):
                types[name] = float_storage(shapes[name], float_type)
    else:
        storage = "F16" if quant_type == "F16" else float_type
        types = {
            name: tensor_type(quant_type, shape[-1])
            if quant_type != "F16" and should_quantize(name, shape, linear) and not kept_float(architecture, name)
            else float_storage(shape, storage)
            for name, shape in shapes.items()
        }
    for name in types:
        for pattern, kind in overrides:
            if not fnmatch.fnmatchcase(name, pattern):
                continue
            if kind in FLOAT_KINDS:
                types[name] = float_storage(shapes[name], kind)
            elif should_quantize(name, shapes[name], linear):
                types[name] = tensor_type(kind, shapes[name][-1])
    return types


def keyed_state(module: Any, layout: str) -> tuple[dict[str, Any], set[str]]:
    """The state dict to write, under diffusers or original (single-file) keys, and its Linear weights' keys.

    The original layout is the one of the files people download: ``model.diffusion_model.``
    keys for SD1.x/SDXL UNets (diffusers' UNet converter needs the prefix), BFL's keys for
    FLUX.1 and Stability's for SD3.x (``harness.convert``, checked against diffusers' own
    converters). In the transformers' layouts every 2-D ``.weight`` is a Linear layer's.
    """
    state = {k: v.detach() for k, v in module.state_dict().items()}  # copied to the CPU one at a time, when written
    linear = linear_weight_names(module)
    if layout == "diffusers":
        return state, linear
    from harness.convert import UnmappedKeys
    from harness.convert.ldm import component_to_ldm

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


@dataclass(frozen=True)
class Header:
    """The key-value header of a written file."""

    architecture: str
    file_type: int
    name: str


def write_gguf(
    module: Any,
    path: Path,
    quant_type: str,
    float_type: str = "F16",
    policy: str = "uniform",
    layout: str = "diffusers",
    workers: int | None = None,
    overrides: Sequence[tuple[str, str]] = (),
) -> GGUFStats:
    """Write ``module``'s weights to ``path`` (atomically) and return what was written.

    ``policy``: ``uniform``, ``community`` (the file llama-quantize writes for ``quant_type``) or ``S``/``M``/``L``
    (llama.cpp's mixes, see :mod:`harness.kinds.gguf.policy`); ``layout`` the key names; ``float_type`` the
    storage of unquantized tensors (F16, BF16 or F32; 1-D and small tensors are always F32).
    """
    state, linear = keyed_state(module, layout)
    arch = architecture(module, layout)
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    types = planned_types(shapes, linear, arch, quant_type, float_type, policy, overrides)
    header = Header(arch, file_type(mix_name(quant_type, policy)), type(module).__name__)
    return write_tensors(path, shapes, types, lambda name: state[name], header, workers)


def write_tensors(
    path: Path,
    shapes: Mapping[str, tuple[int, ...]],
    types: Mapping[str, str],
    load: Callable[[str], Any],
    header: Header,
    workers: int | None = None,
) -> GGUFStats:
    """Write tensors ``shapes`` (file order) as ``types`` to ``path``, atomically, streaming.

    The header and tensor index are written first (sizes follow from shapes and types), then each tensor is
    fetched with ``load(name)`` (a torch tensor or numpy array), encoded on ``workers`` threads and written
    before the next is fetched: memory holds one tensor's bytes, never a second copy of the model.
    """
    import gguf

    workers = workers or default_workers()
    counts: dict[str, int] = {}
    for kind in types.values():
        counts[kind] = counts.get(kind, 0) + 1
    fp16_bytes = sum(prod(shape) * 2 for shape in shapes.values())
    with replacing(path) as temporary:
        writer = gguf.GGUFWriter(str(temporary), header.architecture)
        writer.add_name(header.name)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        writer.add_file_type(header.file_type)
        for name, shape in shapes.items():
            kind = types[name]
            writer.add_tensor_info(
                name, shape, np.dtype(np.float32), nbytes(shape, kind), getattr(gguf.GGMLQuantizationType, kind)
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for name, shape in shapes.items():
            array = _as_float32(load(name)).reshape(shape)
            writer.write_tensor_data(encode(array, types[name], workers))
        writer.close()
    floats = sum(n for kind, n in counts.items() if kind in FLOAT_KINDS)
    return GGUFStats(len(types) - floats, floats, path.stat().st_size, fp16_bytes, counts)


def _as_float32(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return np.asarray(value, dtype=np.float32)
    import torch

    return value.detach().to("cpu", torch.float32).contiguous().numpy()


def read_gguf_stats(path: Path) -> GGUFStats:
    """Read a GGUF file's tensor list; a truncated or corrupt file is an :class:`InputError`."""
    reader = open_gguf(path)
    import gguf

    float_types = {getattr(gguf.GGMLQuantizationType, kind) for kind in FLOAT_KINDS}
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
