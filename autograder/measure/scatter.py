"""The dense gradient of an embedding lookup by sorting instead of ``np.add.at``: one of the benchmark's timed
gradient variants, and the one chapter 4 shows (the reference's ``embedding_backward`` is never shown)."""

from __future__ import annotations

import numpy as np

__all__ = ["scatter_add_sorted"]


def scatter_add_sorted(
    grad_out: np.ndarray, ids: np.ndarray, vocab_size: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Dense ``(V, D)`` gradient of a lookup by sorting: sort the ``N`` ids, sum each run of equal ids with
    ``np.add.reduceat``, write one row per distinct id. Same result as ``np.add.at`` (up to summation order).

    ``grad_out``: ``ids.shape + (D,)`` floating; ``ids``: integers in ``[0, V)``. ``out``: an optional
    ``(V, D)`` array of ``grad_out``'s dtype to fill, zeroed by writing every byte (``np.zeros`` instead leaves
    the pages no row lands on for the kernel to zero lazily, never written); returned.
    """
    dim = grad_out.shape[-1]
    flat_ids = np.asarray(ids).reshape(-1)
    flat_grad = np.asarray(grad_out).reshape(-1, dim)
    if out is None:
        grad = np.zeros((vocab_size, dim), dtype=flat_grad.dtype)
    else:
        if out.shape != (vocab_size, dim) or out.dtype != flat_grad.dtype:
            raise ValueError(
                f"out must be a ({vocab_size}, {dim}) {flat_grad.dtype} array, got {out.shape} {out.dtype}"
            )
        grad = out
        grad.fill(0)
    if flat_ids.size == 0:
        return grad
    order = np.argsort(flat_ids, kind="stable")
    sorted_ids = flat_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    grad[sorted_ids[starts]] = np.add.reduceat(flat_grad[order], starts, axis=0)
    return grad
