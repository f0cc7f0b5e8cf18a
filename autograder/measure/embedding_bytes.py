"""Bytes an embedding table's lookup and gradients store and move.

Every count is built from the reference's byte formulas, :func:`~autograder.reference.numpy_ref.tensor_bytes`
(bytes per dtype) and :func:`~autograder.reference.numpy_ref.lookup_bytes` (the rows a lookup reads), so a dtype's
size is stated in one place. Token ids and the row indices of a sparse gradient are int64, as in PyTorch.

Bytes *moved* count what an ideal kernel must read plus write, each once (the benchmark divides them by the time):

* forward ``out = W[ids]``: the ids read, ``n`` rows read, the ``(n, D)`` output written;
* dense backward: the ids and ``grad_out`` read, the ``(V, D)`` gradient written;
* sparse backward, coalesced: the ids and ``grad_out`` read, ``U`` summed rows and their indices written;
* sparse backward, uncoalesced (``nn.Embedding(sparse=True)``): its values tensor *is* ``grad_out`` (a view,
  nothing copied), so only the ids are read and written again as the ``(1, n)`` index tensor.

Every function raises ``ValueError`` (from ``tensor_bytes``) for an unknown dtype or a negative count.
"""

from __future__ import annotations

import numpy as np

from autograder.reference.numpy_ref import lookup_bytes, tensor_bytes

__all__ = [
    "INDEX_BYTES",
    "dense_gradient_bytes",
    "sparse_gradient_bytes",
    "forward_bytes",
    "dense_backward_bytes",
    "sparse_backward_bytes",
    "sparse_uncoalesced_bytes",
]

#: one int64 token id or row index (torch's sparse COO gradients store one per row)
INDEX_BYTES = np.dtype(np.int64).itemsize


def dense_gradient_bytes(vocab_size: int, dim: int, dtype: str = "float32") -> int:
    """Bytes of a dense ``(V, D)`` gradient: the whole table's size, however few rows the batch touched."""
    return tensor_bytes(vocab_size * dim, dtype)


def sparse_gradient_bytes(n_rows: int, dim: int, dtype: str = "float32", index_bytes: int = INDEX_BYTES) -> int:
    """Bytes of a row-sparse gradient holding ``n_rows`` rows: ``(n_rows, D)`` values plus one index per row."""
    return tensor_bytes(n_rows * dim, dtype) + n_rows * index_bytes


def forward_bytes(n_tokens: int, dim: int, dtype: str = "float32", index_bytes: int = INDEX_BYTES) -> int:
    """Bytes an ideal lookup moves: ``n`` ids read, ``n`` rows read, the ``(n, D)`` output written."""
    return n_tokens * index_bytes + lookup_bytes(n_tokens, dim, dtype) + tensor_bytes(n_tokens * dim, dtype)


def dense_backward_bytes(
    n_tokens: int, vocab_size: int, dim: int, dtype: str = "float32", index_bytes: int = INDEX_BYTES
) -> int:
    """Bytes an ideal dense scatter-add moves: ids and ``grad_out (n, D)`` read, the ``(V, D)`` gradient written."""
    return n_tokens * index_bytes + tensor_bytes(n_tokens * dim, dtype) + dense_gradient_bytes(vocab_size, dim, dtype)


def sparse_backward_bytes(
    n_tokens: int, n_rows: int, dim: int, dtype: str = "float32", index_bytes: int = INDEX_BYTES
) -> int:
    """Bytes an ideal coalesced row-sparse gradient moves: ids and ``grad_out`` read, ``n_rows`` (``U``) summed
    rows and their indices written (:func:`sparse_gradient_bytes`)."""
    return (
        n_tokens * index_bytes
        + tensor_bytes(n_tokens * dim, dtype)
        + sparse_gradient_bytes(n_rows, dim, dtype, index_bytes)
    )


def sparse_uncoalesced_bytes(n_tokens: int, index_bytes: int = INDEX_BYTES) -> int:
    """Bytes of ``nn.Embedding(sparse=True)``'s uncoalesced gradient: the ids read, and written again as its index
    tensor; its values tensor is ``grad_out`` itself."""
    return 2 * n_tokens * index_bytes
