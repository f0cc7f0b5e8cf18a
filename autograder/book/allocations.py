"""Measure the peak of the memory a Python call allocates on the CPU with ``tracemalloc``.

NumPy reports every array buffer it allocates to Python's ``tracemalloc`` (``PyTraceMalloc_Track``), so the traced
peak of a NumPy computation is the largest total of live arrays (plus small Python objects) during the call,
measured, not estimated. PyTorch's CPU allocator does not report to ``tracemalloc``: use this for NumPy code only
(and ``torch.cuda.max_memory_allocated`` for CUDA tensors).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import TypeVar

__all__ = ["traced_peak_bytes"]

T = TypeVar("T")


def traced_peak_bytes(fn: Callable[[], T]) -> tuple[T, int]:
    """Call ``fn()`` and return ``(its result, peak traced bytes above what was allocated before the call)``.

    Starts ``tracemalloc`` if it is not running (and stops it again afterwards); raises ``ValueError`` for a
    non-callable ``fn``.
    """
    if not callable(fn):
        raise ValueError(f"fn must be a callable taking no arguments, got {type(fn).__name__}")
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if started:
            tracemalloc.stop()
    return result, peak - before
