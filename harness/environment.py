"""What machine and libraries a run or a blessing happened on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Sequence
from typing import Any

# what every run and every sample's identity records; a kind adds its own (ConfigKind.packages)
LIBRARIES = ("torch", "diffusers", "transformers", "torchmetrics", "open_clip_torch", "numpy", "gguf", "accelerate")


def library_versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """The installed versions of the core libraries and of ``extra`` distributions (absent ones left out)."""
    versions = {}
    for name in dict.fromkeys((*LIBRARIES, *extra)):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def resolve_device(requested: str) -> str:
    """``auto`` is CUDA when available, else CPU; asking for CUDA without one is an input error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        from harness.errors import InputError

        raise InputError("--device cuda was asked for, but torch sees no CUDA device here")
    return requested


def device_class(device: str) -> str:
    """``cpu: <processor> x N threads`` or ``cuda: <GPU name>``."""
    import torch

    if device.startswith("cuda"):
        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    processor = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu: {processor}, {torch.get_num_threads()} threads"


def git_commit(folder: str = ".") -> str | None:
    """The short commit of the repository the run happens in, if any."""
    import subprocess

    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None if found.returncode == 0 else None


def describe(device: str, packages: Sequence[str] = ()) -> dict[str, Any]:
    """The machine and libraries of a run; ``packages``: the kinds' own distributions, recorded beside the core's."""
    from harness import __version__

    return {
        "git_commit": git_commit(),
        "harness": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "device_class": device_class(device),
        "cpu_count": os.cpu_count(),
        "libraries": library_versions(packages),
    }


def quiet_libraries() -> None:
    """Silence diffusers/transformers advice that would drown the harness's own output.

    Through their environment variables when they are not imported yet: importing them
    only to set a log level cost ~7 s on every run, cached runs that never load a
    pipeline included. A user's own setting of those variables wins.
    """
    import sys
    import warnings

    for variable in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
        os.environ.setdefault(variable, "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "diffusers" in sys.modules:
        diffusers = sys.modules["diffusers"]
        diffusers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.disable_progress_bar()
    if "transformers" in sys.modules:
        transformers = sys.modules["transformers"]
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*safety checker.*")
    warnings.filterwarnings("ignore", message=".*torch_dtype.*deprecated.*")  # diffusers 0.42 renames it to dtype
