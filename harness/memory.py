"""Peak memory of a stretch of work: process RSS (children included) and CUDA allocator peaks.

RSS is sampled by a background thread every few milliseconds, so a peak shorter than
the interval can be missed; CUDA peaks come from the allocator's own counters and are
exact. In-process RSS includes whatever the process already held (imports, the base
pipeline), so the report also gives the rise over the level at the start.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

MB = 1024.0 * 1024.0


def process_rss_bytes(include_children: bool = True) -> int:
    """Resident memory of this process and (optionally) its live children."""
    import psutil

    process = psutil.Process()
    total = process.memory_info().rss
    if include_children:
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
    return int(total)


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.report()`` in MB."""

    def __init__(self, device: str = "cpu", interval_s: float = 0.005):
        self.device = device
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start_rss = 0
        self.peak_rss = 0
        self.marks: dict[str, float] = {}

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_rss = max(self.peak_rss, process_rss_bytes())

    def mark(self, name: str) -> None:
        """Record the current RSS under ``name`` (e.g. ``rss_after_load_mb``)."""
        current = process_rss_bytes()
        self.peak_rss = max(self.peak_rss, current)
        self.marks[name] = current / MB

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.start_rss = process_rss_bytes()
        self.peak_rss = self.start_rss
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_rss = max(self.peak_rss, process_rss_bytes())

    def report(self) -> dict[str, float]:
        """Peak and start RSS, the rise between them, marks, and CUDA peaks when on CUDA (all MB)."""
        values: dict[str, Any] = {
            "peak_rss_mb": round(self.peak_rss / MB, 1),
            "start_rss_mb": round(self.start_rss / MB, 1),
            "rss_rise_mb": round((self.peak_rss - self.start_rss) / MB, 1),
        }
        values.update({name: round(value, 1) for name, value in self.marks.items()})
        if self.device.startswith("cuda"):
            import torch

            values["peak_gpu_allocated_mb"] = round(torch.cuda.max_memory_allocated() / MB, 1)
            values["peak_gpu_reserved_mb"] = round(torch.cuda.max_memory_reserved() / MB, 1)
        return values
