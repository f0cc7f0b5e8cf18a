"""Timing helpers used by every chapter's timing cells and by ``python -m autograder.bench``.

On a CUDA device: warm-up calls, then ``torch.cuda.Event(enable_timing=True)`` pairs around each repeat, with a
synchronisation before reading them. On the CPU: ``time.perf_counter`` around each repeat. Either way the result
keeps every sample, reports the median and the spread (10th-90th percentile), and names the device it ran on, so a
CPU figure can never be mistaken for a GPU one.
"""
from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

__all__ = ["Timing", "Bandwidth", "default_device", "device_name", "time_fn", "copy_baseline", "measure_bandwidth"]


def default_device() -> torch.device:
    """``cuda`` when a CUDA GPU is present, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(device: torch.device | str | None = None) -> str:
    """A human name for ``device``: the GPU's model, or the CPU's architecture and thread count."""
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    return f"CPU {platform.machine()} ({torch.get_num_threads()} threads)"


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one timed function: all samples, median and 10th/90th percentiles."""
    device: str
    method: str                      # "cuda-events" or "perf_counter"
    samples_s: tuple[float, ...] = field(repr=False)

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def p10_s(self) -> float:
        return float(np.percentile(self.samples_s, 10))

    @property
    def p90_s(self) -> float:
        return float(np.percentile(self.samples_s, 90))

    def __str__(self) -> str:
        return (f"{self.median_s * 1e6:,.1f} us median (p10 {self.p10_s * 1e6:,.1f}, p90 {self.p90_s * 1e6:,.1f}; "
                f"{len(self.samples_s)} runs, {self.method} on {self.device})")


def time_fn(fn: Callable[[], object], *, device: torch.device | str | None = None,
            warmup: int = 3, repeats: int = 20) -> Timing:
    """Time ``fn()`` on ``device`` (default: :func:`default_device`). CUDA work is timed with events."""
    device = torch.device(device) if device is not None else default_device()
    for _ in range(warmup):
        fn()
    samples = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3)
        method = "cuda-events"
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        method = "perf_counter"
    return Timing(device_name(device), method, tuple(samples))


def copy_baseline(n_bytes: int, *, device: torch.device | str | None = None, **kwargs) -> Timing:
    """Time a plain ``dst.copy_(src)`` of ``n_bytes`` bytes on ``device``: the practical bandwidth limit."""
    device = torch.device(device) if device is not None else default_device()
    src = torch.empty(n_bytes, dtype=torch.uint8, device=device).random_(0, 255)
    dst = torch.empty_like(src)
    return time_fn(lambda: dst.copy_(src), device=device, **kwargs)


@dataclass(frozen=True)
class Bandwidth:
    """Bytes moved by an operation, its achieved bandwidth, and the same-run copy of those bytes."""
    name: str
    bytes_moved: int
    op: Timing
    copy: Timing

    @property
    def gbps(self) -> float:
        return self.bytes_moved / self.op.median_s / 1e9

    @property
    def copy_gbps(self) -> float:
        return self.bytes_moved / self.copy.median_s / 1e9

    @property
    def fraction_of_copy(self) -> float:
        return self.gbps / self.copy_gbps

    def __str__(self) -> str:
        return (f"{self.name}: {self.bytes_moved / 1e6:,.1f} MB in {self.op.median_s * 1e6:,.1f} us = "
                f"{self.gbps:,.1f} GB/s; a copy of the same bytes: {self.copy_gbps:,.1f} GB/s "
                f"({self.fraction_of_copy:.0%} of copy) on {self.op.device}")


def measure_bandwidth(name: str, fn: Callable[[], object], bytes_moved: int, *,
                      device: torch.device | str | None = None, **kwargs) -> Bandwidth:
    """Time ``fn`` and a copy of ``bytes_moved`` bytes side by side in one run on one device.

    ``bytes_moved`` counts what the operation must read plus write (e.g. a lookup of ``n`` rows of ``D`` float32
    values reads ``4nD`` bytes and writes ``4nD``); the copy moves the same count (it reads and writes
    ``bytes_moved / 2`` each).
    """
    op = time_fn(fn, device=device, **kwargs)
    copy = copy_baseline(max(bytes_moved // 2, 1), device=device, **kwargs)
    return Bandwidth(name, bytes_moved, op, copy)
