"""Where the shipped shapes-world weights live (inside the package: harness/world/weights/)."""

from __future__ import annotations

from pathlib import Path

from harness.errors import InputError

WEIGHTS = Path(__file__).resolve().parent / "weights"


def _folder(name: str, marker: str, retrain: str = "train") -> Path:
    folder = WEIGHTS / name
    if not (folder / marker).is_file():
        raise InputError(
            f"the shapes-world weights are missing from {folder} (no {marker}): they ship with the package "
            f"(reinstall it, or retrain with `python -m training {retrain} --out harness/world/weights`)"
        )
    return folder


def generator_dir() -> Path:
    return _folder("generator", "model_index.json")


def flawed_generator_dir() -> Path:
    return _folder("flawed_generator", "model_index.json")


def evaluator_dir() -> Path:
    return _folder("evaluator", "open_clip_config.json")


def world_dir(arch: str) -> Path:
    """The shapes world in another architecture: ``flux``, ``sd3``, ``sdxl``, ``sana``... (a diffusers folder)."""
    return _folder(arch, "model_index.json", f"train-families {arch}")


def load_world(folder: Path) -> object:
    """A world pipeline of any architecture, float32, offline: the class comes from its ``model_index.json``."""
    import torch
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32, local_files_only=True)


def load_generator(folder: Path) -> object:
    """The generator as a plain diffusers ``StableDiffusionPipeline`` (float32, offline)."""
    import torch
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32, local_files_only=True)
