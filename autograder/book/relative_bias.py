"""Position as a bias on the attention scores: ALiBi's fixed slopes and T5's learned bucketed bias.

Both add a ``(heads, T_q, T_k)`` term to ``q . k / sqrt(d)`` before the softmax and change nothing else:

* ALiBi (Press, Smith and Lewis 2022): ``-slope_h * (query position - key position)``, with fixed slopes, the
  geometric sequence ``2 ** (-8 h / n)``, ``h = 1 .. n`` for ``n`` heads (a power of two; otherwise the paper's
  interleaving rule, :func:`alibi_slopes`). No parameters.
* T5 (Raffel et al. 2020): one learned scalar per head and *bucket* of the relative position ``key - query``; exact
  buckets for small distances, logarithmically wider ones up to ``max_distance``, one last bucket beyond
  (:func:`t5_bucket`, as Hugging Face's ``T5Attention._relative_position_bucket`` computes it). ``num_buckets x heads``
  parameters, in T5 held by the first layer and shared by all.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["alibi_slopes", "alibi_bias", "t5_bucket"]


def alibi_slopes(n_heads: int) -> np.ndarray:
    """float64 ``(n_heads,)``: ALiBi's head slopes. ``ValueError`` for ``n_heads < 1``."""
    if n_heads < 1:
        raise ValueError(f"n_heads must be positive, got {n_heads}")

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(n_heads).is_integer():
        return np.array(power_of_two(n_heads))
    closest = 2 ** math.floor(math.log2(n_heads))
    return np.array(power_of_two(closest) + list(alibi_slopes(2 * closest)[0::2][: n_heads - closest]))


def alibi_bias(length: int, slopes: np.ndarray) -> np.ndarray:
    """float64 ``(heads, length, length)``: ``-slope * (t - s)`` for key ``s <= t``, ``-inf`` above the diagonal
    (the causal mask ALiBi is used with)."""
    distance = np.arange(length)[:, None] - np.arange(length)[None, :]
    bias = -np.asarray(slopes, np.float64)[:, None, None] * distance
    return np.where(distance >= 0, bias, -np.inf)


def t5_bucket(
    relative_position: np.ndarray, *, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> np.ndarray:
    """int64 buckets of ``relative_position = key position - query position`` (any shape), as T5 computes them.

    Bidirectional (the encoder): half the buckets for keys after the query. Causal (the decoder): only keys at or
    before the query count, later ones fall in bucket 0. In each half, distances below ``num_buckets // 2`` get
    their own bucket (``num_buckets`` halved first when bidirectional), larger ones share logarithmically wider
    buckets, and every distance from ``max_distance`` on shares the last.
    """
    rel = np.asarray(relative_position, dtype=np.int64)
    buckets = np.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        buckets += (rel > 0).astype(np.int64) * num_buckets
        rel = np.abs(rel)
    else:
        rel = -np.minimum(rel, 0)
    max_exact = num_buckets // 2
    with np.errstate(divide="ignore"):
        large = max_exact + (
            np.log(np.maximum(rel, 1) / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
        ).astype(np.int64)
    large = np.minimum(large, num_buckets - 1)
    return buckets + np.where(rel < max_exact, rel, large)
