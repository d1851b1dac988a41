"""Timing one generation call (one batch) at a time: the statistical unit of every speed verdict.

A batch is timed once, so it is one measurement however many images it holds: a
configuration of 16 images at batch 8 has two measurements, not sixteen. Each call is
timed with the device synchronised (CUDA events on a GPU, never an unsynchronised host
clock); the first call of a configuration is marked as warm-up and left out of the
statistics. Optionally the denoiser's own forward calls are timed too, so a regression
inside the denoiser is not diluted by the text encoder, the VAE and image I/O.

On Linux the CPU time other processes used during each call is read from /proc/stat,
so a verdict can say "the machine was busy" instead of raising a false alarm.

On a CPU each call is preceded by a speed probe: a fixed matrix product timed on its own.
A shared virtual CPU runs the same work up to 40% faster in one process than in the next
(no other load visible to the guest); the probe slows down with it, so seconds per image
divided by the median of the run's probes compare across processes far better (measured
in docs/regression.md). A slowdown of the pipeline itself does not touch the probe.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

_PROC_STAT = "/proc/stat"
_T = TypeVar("_T")


@dataclass(frozen=True)
class BatchTiming:
    """One timed generation call."""

    images: int
    wall_s: float  # device-synchronised elapsed time of the whole call
    cpu_s: float  # this process's CPU time (all threads) during the call
    denoiser_s: float | None = None  # time inside the denoiser's forward calls, when they were timed
    others_cores: float | None = None  # CPU cores other processes kept busy meanwhile (Linux), else None
    warmup: bool = False  # the configuration's first call: left out of the statistics
    repeat: int = 0  # 0 for the pass that produced the images, 1.. for --timing-repeats passes
    probe_s: float | None = None  # the CPU speed probe timed just before the call (CPU runs only)

    @property
    def image_s(self) -> float:
        return self.wall_s / self.images

    @property
    def cpu_image_s(self) -> float:
        return self.cpu_s / self.images

    @property
    def denoiser_image_s(self) -> float | None:
        return None if self.denoiser_s is None else self.denoiser_s / self.images


PROBE_SIZE, PROBE_PRODUCTS = 384, 40  # about 4.7 GFLOP: 20-30 ms on two x86-64 cores


def speed_probe() -> float:
    """Seconds for a fixed float32 matrix workload on this process's CPU threads, as the machine runs now."""
    import torch

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(PROBE_SIZE, PROBE_SIZE, generator=generator)
    b = torch.randn(PROBE_SIZE, PROBE_SIZE, generator=generator)
    start = time.perf_counter()
    for _ in range(PROBE_PRODUCTS):
        torch.mm(a, b)
    return time.perf_counter() - start


def _busy_jiffies() -> int | None:
    """All CPUs' busy time so far (user + nice + system + irq + softirq + steal), in clock ticks."""
    try:
        with open(_PROC_STAT, encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return user + nice + system + irq + softirq + steal


def _own_jiffies() -> int:
    times = os.times()
    return round((times.user + times.system) * os.sysconf("SC_CLK_TCK"))


class DenoiserClock:
    """Forward hooks that time every call of one module, synchronised with the device."""

    def __init__(self, module: Any, cuda: bool):
        self.cuda = cuda
        self._pending: list[Any] = []
        self._open: list[Any] = []
        self.seconds = 0.0
        import torch

        # kept out of torch.compile's graphs (a compiled denoiser runs its hooks inside the compiled call): traced,
        # each call's growing list of stamps would recompile the graph until dynamo's limit
        self._handles = [
            module.register_forward_pre_hook(torch.compiler.disable(self._before)),
            module.register_forward_hook(torch.compiler.disable(self._after)),
        ]

    def _stamp(self) -> Any:
        if self.cuda:
            import torch

            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def _before(self, *_: Any) -> None:
        self._open.append(self._stamp())

    def _after(self, *_: Any) -> None:
        if self._open:
            self._pending.append((self._open.pop(), self._stamp()))

    def collect(self) -> float:
        """Seconds inside the module since the last collect (the device must be synchronised)."""
        total = 0.0
        for start, end in self._pending:
            total += start.elapsed_time(end) / 1000.0 if self.cuda else end - start
        self._pending.clear()
        return total

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


class BatchClock:
    """Times generation calls on one device: ``images = clock.time(call, n)`` then ``clock.timings``."""

    def __init__(self, device: str, denoiser: Any | None = None):
        self.cuda = device.startswith("cuda")
        self.probe = device == "cpu"
        self.timings: list[BatchTiming] = []
        self._denoiser = DenoiserClock(denoiser, self.cuda) if denoiser is not None else None

    def _synchronize(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def time(self, call: Callable[[], _T], images: int, repeat: int = 0) -> _T:
        """Run ``call`` (one batch of ``images``) and record its timing; the first call is warm-up."""
        probe = speed_probe() if self.probe else None
        self._synchronize()
        if self._denoiser is not None:
            self._denoiser.collect()
        busy, own = _busy_jiffies(), _own_jiffies()
        cpu_start = time.process_time()
        start_event = None
        if self.cuda:
            import torch

            start_event, end_event = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start_event.record()
        wall_start = time.perf_counter()
        result = call()
        if start_event is not None:
            end_event.record()
            end_event.synchronize()
            wall = start_event.elapsed_time(end_event) / 1000.0
        else:
            wall = time.perf_counter() - wall_start
        host_wall = time.perf_counter() - wall_start
        cpu = time.process_time() - cpu_start
        others = None
        busy_after = _busy_jiffies()
        if busy is not None and busy_after is not None and host_wall > 0:
            others_jiffies = (busy_after - busy) - (_own_jiffies() - own)
            others = max(0.0, others_jiffies / os.sysconf("SC_CLK_TCK") / host_wall)
        denoiser = self._denoiser.collect() if self._denoiser is not None else None
        self.timings.append(
            BatchTiming(
                images=images,
                wall_s=round(wall, 6),
                cpu_s=round(cpu, 6),
                denoiser_s=None if denoiser is None else round(denoiser, 6),
                others_cores=None if others is None else round(others, 3),
                warmup=not self.timings,
                repeat=repeat,
                probe_s=None if probe is None else round(probe, 6),
            )
        )
        return result

    def close(self) -> None:
        if self._denoiser is not None:
            self._denoiser.close()


MIN_TIMED_CALLS = 3  # fewer timed calls on either side: a speed verdict has no interval
AUTO_TIMING_PASSES = 4  # the most timing passes a run with a baseline adds by itself to reach MIN_TIMED_CALLS
# what a speed verdict, and the headline, say when the baseline has fewer than MIN_TIMED_CALLS timed calls
BASELINE_TIMING_HINT = "make the baseline with --timing-repeats 2"


def timing_passes(requested: int | None, timed: int, per_pass: int) -> int:
    """Timed passes to add after generating: ``requested`` (``--timing-repeats``), or with ``None`` (auto, a
    run with a baseline) as many as bring the timed calls to ``MIN_TIMED_CALLS``, at most ``AUTO_TIMING_PASSES``."""
    if requested is not None:
        return max(0, requested)
    if timed >= MIN_TIMED_CALLS or per_pass < 1:
        return 0
    return min(AUTO_TIMING_PASSES, -(-(MIN_TIMED_CALLS - timed) // per_pass))


def measured(timings: Sequence[BatchTiming]) -> list[BatchTiming]:
    """The timings that count: warm-up calls left out."""
    return [t for t in timings if not t.warmup]


def summarize_timings(timings: Sequence[BatchTiming]) -> dict[str, float]:
    """Medians per image over the measured calls, their n, spread and the machine's other load."""
    counted = measured(timings)
    if not counted:
        return {"timed_batches": 0}
    per_image = np.asarray([t.image_s for t in counted])
    median = float(np.median(per_image))
    summary: dict[str, float] = {
        "timed_batches": len(counted),
        "median_image_s": round(median, 5),
        "cpu_image_s": round(float(np.median([t.cpu_image_s for t in counted])), 5),
    }
    if len(counted) >= 2 and median > 0:
        # Robust relative spread of single measurements: 1.4826 x MAD / median (a standard deviation for normal noise).
        summary["noise_pct"] = round(100.0 * 1.4826 * float(np.median(np.abs(per_image - median))) / median, 2)
    denoiser = [t.denoiser_image_s for t in counted if t.denoiser_image_s is not None]
    if denoiser:
        summary["median_denoiser_s"] = round(float(np.median(denoiser)), 5)
    others = [t.others_cores for t in counted if t.others_cores is not None]
    if others:
        summary["others_cores"] = round(float(np.median(others)), 3)
    probes = [t.probe_s for t in counted if t.probe_s]
    if probes:
        summary["speed_probe_s"] = round(float(np.median(probes)), 5)
    return summary


def from_dicts(data: Sequence[Any]) -> tuple[BatchTiming, ...]:
    return tuple(BatchTiming(**item) for item in data)
