"""A quick check of trained shapes-world models on held-out captions (written into train.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.world.models import IMAGE_PX
from harness.world.oracle import adherence
from harness.world.scene import random_scene, render_batch


def held_out_captions(count: int, seed: int = 12345) -> list[str]:
    captions: list[str] = []
    index = 0
    while len(captions) < count:
        scene = random_scene(seed + index, held_out=True)
        index += 1
        if " and " in scene.caption() and scene.caption() not in captions:
            captions.append(scene.caption())
    return captions


def generate(
    folder: Path, captions: list[str], device: str, steps: int = 20, guidance: float = 5.0, **call: Any
) -> np.ndarray:
    """uint8 images of ``captions`` (seeds 0..n-1) from the pipeline in ``folder``, loaded with plain defaults."""
    return _to_uint8(_sample(folder, captions, device, steps, guidance, **call).images)


def _sample(folder: Path, captions: list[str], device: str, steps: int, guidance: float, **call: Any) -> Any:
    """The output of the pipeline in ``folder`` (float32, offline) on ``captions``, seeds 0..n-1, as numpy."""
    import torch
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32, local_files_only=True).to(device)
    pipe.set_progress_bar_config(disable=True)
    generators = [torch.Generator("cpu").manual_seed(i) for i in range(len(captions))]
    with torch.no_grad():
        return pipe(
            prompt=captions,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generators,
            output_type="np",
            height=IMAGE_PX,
            width=IMAGE_PX,
            **call,
        )


def _to_uint8(values: Any) -> np.ndarray:
    return (np.clip(np.asarray(values), 0, 1) * 255).round().astype(np.uint8)


def scores(evaluator: Path, images: np.ndarray, captions: list[str]) -> dict[str, float]:
    """Mean adherence and CLIP score of generated images against their captions."""
    return {
        "adherence": float(np.mean([adherence(i, c) for i, c in zip(images, captions, strict=True)])),
        "clip_score": float(clip_scores(evaluator, images, captions).mean()),
    }


def clip_scores(folder: Path, images: np.ndarray, captions: list[str]) -> np.ndarray:
    from harness.metrics.clip_model import load_clip

    clip = load_clip({"model": f"local-dir:{folder}", "pretrained": None})
    return np.asarray((100.0 * (clip.encode_images(list(images)) * clip.encode_texts(captions)).sum(-1)).tolist())


def evaluate(out: Path, device: str, count: int = 64) -> dict[str, Any]:
    captions = held_out_captions(count)
    real = render_batch([_scene_for(c) for c in captions], device=device)
    results: dict[str, Any] = {"held_out_captions": count}
    shuffled = captions[1:] + captions[:1]
    evaluator = out / "evaluator"
    results["real_renders"] = {
        "adherence": float(np.mean([adherence(i, c) for i, c in zip(real, captions, strict=True)])),
        "clip_score": float(clip_scores(evaluator, real, captions).mean()),
        "clip_score_shuffled_captions": float(clip_scores(evaluator, real, shuffled).mean()),
    }
    for name in ("generator", "flawed_generator"):
        if not (out / name / "model_index.json").is_file():
            continue
        results[name] = scores(evaluator, generate(out / name, captions, device), captions)
    return results


def _scene_for(caption: str) -> Any:
    from harness.world.scene import scene_from_caption

    return scene_from_caption(caption, np.random.default_rng(0))


def motion_captions(count: int) -> list[str]:
    """``count`` held-out motion captions: the held-out split in its fixed order, repeated (with other seeds)."""
    from harness.world.motion import held_out_motion_captions

    held = held_out_motion_captions()
    return [held[index % len(held)] for index in range(count)]


def generate_clips(
    folder: Path, captions: list[str], device: str, steps: int, guidance: float, **call: Any
) -> np.ndarray:
    """uint8 clips (N, F, H, W, 3) of ``captions`` (seeds 0..n-1) from the video pipeline in ``folder``."""
    return _to_uint8(_sample(folder, captions, device, steps, guidance, **call).frames)


def motion_scores(evaluator: Path, clips: np.ndarray, captions: list[str]) -> dict[str, float]:
    """Mean motion adherence of clips (N, F, H, W, 3), and the CLIP score of each middle frame against the still
    caption of that moment (the shape crosses the centre there: "a red circle in the center")."""
    from harness.world.motion import parse_motion_caption
    from harness.world.motion_oracle import motion_adherence

    stills = []
    for caption in captions:
        parsed = parse_motion_caption(caption)
        if parsed is None:
            raise ValueError(f"not a motion caption: {caption!r}")
        stills.append(f"a {parsed[0]} {parsed[1]} in the center")
    middle = clips[:, clips.shape[1] // 2]
    return {
        "motion_adherence": float(
            np.mean([motion_adherence(list(c), t) for c, t in zip(clips, captions, strict=True)])
        ),
        "clip_score": float(clip_scores(evaluator, middle, stills).mean()),
    }


def real_motion_clips(captions: list[str], seed: int = 12345) -> np.ndarray:
    """Renders of ``captions`` (the moving world's own clips), uint8 (N, F, H, W, 3)."""
    from harness.world.motion import moving_from_caption, render_clips

    rng = np.random.default_rng(seed)
    return np.asarray(render_clips([moving_from_caption(caption, rng) for caption in captions]))
