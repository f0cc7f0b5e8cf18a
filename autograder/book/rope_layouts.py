"""The two memory layouts of RoPE's pairs, and the weight permutation that converts a checkpoint between them.

* ``"interleaved"`` -- Meta's reference code (and RoFormer, GPT-J): pair ``i`` is ``(x[2i], x[2i+1])``.
* ``"half"`` -- Hugging Face Transformers, vLLM and flash-attn (the ``rotate_half`` or "NeoX" style): pair ``i`` is
  ``(x[i], x[i + d/2])``, so one rotation is ``x * cos + rotate_half(x) * sin`` with
  ``rotate_half(x) = concat(-x[d/2:], x[:d/2])`` and ``cos``/``sin`` repeated twice along the head.

Both rotate pair ``i`` by ``position * inv_freq[i]``. They give the same attention scores only when the query and
key projections are permuted to match: :func:`half_split_permutation` is that permutation of one head's dimensions,
:func:`permute_heads_to_half` applies it to a projection weight or bias, head by head, the way Transformers' Llama
conversion script does (``view(n_heads, d/2, 2, ...).transpose(1, 2)``).
"""

from __future__ import annotations

import numpy as np
import torch

from autograder.reference import numpy_ref

__all__ = ["LAYOUTS", "rope_rotate", "rotate_half", "half_split_permutation", "permute_heads_to_half"]

LAYOUTS = ("interleaved", "half")


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``concat(-x[..., d/2:], x[..., :d/2])``: the partner of every half-split pair, sign included."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_rotate(
    x: torch.Tensor,
    positions: torch.Tensor,
    base: float = 10000.0,
    *,
    inv_freq: torch.Tensor | None = None,
    layout: str = "interleaved",
) -> torch.Tensor:
    """RoPE of ``x`` ``(..., T, D)`` at ``positions`` ``(T,)`` in ``x``'s dtype, angles formed on the fly in float32.

    ``inv_freq`` (``(D/2,)``, default ``base ** (-2i / D)``) lets a caller pass rescaled frequencies (position
    interpolation, YaRN, ...); ``layout`` picks which dimensions form pair ``i`` (see the module docstring).
    ``ValueError`` for an odd ``D``, a ``positions`` length other than ``T``, a wrong ``inv_freq`` shape or an unknown
    layout.
    """
    dim = x.shape[-1]
    if dim % 2:
        raise ValueError(f"the last dimension must be even for rotary pairs, got {dim}")
    if positions.shape != (x.shape[-2],):
        raise ValueError(f"positions must have shape ({x.shape[-2]},), got {tuple(positions.shape)}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if inv_freq is None:
        inv_freq = base ** (-torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim)
    elif inv_freq.shape != (dim // 2,):
        raise ValueError(f"inv_freq must have shape ({dim // 2},), got {tuple(inv_freq.shape)}")
    theta = positions.to(device=x.device, dtype=torch.float32)[:, None] * inv_freq.to(x.device, torch.float32)
    cos, sin = theta.cos().to(x.dtype), theta.sin().to(x.dtype)  # (T, D/2)
    if layout == "half":
        cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
        return x * cos + rotate_half(x) * sin
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


def half_split_permutation(head_dim: int) -> np.ndarray:
    """int64 ``(head_dim,)`` ``perm`` with ``x_half = x_interleaved[..., perm]``: the even dimensions, then the odd.

    Pair ``i`` of the interleaved layout, ``(2i, 2i+1)``, lands on ``(i, i + head_dim/2)``. ``ValueError`` for an
    odd ``head_dim``.
    """
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"head_dim must be even and positive, got {head_dim}")
    return numpy_ref.interleaved_to_half(np.arange(head_dim))  # the graded conversion, applied to indices


def permute_heads_to_half(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder the output rows of a query or key projection, ``(n_heads * head_dim, ...)`` (a weight or a bias),
    from the interleaved layout to the half-split one, head by head. ``ValueError`` when the rows do not split into
    ``n_heads`` even-sized heads.
    """
    rows = weight.shape[0]
    if rows % n_heads or (rows // n_heads) % 2:
        raise ValueError(f"{rows} rows do not split into {n_heads} heads of an even size")
    head_dim = rows // n_heads
    perm = torch.as_tensor(half_split_permutation(head_dim))
    index = (torch.arange(n_heads)[:, None] * head_dim + perm).flatten()
    return weight[index]
