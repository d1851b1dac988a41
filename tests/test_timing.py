"""Per-call timing: one measurement per generation call, warm-up marked, denoiser calls timed on their own."""

from __future__ import annotations

import time

import pytest
import torch

from harness.results import ConfigResult
from harness.timing import BatchClock, BatchTiming, measured, summarize_timings


class Sleepy(torch.nn.Module):
    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.linear = torch.nn.Linear(2, 2)

    def forward(self, x):
        time.sleep(self.seconds)
        return self.linear(x)


def test_each_call_is_one_measurement_and_the_first_is_warmup():
    denoiser = Sleepy(0.01)
    clock = BatchClock("cpu", denoiser)

    def call():
        for _ in range(3):  # three denoiser steps per call
            denoiser(torch.zeros(1, 2))
        time.sleep(0.02)  # the rest of the pipeline (VAE, I/O)
        return ["image"] * 4

    for _ in range(3):
        assert clock.time(call, 4) == ["image"] * 4
    clock.close()
    assert [t.warmup for t in clock.timings] == [True, False, False]
    for timing in clock.timings:
        assert timing.images == 4
        assert 0.05 <= timing.wall_s < 0.5
        assert 0.03 <= timing.denoiser_s < timing.wall_s  # only the three forward calls
        assert timing.image_s == pytest.approx(timing.wall_s / 4)
    # hooks are gone after close: the module no longer reports
    assert not denoiser._forward_hooks and not denoiser._forward_pre_hooks


def test_summary_leaves_warmup_out_and_reports_spread():
    timings = [BatchTiming(4, 40.0, 4.0, warmup=True)] + [BatchTiming(4, 4.0 * s, 4.0 * s) for s in (1.0, 1.1, 0.9)]
    assert len(measured(timings)) == 3
    summary = summarize_timings(timings)
    assert summary["timed_batches"] == 3 and summary["median_image_s"] == 1.0
    assert summary["noise_pct"] == pytest.approx(14.83, abs=0.01)  # 1.4826 x MAD(0.1) / 1.0
    assert summarize_timings(timings[:1]) == {"timed_batches": 0}
    config = ConfigResult("a", "precision", "ok", batches=tuple(timings))  # results.json round trip
    assert ConfigResult.from_dict(config.to_dict()).batches == tuple(timings)


def test_cpu_time_and_other_processes_load_are_recorded():
    clock = BatchClock("cpu")

    def spin():
        # burn 50 ms of this process's CPU time, however long that takes on a busy machine
        until = time.process_time() + 0.05
        while time.process_time() < until:
            pass

    clock.time(spin, 1)
    (timing,) = clock.timings
    assert timing.cpu_s >= 0.05  # the spin's CPU time is counted
    assert timing.denoiser_s is None
    assert timing.others_cores is None or timing.others_cores >= 0.0
