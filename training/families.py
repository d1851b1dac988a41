"""Training the shapes world in the FLUX.1, SD3 and SDXL architectures.

``python -m training train-families --out DIR`` trains, from seeds: the 16-channel
VAE (FLUX and SD3 share it), then each architecture's denoiser and text encoders in
its own process (on a GPU they share the device). Step counts are fitted to each
part's time budget after 30 timed steps unless given (``--steps``); what ran is written
to ``DIR/families.json`` (steps, seconds, losses, and held-out adherence and CLIP score),
so passing the logged counts back re-trains the same steps.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.world.families import world_archs
from harness.world.families.base import CAPTION_DROPOUT, WorldArch, build_vae16
from harness.world.families.sana import build_dcae
from harness.world.families.wan import build_wan_vae
from training.world import Part, _autocast, _loop, clip_dataset, dataset, encode_mean, fit_vae

# the autoencoders trained here, by WorldArch.vae: (builder, whether a latent shift is fitted, object weight)
# (the DC-AE weights object pixels 10x: at factor 8 with uniform weights it kept the background and lost the objects,
# 12 dB on object pixels after 240 CPU seconds)
AUTOENCODERS: dict[str, tuple[Any, bool, float]] = {
    "vae16": (build_vae16, True, 1.0),
    "dcae": (build_dcae, False, 10.0),
    # Wan's video VAE, on clips: weighted as the DC-AE (an earlier video world's VAE lost most colours unweighted)
    "wan_vae": (build_wan_vae, False, 10.0),
}

EVALUATION_STEPS = 8  # what the family suites sample with


@dataclass
class FamilyPlan:
    out: Path
    device: str = "cuda"
    seed: int = 0
    dataset: int = 60000
    vae: Part = field(default_factory=lambda: Part(0, 128, 1e-3, 50))
    archs: dict[str, Part] = field(default_factory=lambda: {name: Part(0, 256, 4e-4, 330) for name in world_archs()})
    evaluation_captions: int = 64
    resume: Path | None = None  # a folder of earlier pipelines (<arch>/): continue training from their weights
    # keep the text encoders as they are and train the denoiser alone on their outputs, computed once per caption
    # (as Sana and PixArt-Sigma train on frozen pretrained encoders)
    frozen_text: bool = False
    vae_continue: bool = False  # an autoencoder already in out/_<kind>/ trains further (its step count: vae.steps)


def plan_to_json(plan: FamilyPlan) -> str:
    return json.dumps(asdict(plan), default=str)


def plan_from_json(text: str) -> FamilyPlan:
    data = json.loads(text)
    return FamilyPlan(
        out=Path(data["out"]),
        device=data["device"],
        seed=data["seed"],
        dataset=data["dataset"],
        vae=Part(**data["vae"]),
        archs={name: Part(**part) for name, part in data["archs"].items()},
        evaluation_captions=data["evaluation_captions"],
        resume=Path(data["resume"]) if data.get("resume") else None,
        frozen_text=bool(data.get("frozen_text", False)),
        vae_continue=bool(data.get("vae_continue", False)),
    )


def load_autoencoder(folder: Path) -> Any:
    """A trained autoencoder folder (any of ``AUTOENCODERS``), float32; the class comes from its config."""
    import diffusers
    import torch

    name = json.loads((folder / "config.json").read_text())["_class_name"]
    return getattr(diffusers, name).from_pretrained(folder, torch_dtype=torch.float32)


def _vae_for(plan: FamilyPlan, arch: WorldArch) -> Any:
    if arch.vae in AUTOENCODERS:
        return load_autoencoder(plan.out / f"_{arch.vae}")
    from harness.world.assets import generator_dir, load_generator

    return copy.deepcopy(load_generator(generator_dir()).vae)  # type: ignore[attr-defined]


def training_data(arch: WorldArch, count: int, seed: int, device: str) -> tuple[Any, list[str]]:
    """The renders an architecture trains on: still images, or clips of the moving world for video ones."""
    return (clip_dataset if arch.frames > 1 else dataset)(count, seed, device)


def _encode(vae: Any, images: Any, arch: WorldArch) -> Any:
    import torch

    chunk = max(16, 512 // arch.frames)
    with torch.no_grad():
        latents = torch.cat(
            [encode_mean(vae, images[i : i + chunk].float() / 127.5 - 1.0) for i in range(0, len(images), chunk)]
        )
    return arch.normalise(vae, latents)


class CaptionTable:
    """An architecture's conditioning of every distinct caption, computed once by its frozen text encoders."""

    def __init__(self, arch: WorldArch, pipe: Any, captions: list[str], device: str, batch: int = 256) -> None:
        import torch

        distinct = sorted(set(captions))
        self.row = {caption: i for i, caption in enumerate(distinct)}
        with torch.no_grad():
            parts = [
                arch.conditioning(
                    pipe, distinct[i : i + batch], self._keep(len(distinct[i : i + batch]), device), device
                )
                for i in range(0, len(distinct), batch)
            ]
            self.table = tuple(torch.cat(column) for column in zip(*parts, strict=True))
            self.empty = arch.conditioning(pipe, distinct[:1], ~self._keep(1, device), device)

    @staticmethod
    def _keep(count: int, device: str) -> Any:
        import torch

        return torch.zeros(count, dtype=torch.bool, device=device)

    def __len__(self) -> int:
        return len(self.row)

    def lookup(self, captions: list[str], drop: Any) -> tuple[Any, ...]:
        """The rows of ``captions``; dropped ones get the unconditional input, as :meth:`WorldArch.conditioning` does."""
        import torch

        index = torch.tensor([self.row[caption] for caption in captions], device=drop.device)
        return tuple(
            torch.where(drop.reshape(-1, *[1] * (column.dim() - 1)), empty, column[index])
            for column, empty in zip(self.table, self.empty, strict=True)
        )


def train_arch(plan: FamilyPlan, name: str) -> dict[str, Any]:
    """Train one architecture's denoiser and text encoders; save the pipeline to ``out/NAME``; evaluate it."""
    import torch

    from harness.world.assets import generator_dir, load_generator

    arch = world_archs()[name]
    part = plan.archs[name]
    if not arch.bf16_autocast:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if plan.resume is not None and (plan.resume / name / "model_index.json").is_file():
        from diffusers import DiffusionPipeline

        pipe = DiffusionPipeline.from_pretrained(plan.resume / name, torch_dtype=torch.float32).to(plan.device)
    else:
        shapes: Any = load_generator(generator_dir())
        pipe = arch.build(_vae_for(plan, arch), plan.seed, shapes.text_encoder).to(plan.device)
    pipe.set_progress_bar_config(disable=True)
    images, captions = training_data(arch, plan.dataset, plan.seed, plan.device)
    latents = _encode(pipe.vae.eval(), images, arch)
    del images
    generator = torch.Generator(plan.device).manual_seed(plan.seed + 7)
    precision = (lambda: _autocast(plan.device)) if arch.bf16_autocast else contextlib.nullcontext
    modules = arch.trainable(pipe)
    table: CaptionTable | None = None
    if plan.frozen_text:
        for module in modules:
            module.eval().requires_grad_(False)
        modules = [arch.denoiser(pipe).requires_grad_(True)]
        table = CaptionTable(arch, pipe, captions, plan.device)
    for module in modules:
        module.train()

    def pick(batch: int) -> tuple[Any, list[str]]:
        index = torch.randint(0, len(latents), (batch,), device=plan.device, generator=generator)
        return latents[index], [captions[i] for i in index.tolist()]

    def step(index: int) -> Any:
        x0, chosen = pick(part.batch)
        drop = torch.rand(part.batch, device=plan.device, generator=generator) < CAPTION_DROPOUT
        with precision():
            if table is not None:
                return arch.conditioned_loss(pipe, x0, table.lookup(chosen, drop), generator)
            return arch.loss(pipe, x0, chosen, drop, generator)

    distill = arch.distill_fraction
    first = Part(
        part.steps and round(part.steps * (1 - distill)), part.batch, part.lr, part.max_seconds * (1 - distill)
    )
    log: dict[str, Any] = {"train": _loop(first, [p for m in modules for p in m.parameters()], step, name)}
    if distill:
        teacher = copy.deepcopy(arch.denoiser(pipe)).eval().requires_grad_(False)
        for module in modules:
            if module is not arch.denoiser(pipe):
                module.eval().requires_grad_(False)

        def distill_step(index: int) -> Any:
            x0, chosen = pick(part.batch)
            with precision():
                return arch.distill_loss(pipe, teacher, x0, chosen, generator)

        second = Part(
            part.steps - first.steps if part.steps else 0, part.batch, part.lr / 2, part.max_seconds * distill
        )
        log["distill"] = _loop(second, list(arch.denoiser(pipe).parameters()), distill_step, f"{name}-distill")
        del teacher
    for module in modules:
        module.eval()
    log["finish"] = save(pipe, arch, plan.out / name)
    log["evaluation"] = evaluate_arch(plan, arch)
    return log


def save(pipe: Any, arch: WorldArch, folder: Path) -> dict[str, Any]:
    """The pipeline as a diffusers folder in the architecture's storage dtype, after its ``finish``
    (SDXL: its VAE made to overflow fp16); returns what ``finish`` logged."""
    import torch

    from harness.pipelines.sdxl import make_vae_overflow_fp16

    pipe = pipe.to("cpu")
    finished = arch.finish(pipe)
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):  # a float32 component is never rounded through the storage dtype
            component.to(torch.float32 if name in arch.stored_float32 else getattr(torch, arch.save_dtype))
    if arch.name == "sdxl":
        make_vae_overflow_fp16(pipe.vae)
    pipe.save_pretrained(folder)
    declare_float32(folder)
    return finished


def declare_float32(folder: Path) -> None:
    """Mark the text encoders' configs float32, as the shapes world's are.

    Weights are stored in half precision to keep the package small. diffusers loads its own
    models in float32 unless told otherwise, but transformers loads the dtype a config
    names: with half-precision configs a pipeline loaded with no ``torch_dtype`` mixes
    dtypes and fails at its first matrix product.
    """
    for config in sorted(folder.glob("text_encoder*/config.json")):
        data = json.loads(config.read_text())
        data["dtype"] = "float32"
        config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def evaluate_arch(plan: FamilyPlan, arch: WorldArch) -> dict[str, Any]:
    """Held-out adherence and CLIP score of the saved pipeline, loaded as a user would, at the suites' step count."""
    from harness.world.assets import evaluator_dir
    from harness.world.evaluate import generate, held_out_captions, scores

    if arch.frames > 1:
        return evaluate_clips(plan, arch)
    captions = held_out_captions(plan.evaluation_captions)
    images = generate(
        plan.out / arch.name, captions, plan.device, EVALUATION_STEPS, arch.guidance, **arch.sample_kwargs()
    )
    return {"held_out_captions": len(captions), "steps": EVALUATION_STEPS, **scores(evaluator_dir(), images, captions)}


def evaluate_clips(plan: FamilyPlan, arch: WorldArch) -> dict[str, Any]:
    """A video architecture's held-out motion adherence and middle-frame CLIP score, beside the real renders'."""
    from harness.world.assets import evaluator_dir
    from harness.world.evaluate import generate_clips, motion_captions, motion_scores, real_motion_clips

    captions = motion_captions(plan.evaluation_captions)
    clips = generate_clips(
        plan.out / arch.name, captions, plan.device, EVALUATION_STEPS, arch.guidance, **arch.sample_kwargs()
    )
    return {
        "held_out_captions": len(set(captions)),
        "clips": len(captions),
        "steps": EVALUATION_STEPS,
        **motion_scores(evaluator_dir(), clips, captions),
        "real_renders": motion_scores(evaluator_dir(), real_motion_clips(captions), captions),
    }


def fit_autoencoders(plan: FamilyPlan, kinds: list[str]) -> dict[str, Any]:
    """Train each autoencoder of ``kinds`` into ``out/_<kind>/`` (or reuse, or with ``vae_continue`` train further,
    one already there); their logs by kind."""
    logs: dict[str, Any] = {}
    for kind in kinds:
        folder = plan.out / f"_{kind}"
        trained = (folder / "config.json").is_file()
        if trained and not plan.vae_continue:
            logs[kind] = {"reused": str(folder)}  # a resumed run keeps the latent space it trained in
            continue
        build, shift, weight = AUTOENCODERS[kind]
        # a video architecture's autoencoder trains on clips of the moving shapes world
        clips = any(arch.vae == kind and arch.frames > 1 for arch in world_archs().values())
        images, _ = (clip_dataset if clips else dataset)(plan.dataset, plan.seed, plan.device)
        vae = load_autoencoder(folder) if trained else build(plan.seed)
        logs[kind] = fit_vae(vae, images, plan.vae, folder, plan.seed, shift=shift, object_weight=weight)
        if trained:
            logs[kind]["continued"] = str(folder)
        del images
    return logs


def train_families(plan: FamilyPlan, names: list[str], parallel: bool = True) -> dict[str, Any]:
    """The 16-channel VAE where needed, then each architecture (as parallel processes on a GPU)."""
    plan.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    logs: dict[str, Any] = {"plan": json.loads(plan_to_json(plan))}
    archs = world_archs()
    needed = sorted({archs[name].vae for name in names} & set(AUTOENCODERS))
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def launch(name: str) -> None:
        if parallel:
            command = [sys.executable, "-m", "training", "_family", name, plan_to_json(plan)]
            processes[name] = subprocess.Popen(command, env=os.environ.copy())
        else:
            logs[name] = train_arch(plan, name)

    logs.update(fit_autoencoders(plan, needed))
    # all start together, so each one's step count is fitted while the device is shared as it will be throughout
    for name in names:
        launch(name)
    for name, process in processes.items():
        if process.wait() != 0:
            raise RuntimeError(f"training {name!r} failed with exit code {process.returncode}")
        logs[name] = json.loads((plan.out / f"_{name}.json").read_text())
    logs["total_seconds"] = round(time.perf_counter() - start, 1)
    (plan.out / "families.json").write_text(json.dumps(logs, indent=1))
    return logs
