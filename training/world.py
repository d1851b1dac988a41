"""Training the shapes world: VAE, then generator, flawed generator and evaluator (in parallel on a GPU).

``python -m training train --out DIR`` runs everything from seeds. Every part is
step-counted (``--*-steps``), with a wall-clock cap as a safety net; what actually ran
(steps, seconds, losses) is written to ``DIR/train.json``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.world.models import assemble_pipeline, build_evaluator, build_generator, evaluator_config
from harness.world.scene import (
    BACKGROUND,
    COLORS,
    PHRASES,
    POSITIONS,
    SHAPES,
    parse_caption,
    random_scene,
    render_batch,
)
from harness.world.tokenizer import shapes_tokenizer

CAPTION_DROPOUT = 0.1
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Part:
    """How long one part trains."""

    steps: int
    batch: int
    lr: float
    max_seconds: float


@dataclass
class Plan:
    out: Path
    device: str = "cuda"
    seed: int = 0
    dataset: int = 60000
    vae: Part = Part(2500, 128, 1e-3, 120)
    generator: Part = Part(3000, 256, 4e-4, 330)
    flawed: Part = Part(1500, 256, 4e-4, 200)
    evaluator: Part = Part(2500, 512, 5e-4, 200)


def dataset(count: int, seed: int, device: str) -> tuple[Any, list[str]]:
    """Training renders (uint8 NCHW on ``device``) and captions; held-out captions never appear."""
    import torch

    scenes = [random_scene(seed * 10_000_000 + index, held_out=False) for index in range(count)]
    images = render_batch(scenes, device=device, as_tensor=True)
    return ((images + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8), [scene.caption() for scene in scenes]


def clip_dataset(count: int, seed: int, device: str) -> tuple[Any, list[str]]:
    """Training clips of the moving shapes world (uint8 (N, 3, F, H, W) on ``device``) and their captions."""
    import torch

    from harness.world.motion import random_moving, render_clips

    shapes = [random_moving(seed * 10_000_000 + index) for index in range(count)]
    clips = torch.cat(
        [
            ((render_clips(shapes[i : i + 256], device=device, as_tensor=True) + 1.0) * 127.5)
            .round()
            .clamp(0, 255)
            .to(torch.uint8)
            for i in range(0, count, 256)
        ]
    )
    return clips, [shape.caption() for shape in shapes]


def _cosine(step: int, total: int, warmup: int = 100) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


PROBE_WARMUP = 10  # steps before the probe's clock starts: a GPU's first steps (allocation, kernel choice) are slow
PROBE_STEPS = 30
MAX_SKIPPED = 20


def _loop(part: Part, parameters: list[Any], step_fn: Any, label: str) -> dict[str, Any]:
    """AdamW with warm-up and cosine decay over ``part.steps``.

    ``part.steps == 0`` fits the count to the wall-clock budget: 30 steps after the first
    10 are timed and the total set to what ``max_seconds`` allows (logged, so a re-run can
    pass it explicitly and train the same steps). The first steps are left out of the
    timing because on a GPU they are slow: timed from step 0, an H100 run fitted half the
    steps its budget held (0.27 s a step probed, 0.15 s run). The warm-up outlasts the
    probe, so the schedule is the same as if the count had been given.
    """
    import torch

    total = [part.steps or 10**9]
    optimizer = torch.optim.AdamW(parameters, lr=part.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _cosine(s, total[0]))
    start, losses, step = time.perf_counter(), [], 0
    probe_start = start
    skipped = 0
    while step < total[0]:
        loss = step_fn(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        if not (torch.isfinite(loss) and torch.isfinite(norm)):
            # one bad batch must not poison every weight: skip it, and give up if it keeps happening
            skipped += 1
            if skipped > MAX_SKIPPED:
                raise FloatingPointError(f"[{label}] {skipped} steps with a non-finite loss or gradient")
            continue
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        step += 1
        now = time.perf_counter()
        elapsed = now - start
        if not part.steps and step == PROBE_WARMUP:
            probe_start = now
        if not part.steps and step == PROBE_WARMUP + PROBE_STEPS:
            per_step = (now - probe_start) / PROBE_STEPS
            total[0] = max(step + 1, step + int((part.max_seconds - elapsed) / per_step))
            print(f"[{label}] {per_step:.3f} s per step: {total[0]} steps fit {part.max_seconds:.0f} s", flush=True)
        if step % 250 == 0:
            print(f"[{label}] step {step} loss {np.mean(losses[-50:]):.4f} {elapsed:.0f}s", flush=True)
        if elapsed > part.max_seconds * (1.05 if not part.steps else 1.0):
            break
    return {
        "steps": step,
        # None: stopped before the probe ended
        "planned_steps": total[0] if part.steps or step >= PROBE_WARMUP + PROBE_STEPS else None,
        "skipped_steps": skipped,
        "seconds": round(time.perf_counter() - start, 1),
        "first_loss": round(float(np.mean(losses[:20])), 5),
        "final_loss": round(float(np.mean(losses[-50:])), 5),
    }


def _autocast(device: str) -> Any:
    import torch

    return (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.startswith("cuda")
        else torch.autocast("cpu", enabled=False)
    )


def train_vae(plan: Plan) -> dict[str, Any]:
    components = build_generator(shapes_tokenizer(), seed=plan.seed)
    images, _ = dataset(plan.dataset, plan.seed, plan.device)
    return fit_vae(components["vae"], images, plan.vae, plan.out / "_vae", plan.seed)


def encode_mean(vae: Any, x: Any) -> Any:
    """The latents of ``x``: the posterior mean of a VAE, or a deterministic autoencoder's (DC-AE) latent."""
    encoded = vae.encode(x)
    return encoded.latent_dist.mean if hasattr(encoded, "latent_dist") else encoded.latent


def object_mask(images: Any) -> Any:
    """Pixels of a uint8 NCHW batch (or N, C, F, H, W clips) that are not background (any channel more than 8 levels off mid-grey)."""
    import torch

    grey = torch.tensor(BACKGROUND, device=images.device).reshape(1, 3, *[1] * (images.dim() - 2))
    return ((images.int() - grey).abs() > 8).any(dim=1, keepdim=True)


def colour_psnr(images: Any, recon: Any) -> dict[str, float]:
    """Reconstruction PSNR (dB) over the pixels of each world colour (within 24 levels of it)."""
    import torch

    out: dict[str, float] = {}
    for name, rgb in COLORS.items():
        target = torch.tensor(rgb, device=images.device).reshape(1, 3, *[1] * (images.dim() - 2))
        mask = ((images.int() - target).abs() <= 24).all(dim=1, keepdim=True).expand_as(recon)
        if mask.any():
            error = ((recon - (images.float() / 127.5 - 1.0)) / 2)[mask].pow(2).mean().item()
            out[name] = round(10 * math.log10(1 / max(error, 1e-10)), 2)
    return out


def fit_vae(
    vae: Any, images: Any, part: Part, folder: Path, seed: int, shift: bool = False, object_weight: float = 1.0
) -> dict[str, Any]:
    """Train ``vae`` on uint8 renders (MSE + a whisper of KL), set its latent scale (and shift), save it to ``folder``.

    ``object_weight`` multiplies the squared error of object pixels (the background is most
    of every image, and an autoencoder can score well while losing small objects' colours).
    """
    import torch

    device = images.device
    vae = vae.to(device).train()
    generator = torch.Generator(device).manual_seed(seed)

    def error(recon: Any, x: Any, pick: Any) -> Any:
        weight = 1.0 + (object_weight - 1.0) * object_mask(images[pick]).float()
        return (weight * (recon.float() - x) ** 2).mean() / weight.mean()

    def step(index: int) -> Any:
        pick = torch.randint(0, len(images), (part.batch,), device=device, generator=generator)
        x = images[pick].float() / 127.5 - 1.0
        with _autocast(str(device)):
            encoded = vae.encode(x)
            if not hasattr(encoded, "latent_dist"):  # a deterministic autoencoder (Sana's DC-AE): no KL term
                return error(vae.decode(encoded.latent).sample, x, pick)
            posterior = encoded.latent_dist
            recon = vae.decode(posterior.sample(generator=generator)).sample
        return error(recon, x, pick) + 1e-6 * posterior.kl().mean()

    log = _loop(part, list(vae.parameters()), step, folder.name.strip("_"))
    vae.eval()
    frames = images.shape[2] if images.dim() == 5 else 1
    count, chunk = max(64, 2048 // frames), max(8, 256 // frames)
    with torch.no_grad():
        sample = images[:count].float() / 127.5 - 1.0
        latents = torch.cat([encode_mean(vae, sample[i : i + chunk]) for i in range(0, len(sample), chunk)])
        recon = torch.cat([vae.decode(latents[i : i + chunk]).sample for i in range(0, len(latents), chunk)]).clamp(
            -1, 1
        )
        mse = torch.mean(((recon - sample) / 2) ** 2).item()
        colours = colour_psnr(images[:count], recon)
    center = float(latents.mean()) if shift else 0.0
    if "latents_mean" in vae.config:  # Wan's VAE: a mean and std per channel, which its pipeline undoes
        per_channel = latents.transpose(0, 1).reshape(latents.shape[1], -1)
        vae.register_to_config(
            latents_mean=[round(float(v), 5) for v in per_channel.mean(dim=1)],
            latents_std=[round(float(v), 5) for v in per_channel.std(dim=1)],
        )
    else:
        vae.register_to_config(scaling_factor=float(1.0 / (latents - center).std()))
    if shift:
        vae.register_to_config(shift_factor=center)
    vae.save_pretrained(folder)
    log.update(
        reconstruction_psnr_db=round(10 * math.log10(1 / mse), 2),
        colour_psnr_db=colours,
        object_weight=object_weight,
        scaling_factor=round(float(vae.config.get("scaling_factor", 1.0)), 4),
        shift_factor=round(center, 4),
    )
    return log


def train_generator(plan: Plan, schedule: str, part: Part, name: str) -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler

    tokenizer = shapes_tokenizer()
    images, captions = dataset(plan.dataset, plan.seed, plan.device)
    components = build_generator(tokenizer, schedule=schedule, seed=plan.seed + (1 if schedule == "sd15" else 0))
    vae = AutoencoderKL.from_pretrained(plan.out / "_vae").to(plan.device).eval()
    with torch.no_grad():
        latents = (
            torch.cat(
                [
                    vae.encode(images[i : i + 512].float() / 127.5 - 1.0).latent_dist.mean
                    for i in range(0, len(images), 512)
                ]
            )
            * vae.config.scaling_factor
        )
    tokens = tokenizer(
        captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(plan.device)
    empty = tokenizer(
        [""], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt"
    ).input_ids.to(plan.device)
    unet = components["unet"].to(plan.device).train()
    text_encoder = components["text_encoder"].to(plan.device).train()
    noise_scheduler = DDPMScheduler.from_config(components["scheduler"].config)
    alphas = noise_scheduler.alphas_cumprod.to(plan.device)
    snr = alphas / (1 - alphas).clamp(min=1e-8)
    generator = torch.Generator(plan.device).manual_seed(plan.seed + 7)

    def step(index: int) -> Any:
        pick = torch.randint(0, len(latents), (part.batch,), device=plan.device, generator=generator)
        x0 = latents[pick]
        ids = torch.where(
            (torch.rand(part.batch, device=plan.device, generator=generator) < CAPTION_DROPOUT).unsqueeze(1),
            empty,
            tokens[pick],
        )
        noise = torch.randn(x0.shape, device=plan.device, generator=generator)
        t = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (part.batch,), device=plan.device, generator=generator
        )
        noisy = noise_scheduler.add_noise(x0, noise, t)
        with _autocast(plan.device):
            states = text_encoder(ids).last_hidden_state
            prediction = unet(noisy, t, states).sample.float()
        if schedule == "vpred_zsnr":
            target = noise_scheduler.get_velocity(x0, noise, t)
            weight = (torch.clamp(snr[t], max=5.0) + 1.0) / (snr[t] + 1.0)  # min-SNR for v-prediction
            return (weight * ((prediction - target) ** 2).mean(dim=(1, 2, 3))).mean()
        return torch.nn.functional.mse_loss(prediction, noise)

    log = _loop(part, list(unet.parameters()) + list(text_encoder.parameters()), step, name)
    components.update(unet=unet.eval(), text_encoder=text_encoder.eval(), vae=vae)
    pipe = assemble_pipeline(components).to("cpu").to(torch.float16)
    pipe.save_pretrained(plan.out / name)
    return log


def hard_negative(caption: str, rng: np.random.Generator) -> str:
    """The caption with one attribute changed, or two objects' attributes swapped."""
    objects = [list(obj) for obj in parse_caption(caption)]
    for _ in range(20):
        changed = [list(obj) for obj in objects]
        choice = rng.integers(0, 5 if len(objects) == 2 else 3)
        index = int(rng.integers(0, len(objects)))
        if choice == 0:
            changed[index][0] = str(rng.choice([c for c in COLORS if c not in {o[0] for o in objects}]))
        elif choice == 1:
            changed[index][1] = str(rng.choice([s for s in SHAPES if s != objects[index][1]]))
        elif choice == 2:
            changed[index][2] = str(rng.choice([p for p in POSITIONS if p not in {o[2] for o in objects}]))
        else:
            field = int(rng.integers(0, 3))
            changed[0][field], changed[1][field] = changed[1][field], changed[0][field]
        text = " and ".join(f"a {c} {s} {PHRASES[p]}" for c, s, p in changed)
        if text != caption:
            return text
    return caption


def normalise(images: Any) -> Any:
    import torch

    mean = torch.tensor(CLIP_MEAN, device=images.device).reshape(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=images.device).reshape(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def train_evaluator(plan: Plan) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    tokenizer = shapes_tokenizer()
    images, captions = dataset(plan.dataset, plan.seed + 1, plan.device)
    model = build_evaluator(tokenizer, seed=plan.seed).to(plan.device).train()
    rng = np.random.default_rng(plan.seed)
    generator = torch.Generator(plan.device).manual_seed(plan.seed + 11)

    def encode(texts: list[str]) -> Any:
        return tokenizer(
            texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids.to(plan.device)

    def step(index: int) -> Any:
        pick = torch.randint(0, len(images), (plan.evaluator.batch,), device=plan.device, generator=generator)
        chosen = [captions[i] for i in pick.tolist()]
        negatives = [hard_negative(c, rng) for c in chosen]
        with _autocast(plan.device):
            image_features = F.normalize(model.encode_image(normalise(images[pick])), dim=-1)
            text_features = F.normalize(model.encode_text(encode(chosen + negatives)), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * image_features.float() @ text_features.float().t()  # B x 2B: true captions and hard negatives
        labels = torch.arange(len(chosen), device=plan.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits[:, : len(chosen)].t(), labels)) / 2

    log = _loop(plan.evaluator, list(model.parameters()), step, "evaluator")
    save_evaluator(model.eval(), tokenizer, plan.out / "evaluator")
    return log


def save_evaluator(model: Any, tokenizer: Any, folder: Path) -> None:
    """An open_clip ``local-dir:`` folder: config, fp16 weights and the tokenizer files."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model_cfg": evaluator_config(len(tokenizer), tokenizer.model_max_length),
        "preprocess_cfg": {
            "mean": list(CLIP_MEAN),
            "std": list(CLIP_STD),
            "interpolation": "bicubic",
            "resize_mode": "shortest",
        },
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=1))
    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    tokenizer.save_pretrained(folder)


def run_part(plan: Plan, part: str) -> dict[str, Any]:
    if part == "vae":
        return train_vae(plan)
    if part == "generator":
        return train_generator(plan, "vpred_zsnr", plan.generator, "generator")
    if part == "flawed":
        return train_generator(plan, "sd15", plan.flawed, "flawed_generator")
    if part == "evaluator":
        return train_evaluator(plan)
    raise ValueError(part)


def train_all(plan: Plan, parallel: bool = True) -> dict[str, Any]:
    """VAE first; then generator, flawed generator and evaluator, as parallel processes on a GPU."""
    plan.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    logs: dict[str, Any] = {"plan": json.loads(json.dumps(asdict(plan), default=str)), "vae": run_part(plan, "vae")}
    parts = ["generator", "flawed", "evaluator"]
    if parallel:
        processes = {
            part: subprocess.Popen(
                [sys.executable, "-m", "training", "_part", part, json.dumps(logs["plan"])], env=os.environ.copy()
            )
            for part in parts
        }
        for part, process in processes.items():
            if process.wait() != 0:
                raise RuntimeError(f"training part {part!r} failed with exit code {process.returncode}")
            logs[part] = json.loads((plan.out / f"_{part}.json").read_text())
    else:
        for part in parts:
            logs[part] = run_part(plan, part)
    logs["total_seconds"] = round(time.perf_counter() - start, 1)
    from harness.world.evaluate import evaluate

    logs["evaluation"] = evaluate(plan.out, plan.device)
    (plan.out / "train.json").write_text(json.dumps(logs, indent=1))
    return logs


def plan_from_json(text: str) -> Plan:
    data = json.loads(text)
    parts = {key: Part(**data[key]) for key in ("vae", "generator", "flawed", "evaluator")}
    return Plan(out=Path(data["out"]), device=data["device"], seed=data["seed"], dataset=data["dataset"], **parts)
