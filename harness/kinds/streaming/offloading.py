"""Group offloading applied component by component, and the hazards of diffusers' disk path.

diffusers' ``pipe.enable_group_offload(offload_to_disk_path=...)`` hands one folder to every
component, and names each group's file after the group's module name. Two components with a
module of the same name (SD3's two CLIP text encoders: every layer; LTX's VAE and transformer:
the root group ``""``) then share a file: the second finds it written and loads the first's
tensors (wrong weights, or a shape error). Here each component gets its own folder.

Two hazards remain that the harness cannot mend without changing the model, and names instead:

- **tied parameters at leaf level** (T5's ``shared.weight`` is ``encoder.embed_tokens.weight``):
  each leaf group writes its file when it first offloads, and the first group to do so replaces
  the shared tensor with uninitialised memory before the second writes it;
- **buffers on a component's root module** (LTX's VAE ``latents_mean``/``latents_std``): between
  calls every offloaded tensor holds uninitialised memory, so a pipeline that reads them outside
  the component's forward (LTXPipeline does) computes with garbage.

Group offloading in memory (``offload = "cpu"``) has neither: tensors keep their values there.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from harness.kinds.casting import module_components


def apply_group_offload(pipe: Any, disk_root: str | None, **kwargs: Any) -> dict[str, str]:
    """What ``pipe.enable_group_offload(**kwargs)`` does, with a folder per component under ``disk_root``
    (when offloading to disk). Returns the folders by component."""
    from diffusers.hooks import apply_group_offloading

    folders: dict[str, str] = {}
    for name, module in module_components(pipe).items():
        if disk_root is not None:
            folders[name] = os.path.join(disk_root, name)
            kwargs = {**kwargs, "offload_to_disk_path": folders[name]}
        if hasattr(module, "enable_group_offload"):
            module.enable_group_offload(**kwargs)
        else:
            apply_group_offloading(module=module, **kwargs)
    return folders


def tied_parameters(module: Any) -> list[tuple[str, ...]]:
    """Parameters reachable under more than one name (each tuple: the names of one tensor)."""
    names: dict[int, list[str]] = defaultdict(list)
    for name, parameter in module.named_parameters(remove_duplicate=False):
        names[id(parameter)].append(name)
    return [tuple(found) for found in names.values() if len(found) > 1]


def disk_hazards(pipe: Any, leaf_level: bool) -> list[str]:
    """The known ways diffusers' disk offloading gives wrong values on this pipeline (module docstring)."""
    found = []
    for name, module in module_components(pipe).items():
        if leaf_level:
            for names in tied_parameters(module):
                found.append(
                    f"{name}: tied parameters {' = '.join(names)} sit in separate leaf groups; diffusers writes the "
                    "second group's file after the first released the tensor (uninitialised memory)"
                )
        buffers = [buffer for buffer, _ in module.named_buffers(recurse=False)]
        if buffers:
            found.append(
                f"{name}: buffers on the root module ({', '.join(buffers)}) hold uninitialised memory between calls; "
                "a pipeline that reads them outside the component's forward gets garbage"
            )
    return found
