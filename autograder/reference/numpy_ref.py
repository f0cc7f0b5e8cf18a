"""NumPy reference implementations of the graded functions (see ``course-contract.md``).

Each function reads like the formula in the book. Shapes use ``V`` for the vocabulary size, ``D`` for the
embedding dimension, ``T`` for the sequence length, ``B`` for the batch and ``N`` for rows of logits. "ids" are
integer arrays of any shape ``S``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "xavier_uniform",
    "embedding_forward",
    "one_hot",
    "nearest_neighbors",
    "lookup_cost",
    "sinusoidal_positions",
    "add_positions",
    "apply_rope",
    "interleaved_to_half",
    "llama3_inv_freq",
    "rope_cost",
    "embedding_parameters",
    "tensor_bytes",
    "training_bytes",
    "lookup_bytes",
    "DTYPE_BYTES",
    "kv_cache_bytes",
    "TRAINING_DTYPES",
    "optimizer_step_bytes",
    "embedding_backward",
    "sparse_embedding_backward",
    "softmax_cross_entropy",
    "numerical_gradient",
    "chunked_cross_entropy",
    "backward_elements",
]


# --------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------
def _check_ids(ids, vocab_size: int) -> np.ndarray:
    """Return ``ids`` as an integer array, raising ``TypeError`` for non-integer and ``IndexError`` for
    out-of-range ids (NumPy would silently wrap negative ids to the end of the table)."""
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must be an integer array, got dtype {ids.dtype}")
    if ids.size:
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= vocab_size:
            bad = lo if lo < 0 else hi
            raise IndexError(f"token id {bad} is out of range for a vocabulary of {vocab_size}")
    return ids


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


# --------------------------------------------------------------------------------------------------------------
# token embeddings
# --------------------------------------------------------------------------------------------------------------
def xavier_uniform(vocab_size: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Xavier/Glorot uniform table: float32 ``(V, D)`` drawn from ``U(-a, a)``, ``a = sqrt(6 / (V + D))``.

    The values come from one call ``rng.uniform(-a, a, size=(V, D))``, so the same generator state gives the
    same table. Raises ``ValueError`` for non-positive sizes.
    """
    _check_positive(vocab_size=vocab_size, dim=dim)
    a = math.sqrt(6.0 / (vocab_size + dim))
    return rng.uniform(-a, a, size=(vocab_size, dim)).astype(np.float32)


def embedding_forward(weight: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Look up rows of ``weight`` ``(V, D)``: returns ``ids.shape + (D,)`` in ``weight.dtype``.

    ``out[..., :] = weight[ids[...], :]``. Raises ``TypeError`` for non-integer ids and ``IndexError`` for an id
    ``< 0`` or ``>= V``.
    """
    ids = _check_ids(ids, weight.shape[0])
    return weight[ids]


def one_hot(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """float32 one-hot codes ``ids.shape + (V,)``: ``out[..., v] = 1`` where ``v == ids[...]``, else 0.

    ``one_hot(ids, V) @ weight`` equals ``embedding_forward(weight, ids)``. Same errors as the lookup.
    """
    _check_positive(vocab_size=vocab_size)
    ids = _check_ids(ids, vocab_size)
    out = np.zeros(ids.shape + (vocab_size,), dtype=np.float32)
    np.put_along_axis(out, ids[..., None].astype(np.intp), 1.0, axis=-1)
    return out


def cosine_similarity_to(weight: np.ndarray, query_id: int) -> np.ndarray:
    """float64 ``(V,)`` cosine similarity of every row of ``weight`` to row ``query_id`` (0 for a zero row)."""
    w = np.asarray(weight, dtype=np.float64)
    norms = np.linalg.norm(w, axis=1)
    unit = w / np.where(norms == 0.0, 1.0, norms)[:, None]
    return unit @ unit[query_id]


def nearest_neighbors(weight: np.ndarray, query_id: int, k: int) -> np.ndarray:
    """int64 ``(k,)``: ids of the ``k`` rows most cosine-similar to row ``query_id``, the query excluded.

    Most similar first; similarities equal to 12 decimals go to the lower id. Raises ``IndexError`` for a query outside
    ``[0, V)`` and ``ValueError`` unless ``1 <= k <= V - 1``.
    """
    vocab_size = weight.shape[0]
    if not 0 <= int(query_id) < vocab_size:
        raise IndexError(f"query_id {query_id} is out of range for a vocabulary of {vocab_size}")
    if not 1 <= int(k) <= vocab_size - 1:
        raise ValueError(f"k must be between 1 and V - 1 = {vocab_size - 1}, got {k}")
    # round away float noise so that parallel rows tie exactly and the tie goes to the lower id
    sims = np.round(cosine_similarity_to(weight, int(query_id)), 12)
    sims[int(query_id)] = -np.inf
    order = np.argsort(-sims, kind="stable")  # stable: ties keep ascending id order
    return order[: int(k)].astype(np.int64)


def _check_count(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def lookup_cost(n_tokens: int, vocab_size: int, dim: int) -> tuple[int, int, int]:
    """What embedding ``n_tokens`` ids costs with a float32 ``(V, D)`` table, two ways: ``(lookup_bytes,
    one_hot_bytes, one_hot_flops)``, Python ints.

    * ``lookup_bytes`` -- the lookup reads one row of ``D`` float32 values per token and writes it to the output:
      ``2 * n * D * 4`` bytes (the ids are not counted).
    * ``one_hot_bytes`` -- the one-hot product writes the float32 ``(n, V)`` one-hot matrix, reads it back for the
      product, reads the whole table once and writes the ``(n, D)`` output: ``2 * n * V * 4 + V * D * 4 + n * D * 4``.
    * ``one_hot_flops`` -- the product's multiply-adds, two FLOPs each: ``2 * n * V * D``.

    Raises ``ValueError`` for a negative ``n_tokens`` or a ``vocab_size`` or ``dim`` that is not a positive integer.
    """
    _check_count(n_tokens=n_tokens)
    _check_positive(vocab_size=vocab_size, dim=dim)
    n, v, d = int(n_tokens), int(vocab_size), int(dim)
    row = tensor_bytes(d, "float32")
    lookup = n * row + n * row
    one_hot_matrix = tensor_bytes(n * v, "float32")
    one_hot = 2 * one_hot_matrix + v * row + n * row
    return lookup, one_hot, 2 * n * v * d


# --------------------------------------------------------------------------------------------------------------
# positional encodings
# --------------------------------------------------------------------------------------------------------------
def _inverse_frequencies(dim: int, base: float) -> np.ndarray:
    """float64 ``(D/2,)``: ``base ** (-2i / D)`` for ``i = 0 .. D/2 - 1``."""
    return base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)


def sinusoidal_positions(max_len: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """float32 ``(max_len, D)`` table: ``PE[p, 2i] = sin(p / base**(2i/D))``, ``PE[p, 2i+1] = cos(...)``.

    Raises ``ValueError`` for an odd ``dim`` or non-positive sizes.
    """
    _check_positive(max_len=max_len, dim=dim)
    if dim % 2:
        raise ValueError(f"dim must be even for sin/cos pairs, got {dim}")
    angles = np.arange(max_len, dtype=np.float64)[:, None] * _inverse_frequencies(dim, base)[None, :]
    table = np.empty((max_len, dim), dtype=np.float64)
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles)
    return table.astype(np.float32)


def add_positions(token_embeddings: np.ndarray, position_table: np.ndarray) -> np.ndarray:
    """Add position rows ``0 .. T-1`` of ``position_table`` ``(L, D)`` to ``(T, D)`` or ``(B, T, D)`` embeddings.

    Returns the same shape as ``token_embeddings``. Raises ``ValueError`` when ``T > L``, when the dimensions
    differ, or when the embeddings are not 2-D or 3-D.
    """
    x = np.asarray(token_embeddings)
    if x.ndim not in (2, 3):
        raise ValueError(f"token_embeddings must be (T, D) or (B, T, D), got shape {x.shape}")
    seq_len, dim = x.shape[-2:]
    max_len, table_dim = position_table.shape
    if table_dim != dim:
        raise ValueError(f"position table has dim {table_dim}, token embeddings have dim {dim}")
    if seq_len > max_len:
        raise ValueError(f"sequence length {seq_len} exceeds the position table's {max_len} rows")
    return x + position_table[:seq_len]


def apply_rope(x: np.ndarray, positions: np.ndarray, base: float = 10000.0) -> np.ndarray:
    """Rotary position embedding of ``x`` ``(..., T, D)`` at ``positions`` ``(T,)``; same shape and dtype.

    Each interleaved pair ``(x[..., 2i], x[..., 2i+1])`` is rotated by ``theta = positions[t] * base**(-2i/D)``:
    ``(a, b) -> (a cos theta - b sin theta, a sin theta + b cos theta)``. Consequently
    ``apply_rope(q, [m]) . apply_rope(k, [n])`` depends on ``m - n`` only. Raises ``ValueError`` for an odd
    ``D`` or when ``len(positions) != T``.
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must be (..., T, D), got shape {x.shape}")
    seq_len, dim = x.shape[-2:]
    if dim % 2:
        raise ValueError(f"the last dimension must be even for rotary pairs, got {dim}")
    positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    if positions.shape[0] != seq_len:
        raise ValueError(f"got {positions.shape[0]} positions for a sequence of length {seq_len}")
    theta = positions[:, None] * _inverse_frequencies(dim, base)[None, :]  # (T, D/2)
    cos, sin = np.cos(theta), np.sin(theta)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty(np.broadcast_shapes(x.shape), dtype=np.result_type(x.dtype, np.float32))
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out.astype(x.dtype) if np.issubdtype(x.dtype, np.floating) else out


def interleaved_to_half(x: np.ndarray) -> np.ndarray:
    """Reorder the last axis ``D`` of ``x`` ``(..., D)`` from RoPE's interleaved layout (pair ``i`` at ``2i, 2i+1``)
    to the half-split ``rotate_half`` layout (pair ``i`` at ``i, i + D/2``): the even dimensions, then the odd ones.
    A new array of the same shape and dtype. ``ValueError`` for an odd or empty last axis (or a 0-d input).
    The inverse permutation, back to interleaved, is ``np.argsort`` of ``interleaved_to_half(np.arange(D))``.
    """
    x = np.asarray(x)
    if x.ndim < 1 or x.shape[-1] == 0 or x.shape[-1] % 2:
        raise ValueError(f"the last axis must hold an even, positive number of dimensions, got shape {x.shape}")
    return np.concatenate([x[..., 0::2], x[..., 1::2]], axis=-1)


def llama3_inv_freq(
    dim: int,
    base: float,
    factor: float,
    original_max_positions: int,
    low_freq_factor: float = 1.0,
    high_freq_factor: float = 4.0,
) -> np.ndarray:
    """Llama 3.1's rescaled RoPE frequencies, float64 ``(dim // 2,)``.

    ``f_i = base**(-2i/dim)`` with wavelength ``w_i = 2 pi / f_i``: kept when ``w_i < original_max_positions /
    high_freq_factor``, divided by ``factor`` when ``w_i > original_max_positions / low_freq_factor``, otherwise
    ``(1 - s) f_i / factor + s f_i`` with ``s = (original_max_positions / w_i - low_freq_factor) /
    (high_freq_factor - low_freq_factor)``. ``ValueError`` for an odd or non-positive ``dim``, ``base <= 1``,
    ``factor < 1``, a non-positive ``original_max_positions`` or unless ``high_freq_factor > low_freq_factor > 0``.
    """
    if isinstance(dim, bool) or int(dim) != dim or dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even integer >= 2, got {dim!r}")
    if not base > 1:
        raise ValueError(f"base must exceed 1, got {base!r}")
    if not factor >= 1:
        raise ValueError(f"factor must be >= 1, got {factor!r}")
    if not original_max_positions > 0:
        raise ValueError(f"original_max_positions must be positive, got {original_max_positions!r}")
    if not high_freq_factor > low_freq_factor > 0:
        raise ValueError(
            f"need high_freq_factor > low_freq_factor > 0, got {high_freq_factor!r} and {low_freq_factor!r}"
        )
    freqs = _inverse_frequencies(int(dim), float(base))
    wavelength = 2 * math.pi / freqs
    smooth = (original_max_positions / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)
    blended = (1 - smooth) * freqs / factor + smooth * freqs
    return np.where(
        wavelength > original_max_positions / low_freq_factor,
        freqs / factor,
        np.where(wavelength < original_max_positions / high_freq_factor, freqs, blended),
    )


def rope_cost(seq_len: int, dim: int, batch: int = 1, n_heads: int = 1) -> tuple[int, int]:
    """``(cache_values, apply_flops)`` of rotary embeddings for ``batch * n_heads`` vectors of ``dim`` at each of
    ``seq_len`` positions, Python ints.

    * ``cache_values`` -- the rotation cache: ``cos`` and ``sin`` of the ``seq_len x dim/2`` angles, ``seq_len *
      dim`` values, built once per sequence length whatever the batch and the heads.
    * ``apply_flops`` -- rotating one pair ``(a, b)`` into ``(a cos - b sin, a sin + b cos)`` is 4 multiplies and 2
      additions, 6 FLOPs; every vector has ``dim / 2`` pairs: ``3 * batch * n_heads * seq_len * dim``.

    Raises ``ValueError`` for an odd ``dim``, a negative ``seq_len``, or a ``dim``, ``batch`` or ``n_heads`` that is
    not a positive integer.
    """
    _check_count(seq_len=seq_len)
    _check_positive(dim=dim, batch=batch, n_heads=n_heads)
    if dim % 2:
        raise ValueError(f"dim must be even for rotary pairs, got {dim}")
    pairs = int(seq_len) * (int(dim) // 2)
    return 2 * pairs, 6 * int(batch) * int(n_heads) * pairs


# --------------------------------------------------------------------------------------------------------------
# memory scaling
# --------------------------------------------------------------------------------------------------------------
#: bytes per element; int4 packs two values per byte.
DTYPE_BYTES = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0, "int8": 1.0, "int4": 0.5}
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}
#: the dtypes ``training_bytes`` accepts for weights and gradients: floating point only
TRAINING_DTYPES = ("float32", "float16", "bfloat16")


def embedding_parameters(vocab_size: int, dim: int) -> int:
    """Parameters of a ``(V, D)`` table: ``V * D``. Raises ``ValueError`` for non-positive sizes."""
    _check_positive(vocab_size=vocab_size, dim=dim)
    return int(vocab_size) * int(dim)


def tensor_bytes(n_elements: int, dtype: str) -> int:
    """Bytes to store ``n_elements`` values of ``dtype`` (int4: half a byte each, rounded up to whole bytes).

    Raises ``ValueError`` for a dtype other than float32, float16, bfloat16, int8, int4, or a negative count.
    """
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(DTYPE_BYTES)}")
    if int(n_elements) != n_elements or n_elements < 0:
        raise ValueError(f"n_elements must be a non-negative integer, got {n_elements!r}")
    n = int(n_elements)
    return (n + 1) // 2 if dtype == "int4" else n * int(DTYPE_BYTES[dtype])


def training_bytes(n_params: int, dtype: str = "float32", optimizer: str = "adam") -> int:
    """Bytes to train ``n_params`` parameters: weights + gradients in ``dtype``, optimizer state in float32
    (sgd: none, momentum: one value, adam: two), plus a float32 master copy when ``dtype`` is not float32.

    bfloat16 + Adam: 2 + 2 + 8 + 4 = 16 bytes per parameter. Activations are not counted. Raises ``ValueError``
    for an unknown dtype or optimizer, and for ``int8``/``int4``: integer formats store trained weights for
    inference, but gradients and the updates they drive need a floating-point format (see ``TRAINING_DTYPES``).
    """
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZER_STATES)}")
    if dtype in DTYPE_BYTES and dtype not in TRAINING_DTYPES:
        raise ValueError(
            f"cannot train in {dtype!r}: weights and gradients need a floating-point dtype, one of "
            f"{list(TRAINING_DTYPES)} ({dtype} is a storage format for inference)"
        )
    weights_and_grads = 2 * tensor_bytes(n_params, dtype)
    optimizer_state = OPTIMIZER_STATES[optimizer] * tensor_bytes(n_params, "float32")
    master = 0 if dtype == "float32" else tensor_bytes(n_params, "float32")
    return weights_and_grads + optimizer_state + master


def optimizer_step_bytes(n_params: int, dtype: str = "float32", optimizer: str = "adam") -> int:
    """Bytes one fused optimizer step reads plus writes, each array touched once (the least any implementation
    moves), for ``n_params`` parameters trained in ``dtype`` as :func:`training_bytes` keeps them.

    It reads the gradient (``dtype``), the float32 weights (the master copy when ``dtype`` is not float32) and the
    float32 optimizer state (sgd: none, momentum: one value, adam: two per parameter); it writes the float32
    weights and the state back and, when ``dtype`` is not float32, the ``dtype`` copy of the weights that the next
    forward pass reads. float32 + Adam: (4 + 4 + 8) read + (4 + 8) written = 28 bytes per parameter.

    Raises ``ValueError`` for a negative ``n_params``, an unknown optimizer or dtype, and ``int8``/``int4``.
    """
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZER_STATES)}")
    if dtype in DTYPE_BYTES and dtype not in TRAINING_DTYPES:
        raise ValueError(f"cannot train in {dtype!r}: a step updates floating-point weights, one of {TRAINING_DTYPES}")
    grad = tensor_bytes(n_params, dtype)
    weights = tensor_bytes(n_params, "float32")
    state = OPTIMIZER_STATES[optimizer] * tensor_bytes(n_params, "float32")
    low_precision_copy = 0 if dtype == "float32" else tensor_bytes(n_params, dtype)
    reads = grad + weights + state
    writes = weights + state + low_precision_copy
    return reads + writes


def lookup_bytes(n_tokens: int, dim: int, dtype: str) -> int:
    """Bytes read from the table to embed ``n_tokens`` tokens: one row of ``dim`` values per token
    (``n_tokens * tensor_bytes(dim, dtype)``; an int4 row is rounded up to whole bytes)."""
    if int(n_tokens) != n_tokens or n_tokens < 0:
        raise ValueError(f"n_tokens must be a non-negative integer, got {n_tokens!r}")
    return int(n_tokens) * tensor_bytes(dim, dtype)


def kv_cache_bytes(
    n_layers: int, n_kv_heads: int, head_dim: int, n_tokens: int, dtype: str = "bfloat16", batch_size: int = 1
) -> int:
    """Bytes of the key/value cache that attention keeps while generating: for every one of ``n_tokens`` cached
    positions of each of ``batch_size`` sequences, every layer stores one key and one value vector of
    ``n_kv_heads * head_dim`` values: ``2 * n_layers * batch_size * n_tokens * tensor_bytes(n_kv_heads * head_dim,
    dtype)`` (an int4 vector is rounded up to whole bytes, like a table row).

    Raises ``ValueError`` for non-positive ``n_layers``, ``n_kv_heads``, ``head_dim`` or ``batch_size``, a negative
    ``n_tokens``, or an unknown dtype.
    """
    _check_positive(n_layers=n_layers, n_kv_heads=n_kv_heads, head_dim=head_dim, batch_size=batch_size)
    if int(n_tokens) != n_tokens or n_tokens < 0:
        raise ValueError(f"n_tokens must be a non-negative integer, got {n_tokens!r}")
    vector = tensor_bytes(int(n_kv_heads) * int(head_dim), dtype)
    return 2 * int(n_layers) * int(batch_size) * int(n_tokens) * vector


# --------------------------------------------------------------------------------------------------------------
# backpropagation
# --------------------------------------------------------------------------------------------------------------
def _check_grad_out(grad_out: np.ndarray, ids: np.ndarray) -> np.ndarray:
    grad_out = np.asarray(grad_out)
    if grad_out.shape[:-1] != ids.shape or grad_out.ndim != ids.ndim + 1:
        raise ValueError(f"grad_out must have shape ids.shape + (D,) = {ids.shape} + (D,), got {grad_out.shape}")
    return grad_out


def embedding_backward(grad_out: np.ndarray, ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Gradient of ``embedding_forward`` w.r.t. the table: dense ``(V, D)`` in ``grad_out.dtype``.

    ``G[v] = sum over positions p with ids[p] == v of grad_out[p]`` -- a scatter-add, so repeated ids
    accumulate (``G[ids] += g`` would keep only one of them). ``grad_out`` has shape ``ids.shape + (D,)``.
    """
    ids = _check_ids(ids, vocab_size)
    grad_out = _check_grad_out(grad_out, ids)
    dim = grad_out.shape[-1]
    grad = np.zeros((vocab_size, dim), dtype=grad_out.dtype)
    np.add.at(grad, ids.reshape(-1), grad_out.reshape(-1, dim))
    return grad


def sparse_embedding_backward(grad_out: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-sparse gradient: ``(unique_ids (U,), row_grads (U, D))`` with ``unique_ids`` sorted ascending and
    ``row_grads[j]`` the summed gradient of ``unique_ids[j]``. Only touched rows are stored."""
    ids = _check_ids(ids, np.iinfo(np.int64).max)
    grad_out = _check_grad_out(grad_out, ids)
    dim = grad_out.shape[-1]
    unique_ids, inverse = np.unique(ids.reshape(-1), return_inverse=True)
    row_grads = np.zeros((unique_ids.shape[0], dim), dtype=grad_out.dtype)
    np.add.at(row_grads, inverse.reshape(-1), grad_out.reshape(-1, dim))
    return unique_ids, row_grads


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Stable ``log softmax`` over the last axis: ``z - max(z) - log(sum(exp(z - max(z))))``."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``(N, C)`` logits against ``(N,)`` integer targets, and its gradient.

    ``loss = -(1/N) sum_n log softmax(logits[n])[targets[n]]``; ``dlogits = (softmax(logits) - onehot) / N``,
    shape ``(N, C)`` in the dtype of ``logits``. Computed with the max subtracted, so logits of magnitude
    ``1e4`` stay finite. Raises ``ValueError`` for mismatched shapes or ``N == 0`` and ``IndexError`` for a
    target outside ``[0, C)``.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(f"logits must be (N, C) with N > 0, got shape {logits.shape}")
    n, n_classes = logits.shape
    targets = _check_ids(targets, n_classes)
    if targets.shape != (n,):
        raise ValueError(f"targets must have shape ({n},), got {targets.shape}")
    logp = log_softmax(logits.astype(np.float64))
    loss = -logp[np.arange(n), targets].mean()
    dlogits = np.exp(logp)
    dlogits[np.arange(n), targets] -= 1.0
    dlogits /= n
    out_dtype = logits.dtype if np.issubdtype(logits.dtype, np.floating) else np.float64
    return float(loss), dlogits.astype(out_dtype)


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of scalar ``f`` at ``x``: ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``.

    Returns an array of ``x``'s shape (and dtype, if floating). Each entry is nudged and restored in place, so
    ``x`` is left exactly as it was, also if ``f`` raises.
    """
    x = np.asarray(x)
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writes reach x
    if not np.shares_memory(flat, x) and x.size:
        raise ValueError("x must be a contiguous array so it can be perturbed in place")
    for i in range(flat.size):
        old = flat[i].copy()
        try:
            flat[i] = old + eps
            f_plus = float(f(x))
            flat[i] = old - eps
            f_minus = float(f(x))
        finally:
            flat[i] = old
        grad.reshape(-1)[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad.astype(x.dtype) if np.issubdtype(x.dtype, np.floating) else grad


def chunked_cross_entropy(
    hidden: np.ndarray, weight: np.ndarray, targets: np.ndarray, chunk_size: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean cross-entropy of the logits ``hidden @ weight.T`` and its gradients, ``chunk_size`` rows at a time.

    ``hidden``: ``(N, D)`` floating; ``weight``: the ``(V, D)`` output matrix; ``targets``: ``(N,)`` integers in
    ``[0, V)``. Returns ``(loss, dhidden (N, D), dweight (V, D))`` with the same values as building all ``N x V``
    logits and calling :func:`softmax_cross_entropy`, but never holds more than ``chunk_size x V`` logits (and
    their gradient) at once: for each chunk ``c``, ``dz_c = (softmax(z_c) - onehot) / N``, ``dhidden_c = dz_c @
    weight`` and ``dweight += dz_c.T @ hidden_c``. Gradients come back in ``hidden``'s dtype (float64 when it is
    not floating); the arithmetic is float64.

    Raises ``ValueError`` for mismatched shapes, ``N == 0`` or a ``chunk_size`` that is not a positive integer,
    ``TypeError``/``IndexError`` for non-integer or out-of-range targets.
    """
    hidden, weight = np.asarray(hidden), np.asarray(weight)
    if hidden.ndim != 2 or hidden.shape[0] == 0:
        raise ValueError(f"hidden must be (N, D) with N > 0, got shape {hidden.shape}")
    if weight.ndim != 2 or weight.shape[1] != hidden.shape[1]:
        raise ValueError(f"weight must be (V, D) with D = {hidden.shape[1]}, got shape {weight.shape}")
    _check_positive(chunk_size=chunk_size)
    n, vocab_size = hidden.shape[0], weight.shape[0]
    targets = _check_ids(targets, vocab_size)
    if targets.shape != (n,):
        raise ValueError(f"targets must have shape ({n},), got {targets.shape}")
    w64 = weight.astype(np.float64)
    dhidden = np.empty(hidden.shape, dtype=np.float64)
    dweight = np.zeros(weight.shape, dtype=np.float64)
    total = 0.0
    for start in range(0, n, int(chunk_size)):
        h = hidden[start : start + int(chunk_size)].astype(np.float64)
        rows = np.arange(h.shape[0])
        t = targets[start : start + h.shape[0]]
        logp = log_softmax(h @ w64.T)  # (c, V): the only V-wide arrays alive
        total -= logp[rows, t].sum()
        dz = np.exp(logp, out=logp)
        dz[rows, t] -= 1.0
        dz /= n
        dhidden[start : start + h.shape[0]] = dz @ w64
        dweight += dz.T @ h
    out_dtype = hidden.dtype if np.issubdtype(hidden.dtype, np.floating) else np.float64
    return total / n, dhidden.astype(out_dtype), dweight.astype(out_dtype)


def backward_elements(ids: np.ndarray, vocab_size: int, dim: int) -> tuple[int, int, int]:
    """Elements written by three ways to compute the table's gradient for a batch of ``ids`` (any shape, ``n``
    ids of which ``U`` distinct): ``(dense, sparse, index_add)``, Python ints.

    * ``dense`` -- :func:`embedding_backward`: a zero-filled ``(V, D)`` gradient, then one ``D``-row added per id:
      ``V * D + n * D``.
    * ``sparse`` -- :func:`sparse_embedding_backward`: ``U`` zero-filled rows, one row added per id, and the ``U``
      ids: ``U * D + n * D + U``.
    * ``index_add`` -- ``grad.index_add_(0, ids, grad_out)`` into a ``(V, D)`` gradient that already exists (the
      one training accumulates into): ``n * D``.

    Raises ``TypeError`` for non-integer ids, ``IndexError`` for ids outside ``[0, V)`` and ``ValueError`` for a
    ``dim`` that is not a positive integer.
    """
    ids = _check_ids(ids, vocab_size)
    _check_positive(dim=dim)
    d, n = int(dim), int(ids.size)
    unique = int(np.unique(ids).size)
    return int(vocab_size) * d + n * d, unique * d + n * d + unique, n * d
