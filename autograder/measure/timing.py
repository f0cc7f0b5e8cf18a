"""Timing helpers used by every chapter's timing cells and by :mod:`autograder.measure.embedding_bench`.

How a function is timed (:func:`time_fn`):

* **CUDA device**: ``warmup`` untimed calls, a ``torch.cuda.synchronize``, then for each repeat: the L2 cache is
  flushed (a buffer of twice ``torch.cuda.get_device_properties(device).L2_cache_size`` is overwritten, so no
  operand of the previous repeat is still cached: an H100's 50 MiB L2 holds the working set of a small lookup,
  and a result timed from it can exceed HBM bandwidth), then a pair of ``torch.cuda.Event(enable_timing=True)``
  is recorded around ``k`` back-to-back calls (``calls_per_sample``) and read after ``end.synchronize()``; the
  sample is the pair's time over ``k``. Issuing ``k`` calls per pair amortises the launch latency and the event
  overhead, a few microseconds that would otherwise be a large share of a 15 us kernel; by default ``k`` is chosen
  from a first timed call so that a pair spans at least :data:`CUDA_MIN_SAMPLE_S` (1 ms). Calls 2..k of a pair
  see what call 1 left in L2, so a working set smaller than L2 (:attr:`Bandwidth.fits_in_cache`) is still timed
  partly from cache; only the first call of each pair starts cold. A CUDA graph would remove the launches
  altogether; it is not used, since not every operation timed here can be captured.
* **CPU**: ``warmup`` untimed calls, then ``time.perf_counter`` around ``k`` calls per repeat (``k = 1`` unless
  ``calls_per_sample`` says otherwise) and no cache flush unless ``flush_cache=True`` (a buffer of twice the
  last-level cache); the CPU has no launch latency to amortise, and its timings say ``perf_counter``.

Either way a :class:`Timing` keeps every sample, reports the median and the spread (10th and 90th percentiles)
and names the device it ran on and the clock it used, so a CPU figure can never be mistaken for a GPU one.

How a bandwidth is reported (:func:`measure_bandwidth`): the caller states the bytes the operation must move
(each input read once plus each output written once); the result gives the achieved GB/s and compares it with
two copies timed in the same run on the same device (the operation and the first copy alternate call by call,
:func:`time_interleaved`, so a busy shared machine slows both alike):

* ``copy`` -- a ``dst.copy_(src)`` (``copy_with="numpy"``: ``np.copyto(dst, src)``, one thread, for NumPy code)
  of *the same number of bytes* (reads half, writes half). This is the fair
  comparison for the operation at this size, but it is **not** a memory bandwidth when the bytes fit in the
  last-level cache: on the course's 2-core AMD EPYC (32 MiB L3) copies of 1-8 MiB measured 156-166 GB/s,
  copies of 64-256 MiB 30-32 GB/s. :attr:`Bandwidth.fits_in_cache` says when that happens.
* ``memory_copy`` -- a copy whose source and destination are each at least four times the last-level cache
  (:func:`last_level_cache_bytes`), so it must stream from and to memory: the honest memory-bandwidth limit.

Neither comparison is timed with a wall-clock assertion anywhere in the tests: figures are printed and
recorded, never asserted.

PyTorch is imported on first use, not with this module: NumPy code timed on the CPU (``device="cpu"``, with
``copy_with="numpy"`` for the copies, ``np.copyto`` of the same bytes) never loads it. That matters where a NumPy
assignment's measurement cell runs in a fresh kernel: importing torch costs about 2 CPU seconds there, more than the
measurement itself.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: torch is imported on first use (see the module docstring)
    import torch

__all__ = [
    "Timing",
    "Bandwidth",
    "default_device",
    "device_name",
    "device_slug",
    "time_fn",
    "time_interleaved",
    "copy_baseline",
    "memory_copy_baseline",
    "measure_bandwidth",
    "last_level_cache_bytes",
    "torch_threads",
    "available_cores",
    "memory_copy_by_threads",
    "l2_flush_bytes",
    "CUDA_MIN_SAMPLE_S",
]

#: last-level cache assumed when the platform does not report one (larger than the L3 slice a copy sees on
#: most desktop and server CPUs, so a working set sized from it still leaves the cache).
FALLBACK_CACHE_BYTES = 128 * 2**20
#: source and destination of :func:`memory_copy_baseline` are each this many times the last-level cache.
MEMORY_COPY_CACHE_MULTIPLE = 4
#: the cache flush before each timed repeat overwrites this many times the last-level cache (GPU: L2)
FLUSH_CACHE_MULTIPLE = 2
#: on CUDA, ``calls_per_sample=None`` picks ``k`` so that one event pair spans at least this long
CUDA_MIN_SAMPLE_S = 1e-3
#: ... and never more than this many calls per pair
CUDA_MAX_CALLS_PER_SAMPLE = 1000


#: how :func:`copy_baseline` and :func:`measure_bandwidth` copy bytes: torch's ``dst.copy_(src)`` (any device, torch's
#: intra-op threads) or NumPy's ``np.copyto(dst, src)`` (CPU only, one thread, no torch import)
COPY_LIBRARIES = ("torch", "numpy")


# --------------------------------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------------------------------
def _torch():
    """PyTorch, imported on first use (see the module docstring)."""
    import torch

    return torch


@dataclass(frozen=True)
class _Cpu:
    """The CPU as this module names it: ``type == "cpu"`` like ``torch.device("cpu")``, without importing torch."""

    type: str = "cpu"
    index: None = None

    def __str__(self) -> str:
        return "cpu"


CPU = _Cpu()


def _as_device(device) -> _Cpu | torch.device:
    """:data:`CPU` for the CPU (``"cpu"``, ``torch.device("cpu")``), a ``torch.device`` for a CUDA GPU; ``None``
    means :func:`default_device`. Only a GPU, or ``None``, imports torch."""
    if device is None:
        device = default_device()
    if isinstance(device, _Cpu) or (isinstance(device, str) and device.strip() == "cpu"):
        return CPU
    torch = _torch()
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'") from exc
    if device.type == "cpu":
        return CPU
    if device.type != "cuda":
        raise ValueError(f"timing supports 'cpu' and 'cuda' devices, got {device.type!r}")
    if not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use device='cpu'")
    return device


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the enclosed PyTorch CPU work on ``n`` intra-op threads, then restore the previous count.

    Raises ``ValueError`` for ``n`` that is not a positive integer.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"the thread count must be a positive integer, got {n!r}")
    torch = _torch()
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def default_device() -> torch.device:
    """``torch.device("cuda")`` when a CUDA GPU is present, else ``torch.device("cpu")``: where torch work should
    run (this imports torch to ask)."""
    torch = _torch()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's marketing name (``model name`` in ``/proc/cpuinfo``), else ``platform.processor()``, else the
    architecture (``x86_64``, ``arm64``)."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device | str | None = None) -> str:
    """A human name for ``device``.

    CUDA: ``"<GPU model> (cuda)"``, e.g. ``"NVIDIA H100 80GB HBM3 (cuda)"``. CPU: ``"CPU <model>
    (<arch>, <n> threads)"`` with the intra-op thread count torch uses where torch is loaded, else (NumPy timed
    without torch) the cores this process may run on, e.g. ``"CPU AMD EPYC (x86_64, 2 threads)"``.
    """
    device = _as_device(device)
    if device.type == "cuda":
        return f"{_torch().cuda.get_device_name(device)} (cuda)"
    threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else available_cores()
    return f"CPU {cpu_model()} ({platform.machine()}, {threads} thread{'s' if threads != 1 else ''})"


def device_slug(name: str) -> str:
    """A file-name-safe slug of a :func:`device_name`: ``"CPU AMD EPYC (x86_64, 2 threads)"`` ->
    ``"cpu-amd-epyc-x86-64-2-threads"``. Raises ``ValueError`` for a name with no letters or digits."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise ValueError(f"device name {name!r} has no letters or digits to make a file name from")
    return slug


def _parse_cache_size(text: str) -> int:
    """``"32768K"`` -> 33554432; ``"1M"``, ``"512"`` (bytes) likewise."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"cannot read a cache size from {text!r}")
    return int(match.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[match.group(2).upper()]


def cpu_last_level_cache_bytes(sysfs: str | Path = "/sys/devices/system/cpu") -> int | None:
    """Total bytes of the CPU's last-level data cache from Linux sysfs, or ``None`` when sysfs has no cache info.

    Reads ``cpu*/cache/index*/{level,type,size,shared_cpu_list}``, keeps the highest level of data or unified
    cache, and sums its distinct instances (a CPU with two L3 slices of 32 MiB has 64 MiB that a multi-threaded
    copy can hit).
    """
    instances: dict[tuple[int, str], int] = {}
    for index in sorted(Path(sysfs).glob("cpu[0-9]*/cache/index[0-9]*")):
        try:
            if (index / "type").read_text().strip() not in ("Data", "Unified"):
                continue
            level = int((index / "level").read_text())
            size = _parse_cache_size((index / "size").read_text())
            shared = (
                (index / "shared_cpu_list").read_text().strip()
                if (index / "shared_cpu_list").exists()
                else str(index.parent.parent.name)
            )
        except (OSError, ValueError):
            continue
        instances[(level, shared)] = size
    if not instances:
        return None
    top = max(level for level, _ in instances)
    return sum(size for (level, _), size in instances.items() if level == top)


@functools.cache
def _last_level_cache_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        size = int(getattr(_torch().cuda.get_device_properties(device), "L2_cache_size", 0) or 0)
        return size or FALLBACK_CACHE_BYTES
    return cpu_last_level_cache_bytes() or FALLBACK_CACHE_BYTES


def last_level_cache_bytes(device: torch.device | str | None = None) -> int:
    """Bytes of the last-level cache a copy on ``device`` can hit: the GPU's L2, or the CPU's L3 (all slices)
    from sysfs; :data:`FALLBACK_CACHE_BYTES` (128 MiB) where the platform does not say."""
    return _last_level_cache_bytes(_as_device(device))


# --------------------------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Seconds per call of one timed function: every sample, median and 10th/90th percentiles.

    ``device`` is a :func:`device_name`; ``method`` is ``"cuda-events"`` or ``"perf_counter"``.
    Percentiles use linear interpolation between samples (``numpy.percentile``'s default).
    """

    device: str
    method: str
    samples_s: tuple[float, ...] = field(repr=False)
    #: calls timed together per sample (each sample is their total over this count)
    calls_per_sample: int = 1
    #: bytes overwritten before each sample to evict the cache (0: no flush)
    flush_bytes: int = 0

    def __post_init__(self) -> None:
        if not self.samples_s:
            raise ValueError("a Timing needs at least one sample")
        if int(self.calls_per_sample) != self.calls_per_sample or self.calls_per_sample < 1:
            raise ValueError(f"calls_per_sample must be a positive integer, got {self.calls_per_sample!r}")

    @property
    def n(self) -> int:
        return len(self.samples_s)

    @property
    def median_s(self) -> float:
        return float(statistics.median(self.samples_s))

    @property
    def p10_s(self) -> float:
        return float(np.percentile(self.samples_s, 10))

    @property
    def p90_s(self) -> float:
        return float(np.percentile(self.samples_s, 90))

    @property
    def spread(self) -> float:
        """``(p90 - p10) / median``: 0.1 means the middle 80 % of runs lie within 10 % of the median."""
        return (self.p90_s - self.p10_s) / self.median_s if self.median_s > 0 else float("inf")

    def to_dict(self) -> dict:
        """JSON-ready summary: device, method, n, median/p10/p90 in seconds, and the samples."""
        return {
            "device": self.device,
            "method": self.method,
            "n": self.n,
            "median_s": self.median_s,
            "p10_s": self.p10_s,
            "p90_s": self.p90_s,
            "samples_s": list(self.samples_s),
            "calls_per_sample": self.calls_per_sample,
            "flush_bytes": self.flush_bytes,
        }

    def __str__(self) -> str:
        calls = f" of {self.calls_per_sample} calls" if self.calls_per_sample > 1 else ""
        flushed = f", cache flushed ({self.flush_bytes / 2**20:,.0f} MiB) before each" if self.flush_bytes else ""
        return (
            f"{self.median_s * 1e6:,.1f} us median (p10 {self.p10_s * 1e6:,.1f}, p90 {self.p90_s * 1e6:,.1f}; "
            f"{self.n} runs{calls}{flushed}, {self.method} on {self.device})"
        )


def _check_counts(warmup: int, repeats: int, calls_per_sample: int | None = 1) -> None:
    if calls_per_sample is not None and (int(calls_per_sample) != calls_per_sample or calls_per_sample < 1):
        raise ValueError(f"calls_per_sample must be a positive integer or None, got {calls_per_sample!r}")
    if int(repeats) != repeats or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if int(warmup) != warmup or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")


def time_interleaved(
    fns: list[Callable[[], object]],
    *,
    device: torch.device | str | None = None,
    warmup: int = 3,
    repeats: int = 20,
    clock: Callable[[], float] | None = None,
    calls_per_sample: int | None = None,
    flush_cache: bool | None = None,
) -> list[Timing]:
    """Time several functions in alternation: ``warmup`` untimed rounds, then ``repeats`` rounds that each time
    ``fns[0]``, ``fns[1]``, ... in turn. Returns one :class:`Timing` per function, in order.

    Alternating (rather than timing one function's repeats, then the next's) makes every function see the same
    machine load, which matters on a shared machine; a baseline copy timed this way is interleaved with the
    operation it is compared with. Python's garbage collector is paused while timing (as in ``timeit``).

    ``calls_per_sample``: calls timed together per sample (``None``: chosen on CUDA so that an event pair spans
    :data:`CUDA_MIN_SAMPLE_S`, 1 on a CPU). ``flush_cache``: overwrite twice the last-level cache before each
    sample (``None``: on CUDA yes, on a CPU no). Method as in :func:`time_fn` and the module docstring.
    """
    for fn in fns:
        if not callable(fn):
            raise ValueError(f"fn must be a callable taking no arguments, got {type(fn).__name__}")
    _check_counts(warmup, repeats, calls_per_sample)
    device = _as_device(device)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a garbage collection pause inside one repeat is noise, not the function's cost
    try:
        if device.type == "cuda":
            flush = _cache_flusher(device) if flush_cache in (None, True) else None
            cuda = _torch().cuda
            with cuda.device(device):
                samples, calls = _cuda_rounds(fns, cuda, device, warmup, repeats, calls_per_sample, flush)
            method = "cuda-events"
        else:
            flush = _cache_flusher(device) if flush_cache else None
            clock = clock or time.perf_counter
            samples, calls = _clock_rounds(fns, clock, warmup, repeats, calls_per_sample or 1, flush)
            method = "perf_counter" if clock is time.perf_counter else getattr(clock, "__name__", type(clock).__name__)
    finally:
        if gc_was_enabled:
            gc.enable()
    name = device_name(device)
    flushed = flush.n_bytes if flush is not None else 0
    return [Timing(name, method, tuple(out), calls, flushed) for out in samples]


class _Flush:
    """Overwrites a buffer of ``n_bytes`` on ``device`` when called: whatever the last-level cache held is evicted."""

    def __init__(self, n_bytes: int, device):
        self.n_bytes = int(n_bytes)
        torch = _torch()
        self.buffer = torch.empty(self.n_bytes, dtype=torch.uint8, device=str(device))

    def __call__(self) -> None:
        self.buffer.fill_(1)


def l2_flush_bytes(device: torch.device | str | None = None, *, cuda=None) -> int:
    """Bytes a cache flush overwrites on ``device``: :data:`FLUSH_CACHE_MULTIPLE` (2) times its last-level cache,
    the GPU's ``get_device_properties(device).L2_cache_size`` (``cuda``: the ``torch.cuda`` module, or a fake of it
    in tests) or the CPU's L3. Falls back to :data:`FALLBACK_CACHE_BYTES` where the size is not reported."""
    if cuda is not None:
        size = int(getattr(cuda.get_device_properties(device), "L2_cache_size", 0) or 0) or FALLBACK_CACHE_BYTES
    else:
        size = last_level_cache_bytes(device)
    return FLUSH_CACHE_MULTIPLE * size


def _cache_flusher(device: torch.device, cuda=None) -> _Flush:
    if device.type == "cuda" and cuda is None:
        cuda = _torch().cuda
    return _Flush(l2_flush_bytes(device, cuda=cuda if device.type == "cuda" else None), device)


def _clock_rounds(fns, clock, warmup: int, repeats: int, calls: int, flush) -> tuple[list[list[float]], int]:
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples, strict=True):
            if flush is not None:
                flush()
            t0 = clock()
            for _ in range(calls):
                fn()
            out.append((clock() - t0) / calls)
    return samples, calls


def _cuda_rounds(
    fns, cuda, device, warmup: int, repeats: int, calls: int | None, flush
) -> tuple[list[list[float]], int]:
    """The CUDA timing loop, written against ``cuda`` (``torch.cuda``, or a fake that records calls in tests).

    For each repeat and each function in turn: ``flush()`` (when given), an event pair around ``calls``
    back-to-back calls, then ``end.synchronize()``; a sample is the pair's seconds over ``calls``. With ``calls``
    ``None``, one cold call is timed after the warm-up and ``calls`` is the number that fills
    :data:`CUDA_MIN_SAMPLE_S` (at least 1, at most :data:`CUDA_MAX_CALLS_PER_SAMPLE`), the same for every function.
    """

    def timed(fn, k: int) -> float:
        if flush is not None:
            flush()
        start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
        start.record()
        for _ in range(k):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / k  # elapsed_time is in milliseconds

    for _ in range(warmup):
        for fn in fns:
            fn()
    cuda.synchronize(device)
    if calls is None:
        slowest = max(timed(fn, 1) for fn in fns)
        fill = CUDA_MIN_SAMPLE_S / slowest if slowest > 0 else CUDA_MAX_CALLS_PER_SAMPLE
        calls = int(min(max(1, -(-fill // 1)), CUDA_MAX_CALLS_PER_SAMPLE))
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples, strict=True):
            out.append(timed(fn, calls))
    return samples, calls


def time_fn(
    fn: Callable[[], object],
    *,
    device: torch.device | str | None = None,
    warmup: int = 3,
    repeats: int = 20,
    clock: Callable[[], float] | None = None,
    calls_per_sample: int | None = None,
    flush_cache: bool | None = None,
) -> Timing:
    """Time ``fn()`` on ``device`` (default: :func:`default_device`); ``warmup`` untimed calls, then ``repeats``
    timed samples of ``calls_per_sample`` calls each.

    CUDA work is timed with event pairs around ``k`` back-to-back calls after an L2 flush (see the module
    docstring); CPU work with ``clock`` (default ``time.perf_counter``; pass a fake clock in tests). Returns a
    :class:`Timing` in seconds per call. Raises ``ValueError`` for ``repeats < 1``, ``warmup < 0``, a
    ``calls_per_sample`` that is not a positive integer, a non-callable ``fn`` or an unavailable device.
    """
    return time_interleaved(
        [fn],
        device=device,
        warmup=warmup,
        repeats=repeats,
        clock=clock,
        calls_per_sample=calls_per_sample,
        flush_cache=flush_cache,
    )[0]


def _copy_fn(n_bytes: int, device) -> Callable[[], object]:
    """A torch ``dst.copy_(src)`` of ``n_bytes`` bytes on ``device``."""
    if int(n_bytes) != n_bytes or n_bytes < 1:
        raise ValueError(f"n_bytes must be a positive integer, got {n_bytes!r}")
    torch = _torch()
    src = torch.empty(int(n_bytes), dtype=torch.uint8, device=str(device)).random_(0, 255)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def _numpy_copy_fn(n_bytes: int) -> Callable[[], object]:
    """A NumPy ``np.copyto(dst, src)`` of ``n_bytes`` bytes (CPU, one thread)."""
    if int(n_bytes) != n_bytes or n_bytes < 1:
        raise ValueError(f"n_bytes must be a positive integer, got {n_bytes!r}")
    src = np.frombuffer(np.random.default_rng(0).bytes(int(n_bytes)), dtype=np.uint8).copy()  # random, writable
    dst = np.empty_like(src)
    return lambda: np.copyto(dst, src)


def _copier(n_bytes: int, device, copy_with: str) -> Callable[[], object]:
    """The copy of ``n_bytes`` bytes on ``device`` with ``copy_with`` (one of :data:`COPY_LIBRARIES`)."""
    if copy_with not in COPY_LIBRARIES:
        raise ValueError(f"copy_with must be one of {', '.join(COPY_LIBRARIES)}, got {copy_with!r}")
    if copy_with == "numpy":
        if device.type != "cpu":
            raise ValueError(f"copy_with='numpy' copies on the CPU; use copy_with='torch' on {device}")
        return _numpy_copy_fn(n_bytes)
    return _copy_fn(n_bytes, device)


def copy_baseline(
    n_bytes: int, *, device: torch.device | str | None = None, copy_with: str = "torch", **kwargs
) -> Timing:
    """Time a plain copy of ``n_bytes`` bytes on ``device`` (it reads ``n_bytes`` and writes ``n_bytes``): the
    practical limit for an operation of that size. ``copy_with="torch"``: ``dst.copy_(src)`` (torch's intra-op
    threads); ``"numpy"``: ``np.copyto(dst, src)`` (CPU only, one thread: the fair limit for single-threaded NumPy
    code, and torch is never imported). ``ValueError`` for another ``copy_with`` or NumPy on a GPU.

    When ``2 * n_bytes`` fits in :func:`last_level_cache_bytes`, the copy runs from cache and its GB/s is a cache
    bandwidth, not a memory one; use :func:`memory_copy_baseline` for the memory limit. ``kwargs`` go to
    :func:`time_fn`.
    """
    device = _as_device(device)
    return time_fn(_copier(n_bytes, device, copy_with), device=device, **kwargs)


def memory_copy_baseline(
    *,
    device: torch.device | str | None = None,
    max_buffer_bytes: int | None = None,
    copy_with: str = "torch",
    **kwargs,
) -> tuple[int, Timing]:
    """Time a copy that cannot run from cache: source and destination are each
    ``MEMORY_COPY_CACHE_MULTIPLE`` (4) times :func:`last_level_cache_bytes`.

    ``max_buffer_bytes`` caps each buffer (a quick run on a machine with a large cache: 4 x 480 MiB takes tens of
    seconds to fill); a capped copy may run from cache, so its GB/s is then no memory bandwidth.
    Returns ``(bytes_moved, timing)`` where ``bytes_moved`` counts the read plus the write (``2 * buffer``),
    so ``bytes_moved / timing.median_s`` is the memory bandwidth a streaming kernel can reach with torch's current
    thread count (:func:`memory_copy_by_threads` compares thread counts); ``copy_with`` as in :func:`copy_baseline`.
    """
    device = _as_device(device)
    buffer = MEMORY_COPY_CACHE_MULTIPLE * last_level_cache_bytes(device)
    if max_buffer_bytes is not None:
        if int(max_buffer_bytes) != max_buffer_bytes or max_buffer_bytes < 1:
            raise ValueError(f"max_buffer_bytes must be a positive integer, got {max_buffer_bytes!r}")
        buffer = min(buffer, int(max_buffer_bytes))
    return 2 * buffer, time_fn(_copier(buffer, device, copy_with), device=device, **kwargs)


def memory_copy_by_threads(thread_counts: tuple[int, ...], **kwargs) -> list[tuple[int, int, Timing]]:
    """CPU copies past the cache (as :func:`memory_copy_baseline`) with each intra-op thread count of
    ``thread_counts``, timed in alternation call by call so that a shared machine's load affects all alike.

    Returns ``[(threads, bytes_moved, timing)]``; each timing's device name states its thread count. ``kwargs``
    (``warmup``, ``repeats``) go to :func:`time_interleaved`. Raises ``ValueError`` for an empty or non-positive
    ``thread_counts``.
    """
    if not thread_counts or any(int(t) != t or t < 1 for t in thread_counts):
        raise ValueError(f"thread_counts must be positive integers, got {thread_counts!r}")
    device = CPU
    buffer = MEMORY_COPY_CACHE_MULTIPLE * last_level_cache_bytes(device)
    copy = _copy_fn(buffer, device)

    def with_threads(n: int) -> Callable[[], object]:
        def run() -> None:
            with torch_threads(n):
                copy()

        return run

    timings = time_interleaved([with_threads(int(t)) for t in thread_counts], device=device, **kwargs)
    out = []
    for t, timing in zip(thread_counts, timings, strict=False):
        with torch_threads(int(t)):
            name = device_name(device)
        out.append((int(t), 2 * buffer, Timing(name, timing.method, timing.samples_s)))
    return out


# --------------------------------------------------------------------------------------------------------------
# bandwidth
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bandwidth:
    """Bytes moved by an operation, its achieved bandwidth, and copies timed in the same run.

    ``copy`` moves the same ``bytes_moved`` (half read, half written). ``memory_copy`` (optional) moves
    ``memory_copy_bytes`` through a working set four times the last-level cache. ``cache_bytes`` is the
    last-level cache of the device, used by :attr:`fits_in_cache`.
    """

    name: str
    bytes_moved: int
    op: Timing
    copy: Timing
    memory_copy: Timing | None = None
    memory_copy_bytes: int = 0
    cache_bytes: int = 0

    @property
    def gbps(self) -> float:
        """Achieved bandwidth of the operation: ``bytes_moved / median seconds / 1e9``."""
        return self.bytes_moved / self.op.median_s / 1e9

    @property
    def copy_gbps(self) -> float:
        """Bandwidth of the same-size copy (a cache bandwidth when :attr:`fits_in_cache`)."""
        return self.bytes_moved / self.copy.median_s / 1e9

    @property
    def fraction_of_copy(self) -> float:
        """``gbps / copy_gbps`` = copy time / operation time: 1.0 means as fast as a copy of the same bytes."""
        return self.gbps / self.copy_gbps

    @property
    def memory_gbps(self) -> float | None:
        """Bandwidth of the past-the-cache copy, or ``None`` when it was not measured."""
        if self.memory_copy is None:
            return None
        return self.memory_copy_bytes / self.memory_copy.median_s / 1e9

    @property
    def fraction_of_memory(self) -> float | None:
        """``gbps / memory_gbps``; above 1.0 the operation ran (partly) from cache."""
        return None if self.memory_gbps is None else self.gbps / self.memory_gbps

    @property
    def fits_in_cache(self) -> bool:
        """True when the same-size copy's source plus destination (``bytes_moved``) fit in the last-level cache."""
        return bool(self.cache_bytes) and self.bytes_moved <= self.cache_bytes

    def to_dict(self) -> dict:
        """JSON-ready summary of the operation, both copies, and the derived GB/s and ratios."""
        return {
            "name": self.name,
            "bytes_moved": self.bytes_moved,
            "gbps": self.gbps,
            "copy_gbps": self.copy_gbps,
            "fraction_of_copy": self.fraction_of_copy,
            "memory_gbps": self.memory_gbps,
            "fraction_of_memory": self.fraction_of_memory,
            "fits_in_cache": self.fits_in_cache,
            "cache_bytes": self.cache_bytes,
            "op": self.op.to_dict(),
            "copy": self.copy.to_dict(),
            "memory_copy": None if self.memory_copy is None else self.memory_copy.to_dict(),
            "memory_copy_bytes": self.memory_copy_bytes,
        }

    def __str__(self) -> str:
        text = (
            f"{self.name}: {self.bytes_moved / 1e6:,.1f} MB in {self.op.median_s * 1e6:,.1f} us = "
            f"{self.gbps:,.1f} GB/s; a copy of the same bytes: {self.copy_gbps:,.1f} GB/s "
            f"({self.fraction_of_copy:.0%} of copy"
        )
        if self.fits_in_cache:
            text += ", both from cache"
        text += ")"
        if self.memory_gbps is not None:
            text += f"; memory copy {self.memory_gbps:,.1f} GB/s ({self.fraction_of_memory:.0%})"
        return text + f" on {self.op.device}"


def measure_bandwidth(
    name: str,
    fn: Callable[[], object],
    bytes_moved: int,
    *,
    device: torch.device | str | None = None,
    memory_copy: bool = True,
    copy_with: str = "torch",
    **kwargs,
) -> Bandwidth:
    """Time ``fn`` and a copy of ``bytes_moved`` bytes side by side in one run on one device.

    ``bytes_moved`` counts what the operation must read plus write, each once (e.g. a lookup of ``n`` rows of
    ``D`` float32 values reads ``4nD`` bytes of table and ``8n`` of int64 ids and writes ``4nD``); the copy
    moves the same count (it reads and writes ``bytes_moved / 2`` each) and alternates with ``fn`` call by call
    (:func:`time_interleaved`), so both see the same load. With ``memory_copy=True`` (default) a
    copy past the last-level cache is timed too (:func:`memory_copy_baseline`), so that a small, cache-resident
    copy is never presented as the memory limit. ``copy_with`` picks the copies' library (:func:`copy_baseline`:
    ``"numpy"`` for NumPy code on the CPU, which then never imports torch). ``kwargs`` (``warmup``, ``repeats``)
    go to :func:`time_fn`.
    """
    if int(bytes_moved) != bytes_moved or bytes_moved < 1:
        raise ValueError(f"bytes_moved must be a positive integer, got {bytes_moved!r}")
    device = _as_device(device)
    copy_fn = _copier(max(int(bytes_moved) // 2, 1), device, copy_with)
    op, copy = time_interleaved([fn, copy_fn], device=device, **kwargs)
    mem_bytes, mem = memory_copy_baseline(device=device, copy_with=copy_with, **kwargs) if memory_copy else (0, None)
    return Bandwidth(name, int(bytes_moved), op, copy, mem, mem_bytes, last_level_cache_bytes(device))
