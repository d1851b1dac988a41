"""diffusers layout -> original (LDM) single-file layout for SD UNets, VAEs and CLIP text encoders.

The inverse of diffusers' own single-file converters, written from the layouts:

- UNet (``model.diffusion_model.``): ``input_blocks.{(L+1)i+j+1}.0`` is down block i's resnet j and
  ``.1`` its attention; ``input_blocks.{(L+1)(i+1)}.0.op`` its downsampler; ``middle_block.{0,1,2}``;
  ``output_blocks.{(L+1)i+j}`` up block i's resnet/attention j, with the upsampler after them.
  Resnets rename ``norm1/conv1/time_emb_proj/norm2/conv2/conv_shortcut`` to
  ``in_layers.0/in_layers.2/emb_layers.1/out_layers.0/out_layers.3/skip_connection``.
- VAE (``first_stage_model.``): ``down.i.block.j``, ``down.i.downsample``, ``mid.block_1/attn_1/block_2``,
  and the decoder's ``up`` blocks in reverse order; attention projections become 1x1 convolutions
  (``q/k/v/proj_out``, ``norm``).
- CLIP text encoder (``cond_stage_model.transformer.text_model.``): the transformers keys.

Keys the layout has no place for are kept under a recognisable name rather than dropped
(an LCM UNet's ``time_embedding.cond_proj`` becomes ``time_embed.cond_proj``): whether an
importer reads them is exactly what the single-file audit checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.convert import UnmappedKeys as UnmappedKeys  # the error of every exporter here (mmdit.py too)

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

_UNET_RESNET = {
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "time_emb_proj.": "emb_layers.1.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "conv_shortcut.": "skip_connection.",
}
_VAE_RESNET = {"conv_shortcut.": "nin_shortcut."}
_VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def _unet_prefixes(config: Mapping[str, Any], keys: list[str]) -> list[tuple[str, str, Mapping[str, str]]]:
    layers = config["layers_per_block"]
    if not isinstance(layers, int):
        raise UnmappedKeys("per-block layers_per_block lists are not supported by the LDM layout")
    blocks = len(config["block_out_channels"])
    prefixes: list[tuple[str, str, Mapping[str, str]]] = [
        ("time_embedding.linear_1.", "time_embed.0.", {}),
        ("time_embedding.linear_2.", "time_embed.2.", {}),
        ("time_embedding.cond_proj.", "time_embed.cond_proj.", {}),
        ("add_embedding.linear_1.", "label_emb.0.0.", {}),  # SDXL's size and pooled-text conditioning
        ("add_embedding.linear_2.", "label_emb.0.2.", {}),
        ("conv_in.", "input_blocks.0.0.", {}),
        ("conv_norm_out.", "out.0.", {}),
        ("conv_out.", "out.2.", {}),
        ("mid_block.resnets.0.", "middle_block.0.", _UNET_RESNET),
        ("mid_block.attentions.0.", "middle_block.1.", {}),
        ("mid_block.resnets.1.", "middle_block.2.", _UNET_RESNET),
    ]
    for i in range(blocks):
        for j in range(layers):
            index = (layers + 1) * i + j + 1
            prefixes.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{index}.0.", _UNET_RESNET))
            prefixes.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{index}.1.", {}))
        if i < blocks - 1:
            prefixes.append(
                (f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(layers + 1) * (i + 1)}.0.op.", {})
            )
    for i in range(blocks):
        has_attention = any(key.startswith(f"up_blocks.{i}.attentions.") for key in keys)
        for j in range(layers + 1):
            index = (layers + 1) * i + j
            prefixes.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{index}.0.", _UNET_RESNET))
            prefixes.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{index}.1.", {}))
        if i < blocks - 1:
            slot = 2 if has_attention else 1
            prefixes.append(
                (f"up_blocks.{i}.upsamplers.0.conv.", f"output_blocks.{(layers + 1) * i + layers}.{slot}.conv.", {})
            )
    return prefixes


def _vae_prefixes(config: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, str]]]:
    blocks = len(config["block_out_channels"])
    layers = config["layers_per_block"]
    prefixes: list[tuple[str, str, Mapping[str, str]]] = [
        ("quant_conv.", "quant_conv.", {}),
        ("post_quant_conv.", "post_quant_conv.", {}),
    ]
    for side in ("encoder", "decoder"):
        prefixes += [
            (f"{side}.conv_in.", f"{side}.conv_in.", {}),
            (f"{side}.conv_out.", f"{side}.conv_out.", {}),
            (f"{side}.conv_norm_out.", f"{side}.norm_out.", {}),
            (f"{side}.mid_block.resnets.0.", f"{side}.mid.block_1.", _VAE_RESNET),
            (f"{side}.mid_block.resnets.1.", f"{side}.mid.block_2.", _VAE_RESNET),
            (f"{side}.mid_block.attentions.0.", f"{side}.mid.attn_1.", _VAE_ATTENTION),
        ]
    for i in range(blocks):
        for j in range(layers):
            prefixes.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.", _VAE_RESNET))
        prefixes.append((f"encoder.down_blocks.{i}.downsamplers.0.conv.", f"encoder.down.{i}.downsample.conv.", {}))
        for j in range(layers + 1):
            prefixes.append(
                (f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{blocks - 1 - i}.block.{j}.", _VAE_RESNET)
            )
        prefixes.append(
            (f"decoder.up_blocks.{i}.upsamplers.0.conv.", f"decoder.up.{blocks - 1 - i}.upsample.conv.", {})
        )
    return prefixes


def _convert(
    state_dict: Mapping[str, Any], prefixes: list[tuple[str, str, Mapping[str, str]]], out_prefix: str
) -> dict[str, Any]:
    ordered = sorted(prefixes, key=lambda item: len(item[0]), reverse=True)
    converted: dict[str, Any] = {}
    unmapped = []
    for key, tensor in state_dict.items():
        for source, target, inner in ordered:
            if key.startswith(source):
                rest = key[len(source) :]
                for inner_source, inner_target in inner.items():
                    if rest.startswith(inner_source):
                        rest = inner_target + rest[len(inner_source) :]
                        break
                converted[out_prefix + target + rest] = tensor
                break
        else:
            unmapped.append(key)
    if unmapped:
        raise UnmappedKeys(f"{len(unmapped)} keys have no place in the LDM layout (first: {', '.join(unmapped[:5])})")
    return converted


def unet_to_ldm(state_dict: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers UNet2DConditionModel state dict in the original SD layout (``model.diffusion_model.`` keys)."""
    return _convert(state_dict, _unet_prefixes(config, list(state_dict)), UNET_PREFIX)


def vae_to_ldm(state_dict: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers AutoencoderKL state dict in the original layout (``first_stage_model.`` keys)."""
    converted = _convert(state_dict, _vae_prefixes(config), VAE_PREFIX)
    for key, tensor in converted.items():
        if ".mid.attn_1." in key and key.endswith(".weight") and tensor.dim() == 2:
            converted[key] = tensor.reshape(*tensor.shape, 1, 1)  # LDM attention projections are 1x1 convolutions
    return converted


def text_encoder_to_ldm(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A transformers CLIPTextModel state dict under ``cond_stage_model.transformer.text_model.``.

    transformers 5.6 flattened CLIPTextModel (no ``text_model.`` level); the original layout keeps it.
    """
    return {
        TEXT_PREFIX + (key if key.startswith("text_model.") else "text_model." + key): tensor
        for key, tensor in state_dict.items()
    }


def pipeline_to_ldm(pipe: Any) -> dict[str, Any]:
    """A whole SD pipeline (UNet, VAE, CLIP text encoder) as one original-layout state dict."""
    converted: dict[str, Any] = {}
    for name in ("unet", "vae", "text_encoder"):
        converted.update(component_to_ldm(name, pipe.components[name]))
    return converted


def component_to_ldm(name: str, module: Any, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The single-file keys of one pipeline component (``unet``, ``vae``, ``text_encoder``, or an SD3/FLUX ``transformer``).

    ``state`` is the module's state dict when the caller has it already (renamed, never copied: the
    tensors keep their identity).
    """
    if state is None:
        state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    if name == "transformer":
        from harness.convert.mmdit import transformer_to_original

        return transformer_to_original(module, state)
    if name == "unet":
        return unet_to_ldm(state, dict(module.config))
    if name == "vae":
        return vae_to_ldm(state, dict(module.config))
    if name == "text_encoder":
        return text_encoder_to_ldm(state)
    raise UnmappedKeys(f"no single-file layout for component {name!r} (unet, vae, text_encoder, transformer)")
