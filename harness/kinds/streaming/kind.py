"""``kind = "streaming"``: the low-memory runtime on diffusers' own offloading.

- ``group_block`` / ``group_leaf``: group offloading, weights kept on the CPU (or on disk with
  ``offload = "disk"``) and brought to the device group by group, optionally overlapped with
  compute on CUDA streams (``use_stream``);
- ``sequential_cpu``: ``enable_sequential_cpu_offload`` (CUDA);
- ``model_cpu``: ``enable_model_cpu_offload`` (CUDA).

Combinable with any precision (``dtype``, ``component_dtypes``). A mode that needs CUDA
where there is none makes the configuration ``skipped`` with the reason. Its images are
compared with the plain configuration of the same precision (``equivalent_to``, found
automatically when unset): the report shows the largest pixel difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import Where
from harness.kinds.base import BuildContext, ConfigSpec, scratch_folder
from harness.kinds.pipeline import PipelineKind, PipelineOptions
from harness.kinds.streaming.offloading import apply_group_offload, disk_hazards
from harness.options import option
from harness.results import STATUS_OK, ConfigResult, image_equivalence

MODES = ("group_block", "group_leaf", "sequential_cpu", "model_cpu")


@dataclass(frozen=True)
class StreamingOptions:
    mode: str = option("how weights reach the device", default="group_block", choices=MODES)
    offload: str = option(
        "where group-offloaded weights wait (disk streams them from files)", default="cpu", choices=("cpu", "disk")
    )
    use_stream: bool = option("overlap transfers with compute on CUDA streams (group modes, CUDA only)", default=False)
    blocks_per_group: int = option("blocks moved together at block level", default=1, minimum=1)
    equivalent_to: str | None = option(
        "the plain configuration whose images these must equal (default: same precision, found automatically)",
        default=None,
    )
    record_stream: bool = option(
        "with use_stream: let tensors be freed on the compute stream (faster, diffusers' record_stream)",
        default=False,
    )
    non_blocking: bool = option("asynchronous host-to-device copies (pinned memory)", default=False)

    def validate(self, where: Where) -> None:
        if self.offload == "disk" and not self.mode.startswith("group"):
            raise where.error("offload", "disk offloading needs a group mode (group_block or group_leaf)")
        if self.use_stream and not self.mode.startswith("group"):
            raise where.error("use_stream", "CUDA streams apply to group offloading only")
        if self.record_stream and not self.use_stream:
            raise where.error("record_stream", "record_stream needs use_stream = true")


class StreamingKind(PipelineKind):
    name: ClassVar[str] = "streaming"
    summary: ClassVar[str] = (
        "offloaded/streamed weights: group offloading (block/leaf, CPU or disk, CUDA streams), sequential or model CPU offload"
    )
    own_options: ClassVar[type] = StreamingOptions
    example: ClassVar[Mapping[str, Any]] = {"mode": "group_leaf"}

    def backend_unavailable(self, options: PipelineOptions, device: str) -> str | None:
        extra: StreamingOptions = options.extra
        on_cuda = device.startswith("cuda")
        if extra.mode in ("sequential_cpu", "model_cpu") and not on_cuda:
            return f"{extra.mode} offload moves weights between the CPU and an accelerator; it needs CUDA (diffusers: 'requires accelerator')"
        if extra.use_stream and not on_cuda:
            return "use_stream overlaps transfers on CUDA streams; it needs CUDA"
        return None

    def place(self, pipe: Any, options: PipelineOptions, context: BuildContext) -> Any:
        import torch

        extra: StreamingOptions = options.extra
        device = torch.device(context.device)
        notes = context.notes
        notes["streaming"] = {"mode": extra.mode, "offload": extra.offload, "use_stream": extra.use_stream}
        if extra.mode == "sequential_cpu":
            pipe.enable_sequential_cpu_offload(device=device)
            return pipe
        if extra.mode == "model_cpu":
            pipe.enable_model_cpu_offload(device=device)
            return pipe
        kwargs: dict[str, Any] = {
            "onload_device": device,
            "offload_device": torch.device("cpu"),
            "offload_type": "block_level" if extra.mode == "group_block" else "leaf_level",
            "use_stream": extra.use_stream,
            "record_stream": extra.record_stream,
            "non_blocking": extra.non_blocking,
        }
        if extra.mode == "group_block":
            kwargs["num_blocks_per_group"] = extra.blocks_per_group
        folder = None
        if extra.offload == "disk":
            folder = str(scratch_folder(context, "offload", notes))
            notes["streaming"]["disk_path"] = folder
            hazards = disk_hazards(pipe, leaf_level=extra.mode == "group_leaf")
            if hazards:
                notes["streaming"]["disk_hazards"] = hazards
        apply_group_offload(pipe, folder, **kwargs)
        return pipe

    def finish(
        self,
        spec: ConfigSpec,
        result: ConfigResult,
        specs: Sequence[ConfigSpec],
        result_of: Callable[[str], ConfigResult | None],
        run_dir: Path,
    ) -> ConfigResult:
        """A streaming configuration must reproduce the plain configuration of the same precision: the largest
        8-bit pixel difference over their common samples goes to its notes (``equivalence``)."""
        extra: StreamingOptions = spec.options.extra
        target_name = extra.equivalent_to or next(
            (
                other.name
                for other in specs
                if other.kind == "precision"
                and other.name != spec.name
                and other.options.precision == spec.options.precision
            ),
            None,
        )
        target = result_of(target_name) if target_name else None
        if target is None or target.status != STATUS_OK:
            found: dict[str, Any] = {
                "target": target_name,
                "note": "no plain configuration of the same precision ran to compare with",
            }
        else:
            found = image_equivalence(result, target, run_dir)
            hazards = result.notes.get("streaming", {}).get("disk_hazards")
            if hazards and not found["identical"]:
                found["known_causes"] = hazards
        return replace(result, notes={**result.notes, "equivalence": found})
