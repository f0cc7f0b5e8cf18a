"""Zipf-distributed token ids: the synthetic token streams of the benchmark and of the memory chapter.

Natural-language token frequencies fall off roughly like ``1 / rank`` (Zipf's law), so a batch touches far fewer
distinct table rows than it has tokens; every experiment on lookups and sparse gradients draws its ids here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["zipf_token_ids", "zipf_ids"]


def zipf_token_ids(vocab_size: int, n_tokens: int, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """int64 ``(n_tokens,)`` ids in ``[0, vocab_size)`` drawn with ``P(id = r) ∝ 1 / (r + 1) ** exponent``.

    Id ``r`` is the ``(r + 1)``-th most frequent token. Raises ``ValueError`` for non-positive sizes or exponent.
    """
    if vocab_size <= 0 or n_tokens < 0 or exponent <= 0:
        raise ValueError(f"need vocab_size > 0, n_tokens >= 0, exponent > 0; got {vocab_size}, {n_tokens}, {exponent}")
    weights = 1.0 / np.arange(1, vocab_size + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights / weights.sum())
    ids = np.searchsorted(cdf, rng.random(n_tokens), side="right")
    return np.minimum(ids, vocab_size - 1).astype(np.int64)


def zipf_ids(n_tokens: int, vocab_size: int, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """int64 ``(n_tokens,)`` ids in ``[0, V)``: rank ``r = 1..V`` drawn with probability ``r**-exponent / Z``
    (:func:`zipf_token_ids`), ranks mapped to ids by a random permutation drawn from ``rng`` afterwards, so that
    frequent tokens are not neighbours in the table. Raises ``ValueError`` for non-positive sizes."""
    if n_tokens < 1 or vocab_size < 1:
        raise ValueError(f"n_tokens and vocab_size must be positive, got {n_tokens} and {vocab_size}")
    ranks = zipf_token_ids(vocab_size, n_tokens, rng, exponent)
    return rng.permutation(vocab_size)[ranks].astype(np.int64)
