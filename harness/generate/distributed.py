"""Several processes (GPUs, or CPU ranks) sharing one run, through accelerate's ``PartialState``.

``accelerate launch -m harness run SUITE`` (or ``torchrun --nproc_per_node N -m harness run SUITE``)
starts N copies. Each configuration's samples are cut into the same batches a single
process would make, and whole batches are dealt round-robin to the ranks, so every
image is computed from exactly the inputs it would have in one process: with the same
device type and thread count per process the result is identical to a single-process
run. Rank 0 gathers the samples, scores, checks and writes the one report.

Several hosts work the same way through torchrun's rendezvous (``--nnodes``, ``--rdzv-backend
c10d``). Ranks on another host than rank 0 (torchrun's ``GROUP_RANK`` is not 0) send their
PNG files along with their results, so no shared filesystem is needed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def off_node() -> bool:
    """Whether this process runs on another host than rank 0 (torchrun's node rank), so its files are not there."""
    return os.environ.get("GROUP_RANK", "0") != "0"


@dataclass
class Ranks:
    """This process's place in a multi-process run."""

    state: Any
    rank: int
    world: int
    device: str

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, batches: Sequence[Sequence[T]]) -> list[T]:
        """This rank's whole batches, dealt round-robin, flattened in order."""
        return [job for index, batch in enumerate(batches) if index % self.world == self.rank for job in batch]

    def gather(self, value: Any) -> list[Any]:
        from accelerate.utils import gather_object

        return list(gather_object([value]))

    def gather_parts(self, part: Any, run_dir: Path) -> list[Any]:
        """Every rank's ``ConfigResult`` for one configuration; rank 0 also receives the images of other hosts."""
        from harness.results import ConfigResult

        files = {}
        if off_node():
            files = {str(s.image): (run_dir / str(s.image)).read_bytes() for s in part.samples if s.image}
        gathered = self.gather((part.to_dict(), files))
        if self.main:
            for _, shipped in gathered:
                for relative, data in shipped.items():
                    path = run_dir / relative
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
        return [ConfigResult.from_dict(data) for data, _ in gathered]

    def broadcast(self, value: Any) -> Any:
        from accelerate.utils import broadcast_object_list

        box = [value]
        broadcast_object_list(box, from_process=0)
        return box[0]

    def barrier(self) -> None:
        self.state.wait_for_everyone()

    def conclude(self, exit_code: int | None) -> int:
        """The run's last collective: rank 0's exit code to every rank, then the process group destroyed.

        Destroyed here, while the interpreter is whole: left to interpreter shutdown, gloo's worker threads can
        abort a rank ("terminate called without an active exception", SIGABRT) after a run that succeeded.
        """
        code = self.broadcast(exit_code)
        self.state.destroy_process_group()
        return int(code)


def detect(requested_device: str) -> Ranks | None:
    """The multi-process state when launched with WORLD_SIZE > 1, else ``None``."""
    if world_size() <= 1:
        return None
    from accelerate import PartialState

    wants_cpu = requested_device == "cpu"
    if requested_device == "auto":
        import torch

        wants_cpu = not torch.cuda.is_available()
    state = PartialState(cpu=wants_cpu)
    device = "cpu" if wants_cpu else str(state.device)
    return Ranks(state, state.process_index, state.num_processes, device)


def merge_parts(order: Sequence[str], parts: Sequence[Any]) -> Any:
    """One configuration's result from its ranks' parts (``ConfigResult``s), samples in plan order."""
    from dataclasses import replace

    from harness.results import STATUS_OK
    from harness.timing import summarize_timings

    first = parts[0]
    timings = tuple(timing for part in parts for timing in part.batches)  # each rank's first call is its warm-up
    by_key = {sample.key: sample for part in parts for sample in part.samples}
    failed = next((part for part in parts if part.status != STATUS_OK), None)
    generate = [part.timing.get("generate_s", 0.0) for part in parts]
    generated = sum(part.timing.get("cache_misses", 0) for part in parts)
    timing = {
        **first.timing,
        "generate_s": round(max(generate), 4),
        "load_s": round(max(part.timing.get("load_s", 0.0) for part in parts), 4),
        "cache_hits": sum(part.timing.get("cache_hits", 0) for part in parts),
        "cache_misses": generated,
        "images": len(by_key),
        "per_image_s": round(sum(generate) / max(1, generated), 4),
        "processes": len(parts),
        **summarize_timings(timings),
    }
    peaks = [part.memory.get("peak_rss_mb") for part in parts]
    memory = {
        **first.memory,
        "peak_rss_mb": max((p for p in peaks if p is not None), default=None),
        "per_process_peak_rss_mb": peaks,
    }
    for key in ("peak_gpu_allocated_mb", "peak_gpu_reserved_mb"):
        values = [part.memory[key] for part in parts if key in part.memory]
        if values:
            memory[key] = max(values)
            memory[f"per_process_{key}"] = values
    merged = replace(
        first,
        samples=tuple(by_key[key] for key in order if key in by_key),
        timing=timing,
        memory=memory,
        batches=timings,
    )
    if failed is not None:
        merged = replace(
            merged,
            status=failed.status,
            message=failed.message,
            error_type=failed.error_type,
            traceback=failed.traceback,
        )
    return merged
