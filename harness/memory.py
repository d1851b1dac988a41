"""Peak memory of a stretch of work: process RSS and CUDA allocator peaks.

On Linux the kernel keeps the process's peak RSS (``VmHWM`` in /proc/self/status) and
resets it when "5" is written to /proc/self/clear_refs, so the peak of one
configuration is exact and costs nothing to measure. Elsewhere a background thread
samples RSS every 20 ms (a shorter peak can be missed; the report says which method
was used). CUDA peaks come from the allocator's own counters.

In-process RSS includes what the process already held (imports, the base pipeline),
so the report also gives the level at the start and the rise over it. Children (an
external runtime) are measured where they are waited for (``os.wait4`` rusage).
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Any

MB = 1024.0 * 1024.0
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def process_rss_bytes() -> int:
    """Current resident memory of this process."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def status_bytes(field: str) -> int | None:
    """A byte count from /proc/self/status (``VmHWM``, ``VmRSS``), or ``None`` where there is none."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter; ``False`` where that is not supported."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return status_bytes("VmHWM") is not None


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.report()`` in MB."""

    def __init__(self, device: str = "cpu", interval_s: float = 0.02):
        self.device = device
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.kernel_peak = False
        self.start_rss = 0
        self.peak_rss = 0
        self.marks: dict[str, float] = {}

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_rss = max(self.peak_rss, process_rss_bytes())

    def _current_peak(self) -> int:
        if self.kernel_peak:
            return max(self.peak_rss, status_bytes("VmHWM") or 0)
        return max(self.peak_rss, process_rss_bytes())

    def mark(self, name: str) -> None:
        """Record the current RSS under ``name`` (e.g. ``rss_after_load_mb``)."""
        current = process_rss_bytes()
        self.peak_rss = max(self.peak_rss, current)
        self.marks[name] = current / MB

    def mark_built(self) -> None:
        """After the build: what stays resident on the GPU, the build's own peak, then a fresh peak for generation."""
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            self.marks["gpu_resident_mb"] = torch.cuda.memory_allocated() / MB
            self.marks["peak_gpu_build_mb"] = torch.cuda.max_memory_allocated() / MB
            torch.cuda.reset_peak_memory_stats()

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            import gc

            import torch

            # Free what the previous configuration left in the caching allocator, so "reserved" is this one's.
            # Then freeze what survives (imports, the base pipeline, results): the next configuration's
            # collect scans only objects created since, 0.3 s -> 0 on half a million objects (measured in
            # docs/performance.md). Frozen objects are still freed by reference counting; only cycles
            # among them wait for the process to end.
            gc.collect()
            gc.freeze()
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self.kernel_peak = reset_peak_rss()
        self.start_rss = process_rss_bytes()
        self.peak_rss = self.start_rss
        if not self.kernel_peak:
            self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_rss = self._current_peak()

    def report(self) -> dict[str, Any]:
        """Peak and start RSS, the rise between them, marks, and CUDA peaks when on CUDA (all MB)."""
        values: dict[str, Any] = {
            "peak_rss_mb": round(self.peak_rss / MB, 1),
            "start_rss_mb": round(self.start_rss / MB, 1),
            "rss_rise_mb": round((self.peak_rss - self.start_rss) / MB, 1),
            "rss_method": "kernel VmHWM (exact)"
            if self.kernel_peak
            else f"sampled every {self.interval_s * 1000:.0f} ms",
        }
        values.update({name: round(value, 1) for name, value in self.marks.items()})
        if self.device.startswith("cuda"):
            import torch

            # After mark_built this is the generation's peak; the build's is peak_gpu_build_mb.
            values["peak_gpu_allocated_mb"] = round(torch.cuda.max_memory_allocated() / MB, 1)
            values["peak_gpu_reserved_mb"] = round(torch.cuda.max_memory_reserved() / MB, 1)
        return values
