"""Write a full-size SD1.5-architecture pipeline with random weights (seeded) to a folder.

The GPU benchmarks need SD1.5's real shapes (860M-parameter UNet, 84M VAE, 123M CLIP
text encoder); the weights are random, so timings and memory are real while the
images mean nothing. Usage: python benchmarks/gpu/make_sd15.py /tmp/sd15-random
"""

import sys
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from harness.pipelines.sd import assemble_sd, sd15_scheduler
from harness.pipelines.tokenizers import byte_clip_tokenizer


def main(out: Path) -> None:
    start = time.perf_counter()
    torch.manual_seed(0)
    tokenizer = byte_clip_tokenizer(77)
    unet = UNet2DConditionModel(
        sample_size=64,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
        scaling_factor=0.18215,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=768,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    pipe = assemble_sd(
        {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": sd15_scheduler()}
    )
    pipe.save_pretrained(out)
    params = {
        name: sum(p.numel() for p in module.parameters()) / 1e6
        for name, module in (("unet", unet), ("vae", vae), ("text_encoder", text_encoder))
    }
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s; parameters (M): {params}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
