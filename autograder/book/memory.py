"""Helpers for the memory-scaling chapter: token streams, gradient footprints, arithmetic intensity, HTML tables.

The byte counts themselves come from the reference (``numpy_ref.tensor_bytes`` and friends); this module only
combines them into the quantities the chapter plots.
"""
from __future__ import annotations

import html
from typing import Sequence

import numpy as np

from autograder.reference.numpy_ref import tensor_bytes

__all__ = ["zipf_token_ids", "dense_gradient_bytes", "sparse_gradient_bytes", "lookup_intensity",
           "matmul_intensity", "html_table"]

INDEX_BYTES = 8  # one int64 row index per stored row, as in torch's sparse COO gradients


def zipf_token_ids(vocab_size: int, n_tokens: int, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """int64 ``(n_tokens,)`` ids in ``[0, vocab_size)`` drawn with ``P(id = r) ∝ 1 / (r + 1) ** exponent``.

    Natural-language token frequencies fall off roughly like this (Zipf's law), so a batch touches far fewer
    distinct rows than it has tokens. Raises ``ValueError`` for non-positive sizes or exponent.
    """
    if vocab_size <= 0 or n_tokens < 0 or exponent <= 0:
        raise ValueError(f"need vocab_size > 0, n_tokens >= 0, exponent > 0; got {vocab_size}, {n_tokens}, {exponent}")
    weights = 1.0 / np.arange(1, vocab_size + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights / weights.sum())
    ids = np.searchsorted(cdf, rng.random(n_tokens), side="right")
    return np.minimum(ids, vocab_size - 1).astype(np.int64)


def dense_gradient_bytes(vocab_size: int, dim: int, dtype: str = "float32") -> int:
    """Bytes of a dense ``(V, D)`` gradient: the whole table's size, however few rows the batch touched."""
    return tensor_bytes(vocab_size * dim, dtype)


def sparse_gradient_bytes(n_rows: int, dim: int, dtype: str = "float32", index_bytes: int = INDEX_BYTES) -> int:
    """Bytes of a row-sparse gradient holding ``n_rows`` rows: ``(n_rows, D)`` values plus one index per row."""
    return tensor_bytes(n_rows * dim, dtype) + n_rows * index_bytes


def lookup_intensity(n_tokens: int, dim: int, dtype: str = "float32") -> float:
    """Arithmetic intensity (FLOPs per byte moved) of an embedding lookup: it copies ``n_tokens`` rows and does no
    arithmetic, so the answer is ``0.0`` for any size; bytes moved = rows read + rows written."""
    bytes_moved = 2 * n_tokens * tensor_bytes(dim, dtype)
    flops = 0
    return flops / bytes_moved if bytes_moved else 0.0


def matmul_intensity(m: int, k: int, n: int, dtype: str = "float32") -> float:
    """FLOPs per byte of ``(m, k) @ (k, n)``: ``2mkn`` FLOPs over reading both inputs and writing the output once."""
    flops = 2 * m * k * n
    bytes_moved = tensor_bytes(m * k + k * n + m * n, dtype)
    return flops / bytes_moved


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]], align_right_from: int = 1) -> str:
    """A compact HTML ``<table>``: cells escaped, columns from ``align_right_from`` on right-aligned (numbers),
    the first column kept on one line."""
    def cell(tag: str, value: object, j: int) -> str:
        style = "text-align:right" if j >= align_right_from else "white-space:nowrap"
        return f'<{tag} style="{style}">{html.escape(str(value))}</{tag}>'

    head = "".join(cell("th", h, j) for j, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", v, j) for j, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<table style="font-size:0.85em"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
