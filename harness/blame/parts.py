"""The parts of a pipeline that a configuration's loss can be blamed on: components, the denoiser's blocks, and
its tensor groups (attention q/k/v/out, feed-forward, embeddings, norms and modulation, ...).

A part is a set of module paths from the pipeline (``transformer.transformer_blocks.3``,
``unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v``). Only parts whose
modules differ between the two pipelines compared (another type, dtype or value) are
listed: a part that is the same in both cannot hold any of the loss.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.kinds.casting import module_components
from harness.kinds.layers import resolve_submodule

LEVELS = ("components", "blocks", "groups")

# Tensor groups of a denoiser by the path of a leaf module (one holding parameters itself) inside it; the first match
# wins, so the top-level names (embeddings, output) come before the patterns that would also match them.
GROUPS: tuple[tuple[str, str], ...] = (
    (
        "embeddings",
        r"^(\w+\.)?(time_embedding|time_text_embed|x_embedder|context_embedder|pos_embed|add_embedding|conv_in|"
        r"time_proj|guidance_embedder|caption_projection|adaln_single|patch_embed|quant_conv)(\.|$)",
    ),
    ("output", r"^(\w+\.)?(conv_out|conv_norm_out|proj_out|norm_out|post_quant_conv)(\.|$)"),
    ("attention q", r"(^|\.)(to_q|add_q_proj|q_proj)$"),
    ("attention k", r"(^|\.)(to_k|add_k_proj|k_proj)$"),
    ("attention v", r"(^|\.)(to_v|add_v_proj|v_proj)$"),
    ("attention out", r"(^|\.)(to_out\.0|to_add_out|out_proj)$"),
    ("attention norms", r"(^|\.)(norm_q|norm_k|norm_added_q|norm_added_k)$"),
    ("feed-forward", r"(^|\.)(ff|ff_context|mlp)\.|(^|\.)proj_mlp$|single_transformer_blocks\.\d+\.proj_out$"),
    ("resnet convolutions", r"resnets\.\d+\.(conv1|conv2|conv_shortcut|time_emb_proj)$"),
    ("norms and modulation", r"(^|\.)norm\w*(\.linear)?$"),
)


@dataclass(frozen=True)
class Part:
    """One part: its name in words, its level and the module paths it covers."""

    name: str
    level: str
    paths: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "level": self.level, "modules": len(self.paths)}


def group_of(path: str) -> str:
    """The tensor group of a leaf module's path inside the denoiser ("other" when none matches)."""
    for name, pattern in GROUPS:
        if re.search(pattern, path):
            return name
    return "other"


def leaves(module: Any) -> dict[str, Any]:
    """Modules holding parameters of their own, by path inside ``module``."""
    return {name: sub for name, sub in module.named_modules() if name and any(True for _ in sub.parameters(False))}


def differs(a: Any, b: Any) -> bool:
    """Whether two modules compute differently: another type, or any parameter or buffer of another dtype, shape
    or value."""
    import torch

    if type(a) is not type(b):
        return True
    mine = dict(a.named_parameters()) | dict(a.named_buffers())
    theirs = dict(b.named_parameters()) | dict(b.named_buffers())
    if mine.keys() != theirs.keys():
        return True
    for key, tensor in mine.items():
        other = theirs[key]
        if type(tensor) is not type(other) or tensor.dtype != other.dtype or tensor.shape != other.shape:
            return True
        if not torch.equal(tensor.detach(), other.detach()):
            return True
    return False


def find_parts(changed: Any, reference: Any, denoiser: str, levels: Sequence[str] = LEVELS) -> list[Part]:
    """The parts of ``changed`` (a configuration's pipeline) that differ from ``reference``'s, at each level asked:
    the components, then the blocks and the tensor groups of each component that differs (the denoiser first)."""
    mine, theirs = module_components(changed), module_components(reference)
    names = [name for name in mine if name in theirs and differs_deep(mine[name], theirs[name])]
    names.sort(key=lambda name: name != denoiser)
    parts: list[Part] = []
    if "components" in levels:
        parts += [Part(name, "component", (name,)) for name in names]
    for name in names:
        ours, ref = mine[name], theirs[name]
        ref_leaves = leaves(ref)
        order = list(leaves(ours))
        different = [p for p, leaf in leaves(ours).items() if p not in ref_leaves or differs(leaf, ref_leaves[p])]
        if "blocks" in levels:
            parts += [
                Part(f"{name}.{block}", "block", (f"{name}.{block}",))
                for block in blocks(ours)
                if any(path == block or path.startswith(block + ".") for path in different)
            ]
        if "groups" in levels:
            grouped: dict[str, list[str]] = {}
            for path in sorted(different, key=order.index):
                grouped.setdefault(group_of(path), []).append(f"{name}.{path}")
            parts += [Part(f"{name}: {group}", "group", tuple(paths)) for group, paths in grouped.items()]
    return parts


def differs_deep(a: Any, b: Any) -> bool:
    la, lb = leaves(a), leaves(b)
    return la.keys() != lb.keys() or any(differs(module, lb[path]) for path, module in la.items())


def blocks(module: Any, prefix: str = "") -> list[str]:
    """A component's blocks, in order: each item of its top-level module lists, and each other child with
    parameters (embeddings, in and out projections); a child that itself holds module lists (a VAE's encoder and
    decoder) is opened the same way."""
    import torch

    found = []
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, torch.nn.ModuleList):
            found += [f"{path}.{index}" for index in range(len(child))]
        elif any(isinstance(grandchild, torch.nn.ModuleList) for grandchild in child.children()):
            found += blocks(child, f"{path}.")
        elif any(True for _ in child.parameters()):
            found.append(path)
    return found


def module_bytes(pipe: Any, paths: Iterable[str]) -> int:
    """Bytes the parameters and buffers of the modules at ``paths`` hold (packed quantized tensors as stored)."""
    from harness.kinds.optional import tensor_bytes

    total = 0
    for path in paths:
        module = resolve_submodule(pipe, path)
        total += sum(tensor_bytes(t) for t in module.parameters()) + sum(tensor_bytes(t) for t in module.buffers())
    return total
