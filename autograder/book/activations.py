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
