"""Activation memory of a transformer layer: Korthikanti et al.'s formula, and a measurement of what autograd keeps.

Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models" (2022, arXiv:2205.05198),
section 4.1, count the bytes a GPT layer keeps for its backward pass with 16-bit activations and 1-byte dropout
masks, for sequence length ``s``, micro-batch ``b``, width ``h`` and ``a`` heads, no recomputation and no
parallelism:

* attention: ``11 s b h + 5 a s^2 b`` -- the QKV input (``2sbh``), ``Q`` and ``K`` (``4sbh``), the softmax output
  (``2as^2b``), its dropout mask (``as^2b``) and output (``2as^2b``), ``V`` (``2sbh``), the output projection's
  input (``2sbh``) and its dropout mask (``sbh``);
* MLP: ``19 s b h`` -- the first linear's input (``2sbh``), the GELU's input and output (``8sbh`` each, at ``4h``)
  and the dropout mask (``sbh``);
* two LayerNorms: ``4 s b h`` (their inputs).

Total ``s b h (34 + 5 a s / h)`` bytes per layer: activations grow with layers x width x tokens (and, through
attention's ``a s^2 b``, with the square of the sequence), not with the parameter count.

:class:`GPTLayer` is that layer in PyTorch, and :func:`saved_activation_bytes` counts the tensors autograd saves
for backward during a forward pass (``torch.autograd.graph.saved_tensors_hooks``), each storage once,
parameters excluded. On a CPU, ``F.dropout`` keeps a mask in the activations' dtype (2 bytes in bfloat16); the
layer calls ``torch.native_dropout``, the fused kernel CUDA uses, whose mask is ``bool`` (1 byte), as the formula
assumes. Two small things autograd also keeps are left out of the formula: each LayerNorm's mean and inverse
standard deviation per token (``(b, s, 1)`` tensors; PyTorch's CPU kernel keeps them in the input's dtype) and the
``(s, s)`` boolean causal mask; :func:`layernorm_statistics_bytes` and :func:`causal_mask_bytes` count them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "korthikanti_layer_bytes",
    "RECOMPUTE_STRATEGIES",
    "korthikanti_strategy_bytes",
    "LlamaRMSNorm",
    "LlamaLayer",
    "activation_bytes_per_token",
    "GPTLayer",
    "saved_activation_bytes",
    "layernorm_statistics_bytes",
    "causal_mask_bytes",
]


def korthikanti_layer_bytes(seq_len: int, batch: int, hidden: int, heads: int) -> int:
    """``s b h (34 + 5 a s / h)`` bytes, computed in integers as ``34 s b h + 5 a s^2 b``."""
    for name, value in (("seq_len", seq_len), ("batch", batch), ("hidden", hidden), ("heads", heads)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return 34 * seq_len * batch * hidden + 5 * heads * seq_len**2 * batch


#: Korthikanti et al.'s Table 2 strategies, the names :func:`korthikanti_strategy_bytes` takes
RECOMPUTE_STRATEGIES = (
    "none",
    "selective",
    "tensor",
    "tensor+sequence",
    "tensor+sequence+selective",
    "full",
)


def korthikanti_strategy_bytes(
    seq_len: int, batch: int, hidden: int, heads: int, strategy: str = "none", tensor_parallel: int = 1
) -> float:
    """Activation bytes per layer under the strategies of Korthikanti et al. (2022), Table 2 (``t`` =
    ``tensor_parallel``; a float, since a shard is ``1/t`` of a tensor):

    * ``"none"``: ``sbh (34 + 5as/h)``;
    * ``"selective"``: ``34 sbh`` -- the attention scores, softmax and its dropout (the ``5as^2b`` term) are
      recomputed in the backward pass, which is also what FlashAttention does: it never stores the ``s x s``
      matrices and keeps only a per-row softmax statistic;
    * ``"tensor"``: ``sbh (10 + 24/t + 5as/(ht))`` -- tensor parallelism splits all but the LayerNorm and dropout
      inputs, ``10 sbh``, which every device keeps whole;
    * ``"tensor+sequence"``: ``sbh/t (34 + 5as/h)`` -- sequence parallelism splits those along the sequence;
    * ``"tensor+sequence+selective"``: ``34 sbh / t``;
    * ``"full"``: ``2 sbh`` -- only the layer's input is kept and the whole layer is recomputed.

    Raises ``ValueError`` for an unknown strategy, a non-positive ``tensor_parallel``, or bad sizes.
    """
    korthikanti_layer_bytes(seq_len, batch, hidden, heads)  # validates the sizes
    if strategy not in RECOMPUTE_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {RECOMPUTE_STRATEGIES}")
    if int(tensor_parallel) != tensor_parallel or tensor_parallel < 1:
        raise ValueError(f"tensor_parallel must be a positive integer, got {tensor_parallel!r}")
    s, b, h, a, t = seq_len, batch, hidden, heads, tensor_parallel
    sbh, attn = s * b * h, 5 * a * s / h
    return {
        "none": sbh * (34 + attn),
        "selective": 34 * sbh,
        "tensor": sbh * (10 + 24 / t + attn / t),
        "tensor+sequence": sbh / t * (34 + attn),
        "tensor+sequence+selective": 34 * sbh / t,
        "full": 2 * sbh,
    }[strategy]


def causal_mask_bytes(seq_len: int) -> int:
    """The ``(s, s)`` boolean mask ``masked_fill`` keeps: ``s * s`` bytes."""
    return seq_len * seq_len


def layernorm_statistics_bytes(seq_len: int, batch: int, n_layernorms: int = 2, stat_bytes: int = 2) -> int:
    """Mean and inverse standard deviation per token for each LayerNorm: ``2 * n * s * b * stat_bytes``."""
    return 2 * n_layernorms * seq_len * batch * stat_bytes


class GPTLayer(nn.Module):
    """A pre-LayerNorm GPT layer (attention with a softmax dropout, GELU MLP of width ``4h``, residual dropouts).

    ``forward(x)``: ``(b, s, h)`` -> ``(b, s, h)``. Dropout runs through ``torch.native_dropout`` (bool masks).
    """

    def __init__(self, hidden: int, heads: int, dropout: float = 0.1):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        self.heads, self.p = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv, self.proj = nn.Linear(hidden, 3 * hidden), nn.Linear(hidden, hidden)
        self.fc1, self.fc2 = nn.Linear(hidden, 4 * hidden), nn.Linear(4 * hidden, hidden)

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        return torch.native_dropout(x, self.p, self.training)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        d = h // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(h, dim=-1)
        q, k, v = (t.reshape(b, s, self.heads, d).transpose(1, 2) for t in (q, k, v))  # (b, a, s, d)
        scores = (q @ k.transpose(-1, -2)).mul_(1 / math.sqrt(d))
        causal = torch.ones(s, s, dtype=torch.bool, device=x.device).triu(1)
        probs = self._dropout(scores.masked_fill_(causal, float("-inf")).softmax(dim=-1))
        context = (probs @ v).transpose(1, 2).reshape(b, s, h)
        x = x + self._dropout(self.proj(context))
        return x + self._dropout(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


class LlamaRMSNorm(nn.Module):
    """RMSNorm as Transformers' ``LlamaRMSNorm`` computes it: in float32 (``x / sqrt(mean(x^2) + eps)``), cast back
    to the input's dtype, then scaled by ``weight``. ``(..., hidden)`` -> same shape and dtype."""

    def __init__(self, hidden: int, eps: float = 1e-5):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(hidden)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class LlamaLayer(nn.Module):
    """A Llama decoder layer as Transformers' ``LlamaDecoderLayer`` computes it: :class:`LlamaRMSNorm`, bias-free
    ``q``, ``k``, ``v``, ``o`` projections with ``kv_heads`` shared key/value heads (grouped-query attention), rotary
    positions on ``q`` and ``k`` (the half-split layout), causal attention, RMSNorm and a SwiGLU MLP
    (``down(silu(gate(x)) * up(x))``), no dropout.

    ``attention="sdpa"`` calls ``F.scaled_dot_product_attention`` with ``enable_gqa=True`` (a fused kernel that
    keeps no ``s x s`` matrix and reads the shared key/value heads without copying them), as Transformers' default
    ``sdpa`` path does; ``"eager"`` repeats the key/value heads and computes and keeps the softmax, as its eager
    path does. ``forward(x)``: ``(b, s, h)`` ->
    ``(b, s, h)``. Raises ``ValueError`` when ``hidden`` is not a multiple of ``heads`` or ``heads`` of
    ``kv_heads``, or for an unknown ``attention``.
    """

    def __init__(
        self, hidden: int, heads: int, kv_heads: int, ffn: int, attention: str = "sdpa", theta: float = 500000.0
    ):
        super().__init__()
        if hidden % heads or heads % kv_heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads}), and heads of kv_heads")
        if attention not in ("sdpa", "eager"):
            raise ValueError(f"attention must be 'sdpa' or 'eager', got {attention!r}")
        self.heads, self.kv_heads, self.d, self.attention = heads, kv_heads, hidden // heads, attention
        self.norm1, self.norm2 = LlamaRMSNorm(hidden), LlamaRMSNorm(hidden)
        self.q = nn.Linear(hidden, hidden, bias=False)
        self.k = nn.Linear(hidden, kv_heads * self.d, bias=False)
        self.v = nn.Linear(hidden, kv_heads * self.d, bias=False)
        self.o = nn.Linear(hidden, hidden, bias=False)
        self.gate, self.up = nn.Linear(hidden, ffn, bias=False), nn.Linear(hidden, ffn, bias=False)
        self.down = nn.Linear(ffn, hidden, bias=False)
        self.register_buffer("inv_freq", theta ** (-torch.arange(0, self.d, 2, dtype=torch.float32) / self.d))

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        angles = torch.outer(torch.arange(s, dtype=torch.float32, device=x.device), self.inv_freq)
        cos = torch.cat((angles, angles), dim=-1).cos().to(x.dtype)
        sin = torch.cat((angles, angles), dim=-1).sin().to(x.dtype)
        y = self.norm1(x)
        q = self.q(y).view(b, s, self.heads, self.d).transpose(1, 2)
        k = self.k(y).view(b, s, self.kv_heads, self.d).transpose(1, 2)
        v = self.v(y).view(b, s, self.kv_heads, self.d).transpose(1, 2)
        q, k = self._rope(q, cos, sin), self._rope(k, cos, sin)
        groups = self.heads // self.kv_heads
        if self.attention == "sdpa":
            context = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=groups > 1)
        else:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.d)
            causal = torch.ones(s, s, dtype=torch.bool, device=x.device).triu(1)
            probs = scores.masked_fill(causal, float("-inf")).softmax(dim=-1, dtype=torch.float32).to(q.dtype)
            context = probs @ v
        x = x + self.o(context.transpose(1, 2).reshape(b, s, h))
        y = self.norm2(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


def saved_activation_bytes(module: nn.Module, x: torch.Tensor) -> tuple[int, list[tuple[str, tuple, int]]]:
    """Run ``module(x)`` and count what autograd saves for backward: ``(total bytes, [(dtype, shape, bytes)])``.

    Every saved tensor is traced to its storage and each storage is counted once (a view saved twice, or two views
    of one buffer, cost one buffer); the module's parameters are not activations and are excluded.
    """
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    storages: dict[int, tuple[str, tuple, int]] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params and ptr not in storages:
            storages[ptr] = (str(t.dtype).removeprefix("torch."), tuple(t.shape), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    return sum(n for _, _, n in storages.values()), list(storages.values())


def activation_bytes_per_token(
    make_layer, hidden: int, seq_len: int = 64, dtype: torch.dtype = torch.bfloat16, seed: int = 0
) -> float:
    """Saved activation bytes per token of context for the layer ``make_layer()`` (a module taking ``(1, s,
    hidden)``): :func:`saved_activation_bytes` at ``2 * seq_len`` tokens minus at ``seq_len`` tokens, over
    ``seq_len``. The difference removes what does not grow with the tokens (weight copies a CPU kernel keeps, for
    instance); for a layer whose attention keeps ``s x s`` matrices it also holds half of the quadratic term.
    Raises ``ValueError`` for ``seq_len < 1``."""
    if int(seq_len) != seq_len or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    torch.manual_seed(seed)
    layer = make_layer().to(dtype)
    measured = []
    for s in (seq_len, 2 * seq_len):
        x = torch.randn(1, s, hidden, dtype=dtype, requires_grad=True)
        measured.append(saved_activation_bytes(layer, x)[0])
    return (measured[1] - measured[0]) / seq_len
