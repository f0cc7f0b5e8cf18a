"""Helpers for the memory-scaling chapter: token streams, gradient footprints, arithmetic intensity, HTML tables.

The byte counts themselves come from the reference (``numpy_ref.tensor_bytes`` and friends) through
:mod:`autograder.measure.embedding_bytes`, and the Zipf token streams from :mod:`autograder.measure.zipf` (the
benchmark uses both too); this module re-exports them for the chapters and combines them into the quantities the
chapter plots.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from autograder.measure.embedding_bytes import INDEX_BYTES, dense_gradient_bytes, sparse_gradient_bytes
from autograder.measure.zipf import zipf_token_ids
from autograder.reference.numpy_ref import lookup_bytes, tensor_bytes

__all__ = [
    "zipf_token_ids",
    "INDEX_BYTES",
    "dense_gradient_bytes",
    "sparse_gradient_bytes",
    "lookup_intensity",
    "matmul_intensity",
    "matmul_ridge_rows",
    "html_table",
]


def lookup_intensity(n_tokens: int, dim: int, dtype: str = "float32") -> float:
    """Arithmetic intensity (FLOPs per byte moved) of an embedding lookup: it copies ``n_tokens`` rows and does no
    arithmetic, so the answer is ``0.0`` for any size; bytes moved = rows read + rows written."""
    bytes_moved = 2 * lookup_bytes(n_tokens, dim, dtype)
    flops = 0
    return flops / bytes_moved if bytes_moved else 0.0


def matmul_intensity(m: int, k: int, n: int, dtype: str = "float32") -> float:
    """FLOPs per byte of ``(m, k) @ (k, n)``: ``2mkn`` FLOPs over reading both inputs and writing the output once."""
    flops = 2 * m * k * n
    bytes_moved = tensor_bytes(m * k + k * n + m * n, dtype)
    return flops / bytes_moved


def matmul_ridge_rows(k: int, n: int, ridge: float, dtype: str = "float32") -> int | None:
    """The fewest rows ``m`` for which ``(m, k) @ (k, n)`` reaches ``ridge`` FLOP/byte (:func:`matmul_intensity`).

    With ``b`` bytes per value the intensity ``2mkn / (b (mk + kn + mn))`` reaches ``R`` exactly when
    ``m (2kn - bR(k + n)) >= bRkn``; returns the smallest such integer, or ``None`` when no ``m`` does (the
    intensity tends to ``2kn / (b (k + n))`` as ``m`` grows). Raises ``ValueError`` for non-positive sizes.
    """
    if min(k, n) < 1 or ridge <= 0:
        raise ValueError(f"need positive k, n and ridge, got {k}, {n}, {ridge}")
    b = tensor_bytes(1, dtype)
    denominator = 2 * k * n - b * ridge * (k + n)
    if denominator <= 0:
        return None
    m = max(1, math.ceil(b * ridge * k * n / denominator))
    while matmul_intensity(m, k, n, dtype) < ridge:  # a float ceiling can land one short
        m += 1
    while m > 1 and matmul_intensity(m - 1, k, n, dtype) >= ridge:
        m -= 1
    return m


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]], align_right_from: int = 1) -> str:
    """A compact HTML ``<table>``: cells escaped, columns from ``align_right_from`` on right-aligned (numbers),
    the first column kept on one line."""

    def cell(tag: str, value: object, j: int) -> str:
        style = "text-align:right" if j >= align_right_from else "white-space:nowrap"
        return f'<{tag} style="{style}">{html.escape(str(value))}</{tag}>'

    head = "".join(cell("th", h, j) for j, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", v, j) for j, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<table style="font-size:0.85em"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
