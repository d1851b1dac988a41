"""Export to the original single-file layout and import with diffusers: exact in fp32; the audit names dropped keys."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from harness.convert.ldm import UNET_PREFIX, UnmappedKeys, component_to_ldm, unet_to_ldm
from harness.kinds.single_file.audit import audit_checkpoint
from harness.pipelines.sd import build_tiny_sd


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_sd()


@pytest.mark.parametrize("component", ["unet", "vae"])
def test_export_import_round_trip_is_exact(tiny, tmp_path, component):
    module = tiny.components[component]
    checkpoint = component_to_ldm(component, module)
    save_file(checkpoint, str(tmp_path / "model.safetensors"))
    module.save_config(tmp_path / "config")
    loaded = type(module).from_single_file(
        str(tmp_path / "model.safetensors"),
        config=str(tmp_path / "config"),
        local_files_only=True,
        torch_dtype=torch.float32,
    )
    original, reloaded = module.state_dict(), loaded.state_dict()
    assert original.keys() == reloaded.keys()
    for key in original:
        assert torch.equal(original[key], reloaded[key]), key


def test_known_ldm_names(tiny):
    keys = component_to_ldm("unet", tiny.unet)
    assert f"{UNET_PREFIX}time_embed.0.weight" in keys and f"{UNET_PREFIX}input_blocks.0.0.weight" in keys
    assert f"{UNET_PREFIX}input_blocks.1.0.in_layers.2.weight" in keys  # down 0, resnet 0, conv1
    assert f"{UNET_PREFIX}middle_block.1.proj_in.weight" in keys
    vae = component_to_ldm("vae", tiny.vae)
    assert "first_stage_model.decoder.up.1.block.0.conv1.weight" in vae  # decoder blocks reversed
    assert vae["first_stage_model.encoder.mid.attn_1.q.weight"].dim() == 4  # 1x1 conv in the original layout


def test_audit_names_a_deliberately_dropped_key(tiny):
    checkpoint = component_to_ldm("unet", tiny.unet)
    del checkpoint[f"{UNET_PREFIX}output_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"]
    audit = audit_checkpoint("unet", type(tiny.unet), tiny.unet.config, checkpoint)
    assert not audit.ok
    assert audit.missing == ("up_blocks.0.attentions.2.transformer_blocks.0.attn2.to_k.weight",)
    assert "1 missing: up_blocks.0.attentions.2.transformer_blocks.0.attn2.to_k.weight" in audit.describe()


def test_audit_finds_shape_mismatches(tiny):
    checkpoint = component_to_ldm("vae", tiny.vae)
    checkpoint["first_stage_model.post_quant_conv.weight"] = torch.zeros(4, 4, 3, 3)
    audit = audit_checkpoint("vae", type(tiny.vae), tiny.vae.config, checkpoint)
    assert audit.mismatched and audit.mismatched[0][0] == "post_quant_conv.weight"


def test_lcm_unet_cond_proj_is_dropped_by_the_diffusers_converter():
    lcm = build_tiny_sd(time_cond_proj_dim=32)
    checkpoint = component_to_ldm("unet", lcm.unet)
    assert f"{UNET_PREFIX}time_embed.cond_proj.weight" in checkpoint  # the exporter keeps it...
    audit = audit_checkpoint("unet", type(lcm.unet), lcm.unet.config, checkpoint)
    assert audit.missing == ("time_embedding.cond_proj.weight",)  # ...and the importer drops it


def test_unknown_layout_keys_are_refused(tiny):
    state = dict(tiny.unet.state_dict())
    state["brand_new_layer.weight"] = torch.zeros(1)
    with pytest.raises(UnmappedKeys, match="brand_new_layer.weight"):
        unet_to_ldm(state, dict(tiny.unet.config))
