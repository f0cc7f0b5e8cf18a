"""Inference costs of the course's model table: the key/value cache, the bytes read and FLOPs done per generated
token, and what grouped-query attention saved.

The KV-cache byte count is the graded ``kv_cache_bytes`` of the reference; this module only applies it to
:class:`~autograder.models.ModelConfig` rows and adds the per-token roofline quantities:

* **weights read per decoded token**: at batch 1, generating one token multiplies the new token's vector by every
  weight matrix once, so every weight byte of a matrix product is read once per token; the lookup tables are not
  multiplied, and a lookup reads one row per token (an untied input table of ``V x D`` costs ``D`` values per
  token, not ``V D``; a tied table is read whole by the output layer). The attention reads the cache so far;
* **the cache a layer keeps**: one key and one value per earlier token, but never more than the model's context
  (``max_positions``; asking past it is a ``ValueError``) nor, for a layer with a sliding window (Mistral 7B v0.1:
  4,096; ``data/sliding_windows.csv``), more than the window: a rolling buffer overwrites the oldest entries;
* **FLOPs per token**: ``2 N`` for a forward pass through ``N`` parameters (one multiply and one add per weight),
  ``6 N`` for training (the backward pass costs twice the forward), the usual approximation of Kaplan et al. (2020)
  and EleutherAI's Transformer Math 101; plus attention's own: a new token's query meets every cached key
  (``2 d_head`` FLOPs per head and cached token for ``q.k``, the same again for the weighted sum of values), so
  ``4 L n_heads d_head T`` FLOPs at ``T`` cached tokens (Kaplan et al.'s ``2 n_layer n_ctx d_attn`` per forward
  token counts the first product only, as their Table 1 says);
* **compressed caches**: multi-head latent attention (DeepSeek-V2/V3) caches one ``kv_lora_rank``-wide latent
  plus ``qk_rope_head_dim`` decoupled RoPE key values per token and layer instead of ``2 n_kv d_head``
  (:func:`mla_kv_values_per_token`); a paged cache (vLLM's PagedAttention) allocates fixed blocks of tokens, so a
  sequence's cache is rounded up to whole blocks (:func:`paged_kv_cache_bytes`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from autograder.models import ModelConfig, parameter_breakdown
from autograder.reference.numpy_ref import kv_cache_bytes, tensor_bytes

__all__ = [
    "SLIDING_WINDOWS_CSV",
    "sliding_window",
    "kv_tokens_per_layer",
    "kv_cache_bytes_per_token",
    "kv_cache_bytes_for",
    "mha_kv_cache_bytes_per_token",
    "decode_weight_parameters",
    "decode_bytes_per_token",
    "matmul_parameters",
    "forward_flops_per_token",
    "attention_flops_per_token",
    "decode_flops_per_token",
    "training_flops_per_token",
    "MLAConfig",
    "DEEPSEEK_V3_MLA",
    "mla_kv_values_per_token",
    "paged_kv_cache_bytes",
]

SLIDING_WINDOWS_CSV = Path(__file__).resolve().parent.parent / "data" / "sliding_windows.csv"


@lru_cache(maxsize=1)
def _windows() -> dict[str, int]:
    with open(SLIDING_WINDOWS_CSV, newline="", encoding="utf-8") as f:
        return {row["model"]: int(row["sliding_window"]) for row in csv.DictReader(f)}


def sliding_window(cfg: ModelConfig) -> int | None:
    """The attention window of ``cfg``'s layers (``data/sliding_windows.csv``), or ``None`` for full attention."""
    return _windows().get(cfg.model)


def kv_tokens_per_layer(cfg: ModelConfig, n_tokens: int) -> int:
    """Cache entries one layer keeps after ``n_tokens`` tokens: ``min(n_tokens, window)``.

    Raises ``ValueError`` for ``n_tokens`` past the model's context (``cfg.max_positions``) or negative.
    """
    if int(n_tokens) != n_tokens or n_tokens < 0:
        raise ValueError(f"n_tokens must be a non-negative integer, got {n_tokens!r}")
    if n_tokens > cfg.max_positions:
        raise ValueError(
            f"{cfg.model} has a context of {cfg.max_positions:,} tokens; {n_tokens:,} is past it "
            "(cap the context with min(n_tokens, cfg.max_positions))"
        )
    window = sliding_window(cfg)
    return int(n_tokens) if window is None else min(int(n_tokens), window)


def kv_cache_bytes_per_token(cfg: ModelConfig, dtype: str = "bfloat16") -> int:
    """``2 * n_layers * n_kv_heads * head_dim * bytes``: the cache one more token of context costs."""
    return kv_cache_bytes(cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, 1, dtype)


def kv_cache_bytes_for(cfg: ModelConfig, n_tokens: int, dtype: str = "bfloat16", batch_size: int = 1) -> int:
    """The cache of ``batch_size`` sequences of ``n_tokens`` tokens each, a sliding window's layers holding at most
    the window (:func:`kv_tokens_per_layer`; ``ValueError`` past the model's context)."""
    kept = kv_tokens_per_layer(cfg, n_tokens)
    return kv_cache_bytes(cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, kept, dtype, batch_size)


def mha_kv_cache_bytes_per_token(cfg: ModelConfig, dtype: str = "bfloat16") -> int:
    """What the cache would cost per token with one key/value head per query head (no grouped-query sharing)."""
    return kv_cache_bytes(cfg.n_layers, cfg.n_heads, cfg.head_dim, 1, dtype)


def decode_weight_parameters(cfg: ModelConfig) -> int:
    """Weights read to generate one token at batch 1: every weight of a matrix product once
    (:func:`matmul_parameters`, the output table included, tied or not), plus one row of each lookup table: the
    token's row of the input table (``D`` values) and, with learned positions, its position's row."""
    rows = cfg.d_model * (2 if cfg.position_encoding == "learned" else 1)
    return matmul_parameters(cfg) + rows


def decode_bytes_per_token(cfg: ModelConfig, context: int, dtype: str = "bfloat16") -> int:
    """Bytes read to generate one token at batch 1 after ``context`` cached tokens:
    :func:`decode_weight_parameters` in ``dtype``, plus the cache each layer keeps (:func:`kv_cache_bytes_for`:
    capped by a sliding window; ``ValueError`` past the model's context)."""
    return tensor_bytes(decode_weight_parameters(cfg), dtype) + kv_cache_bytes_for(cfg, context, dtype)


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


def attention_flops_per_token(cfg: ModelConfig, context: int) -> int:
    """Attention's own FLOPs for one new token after ``context`` cached tokens: ``4 L n_heads d_head T`` with ``T``
    the entries each layer attends to (:func:`kv_tokens_per_layer`), ``2 d_head`` FLOPs per head and entry for the
    score ``q.k`` and as many for the weighted sum of values. BERT attends both ways and is not decoded: 0."""
    if cfg.family == "bert":
        return 0
    return 4 * cfg.n_layers * cfg.n_heads * cfg.head_dim * kv_tokens_per_layer(cfg, context)


def decode_flops_per_token(cfg: ModelConfig, context: int) -> int:
    """FLOPs to decode one token after ``context`` cached tokens: ``2 N`` plus :func:`attention_flops_per_token`."""
    return forward_flops_per_token(cfg) + attention_flops_per_token(cfg, context)


def training_flops_per_token(cfg: ModelConfig) -> int:
    """Three times the forward: ``6 N`` in the usual approximation (backward = two forwards)."""
    return 3 * forward_flops_per_token(cfg)


@dataclass(frozen=True)
class MLAConfig:
    """The cache-relevant shape of a multi-head latent attention model: ``n_layers``, ``n_heads``, the latent
    width ``kv_lora_rank``, the decoupled RoPE key width ``qk_rope_head_dim``, and the per-head key (``qk_nope +
    qk_rope``) and value widths a plain multi-head cache would store instead."""

    model: str
    n_layers: int
    n_heads: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    source: str


#: DeepSeek-V3's attention shape, from deepseek-ai/DeepSeek-V3 config.json (num_hidden_layers 61,
#: num_attention_heads 128, kv_lora_rank 512, qk_nope_head_dim 128, qk_rope_head_dim 64, v_head_dim 128)
DEEPSEEK_V3_MLA = MLAConfig(
    "DeepSeek-V3", 61, 128, 512, 128, 64, 128, "deepseek-ai/DeepSeek-V3 config.json; DeepSeek-AI, arXiv:2412.19437"
)


def mla_kv_values_per_token(mla: MLAConfig) -> dict[str, int]:
    """Values cached per token, all layers: ``{"mla": L (kv_lora_rank + qk_rope_head_dim), "mha": L n_heads
    (qk_nope + qk_rope + v_head_dim)}`` -- the latent cache against one key and value per head."""
    per_head = mla.qk_nope_head_dim + mla.qk_rope_head_dim + mla.v_head_dim
    return {
        "mla": mla.n_layers * (mla.kv_lora_rank + mla.qk_rope_head_dim),
        "mha": mla.n_layers * mla.n_heads * per_head,
    }


def paged_kv_cache_bytes(
    cfg: ModelConfig, seq_lens: list[int], block_tokens: int = 16, dtype: str = "bfloat16"
) -> dict[str, int]:
    """A paged KV cache (vLLM's PagedAttention, Kwon et al., 2023, arXiv:2309.06180; default 16 tokens per
    block) for sequences of ``seq_lens`` tokens: ``{"paged": whole blocks, "exact": the tokens' own bytes,
    "contiguous": every sequence reserved at the model's full context}``. Raises ``ValueError`` for a
    non-positive ``block_tokens`` or a length past the context."""
    if int(block_tokens) != block_tokens or block_tokens < 1:
        raise ValueError(f"block_tokens must be a positive integer, got {block_tokens!r}")
    per_token = kv_cache_bytes_per_token(cfg, dtype)
    kept = [kv_tokens_per_layer(cfg, n) for n in seq_lens]
    return {
        "paged": sum(-(-k // block_tokens) * block_tokens for k in kept) * per_token,
        "exact": sum(kept) * per_token,
        "contiguous": len(seq_lens) * kv_tokens_per_layer(cfg, cfg.max_positions) * per_token,
    }
