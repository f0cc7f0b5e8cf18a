"""Inference costs of the course's model table: the key/value cache, the bytes read and FLOPs done per generated
token, and what grouped-query attention saved.

The KV-cache byte count is the graded ``kv_cache_bytes`` of the reference; this module only applies it to
:class:`~autograder.models.ModelConfig` rows and adds the per-token roofline quantities:

* **weights read per decoded token**: at batch 1, generating one token multiplies the new token's vector by every
  weight matrix once, so every weight byte is read once per token (``total_params * bytes``), and the attention
  reads the whole cache so far;
* **FLOPs per token**: ``2 N`` for a forward pass through ``N`` parameters (one multiply and one add per weight),
  ``6 N`` for training (the backward pass costs twice the forward), the usual approximation of Kaplan et al. (2020)
  and EleutherAI's Transformer Math 101; attention's own ``T``-dependent FLOPs are left out, as there.
"""

from __future__ import annotations

from autograder.models import ModelConfig, parameter_breakdown
from autograder.reference.numpy_ref import kv_cache_bytes, tensor_bytes

__all__ = [
    "kv_cache_bytes_per_token",
    "kv_cache_bytes_for",
    "mha_kv_cache_bytes_per_token",
    "decode_bytes_per_token",
    "matmul_parameters",
    "forward_flops_per_token",
    "training_flops_per_token",
]


def kv_cache_bytes_per_token(cfg: ModelConfig, dtype: str = "bfloat16") -> int:
    """``2 * n_layers * n_kv_heads * head_dim * bytes``: the cache one more token of context costs."""
    return kv_cache_bytes(cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, 1, dtype)


def kv_cache_bytes_for(cfg: ModelConfig, n_tokens: int, dtype: str = "bfloat16", batch_size: int = 1) -> int:
    """The cache of ``batch_size`` sequences of ``n_tokens`` tokens each."""
    return kv_cache_bytes(cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, n_tokens, dtype, batch_size)


def mha_kv_cache_bytes_per_token(cfg: ModelConfig, dtype: str = "bfloat16") -> int:
    """What the cache would cost per token with one key/value head per query head (no grouped-query sharing)."""
    return kv_cache_bytes(cfg.n_layers, cfg.n_heads, cfg.head_dim, 1, dtype)


def decode_bytes_per_token(cfg: ModelConfig, context: int, dtype: str = "bfloat16") -> int:
    """Bytes read to generate one token at batch 1 after ``context`` cached tokens: every weight once, plus the
    cache (the output table is read once more only if it is untied, which ``total_params`` already counts)."""
    return tensor_bytes(cfg.total_params, dtype) + kv_cache_bytes_for(cfg, context, dtype)


def matmul_parameters(cfg: ModelConfig) -> int:
    """Parameters that take part in a matrix product for every token: all of them, less the lookup tables (token
    and position rows are copied, not multiplied), plus the tied output layer (stored once in the token table, but
    multiplied at the output). BERT has no output layer."""
    parts = parameter_breakdown(cfg)
    tied_head = cfg.token_embedding_params if cfg.tied_embeddings and cfg.family != "bert" else 0
    return cfg.total_params - parts["token_embedding"] - parts["position_embedding"] + tied_head


def forward_flops_per_token(cfg: ModelConfig) -> int:
    """``2 * matmul_parameters(cfg)``: one multiply and one add per weight of a matrix product (the ``2N`` rule,
    with ``N`` the parameters that are multiplied rather than looked up)."""
    return 2 * matmul_parameters(cfg)


def training_flops_per_token(cfg: ModelConfig) -> int:
    """Three times the forward: ``6 N`` in the usual approximation (backward = two forwards)."""
    return 3 * forward_flops_per_token(cfg)
