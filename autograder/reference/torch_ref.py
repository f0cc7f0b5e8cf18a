"""PyTorch reference implementations, written independently of ``numpy_ref`` so each checks the other.

They take and return ``torch.Tensor`` (ids as ``torch.long``) and lean on PyTorch's own machinery:
``torch.nn.functional.embedding``/``one_hot``/``cross_entropy``, ``torch.nn.Embedding(sparse=True)``,
``torch.view_as_complex`` for RoPE (Meta's Llama convention, interleaved pairs) and ``torch.autograd``
for every gradient. The graded PyTorch modules of the contract, ``TokenPositionEmbedding`` and
``EmbeddingFunction``, live here too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

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
    "TokenPositionEmbedding",
    "tensor_bytes",
    "optimizer_state_bytes",
    "training_bytes",
    "optimizer_step_bytes",
    "lookup_bytes",
    "kv_cache_bytes",
    "embedding_backward",
    "sparse_embedding_backward",
    "softmax_cross_entropy",
    "EmbeddingFunction",
    "chunked_cross_entropy",
    "backward_elements",
]

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "int8": torch.int8}


def _check_ids(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"ids must be an integer tensor, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise IndexError(f"token ids must lie in [0, {vocab_size}), got [{int(ids.min())}, {int(ids.max())}]")
    return ids.long()


# ----------------------------------------------------------------------------------------------- token embeddings
def xavier_uniform(vocab_size: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """float32 ``(V, D)`` from ``torch.nn.init.xavier_uniform_`` (bound ``sqrt(6 / (V + D))``)."""
    return nn.init.xavier_uniform_(torch.empty(vocab_size, dim), generator=generator)


def embedding_forward(weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``F.embedding``: ``ids.shape + (D,)`` rows of ``weight`` ``(V, D)``."""
    return F.embedding(_check_ids(ids, weight.shape[0]), weight)


def one_hot(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """float32 ``ids.shape + (V,)`` via ``F.one_hot``."""
    return F.one_hot(_check_ids(ids, vocab_size), vocab_size).to(torch.float32)


def nearest_neighbors(weight: torch.Tensor, query_id: int, k: int) -> torch.Tensor:
    """long ``(k,)``: ``F.cosine_similarity`` ranking (zero rows score 0), query excluded, stable descending sort
    (ties: lower id)."""
    w = weight.to(torch.float64)
    sims = F.cosine_similarity(w, w[query_id].expand_as(w), dim=1)
    sims = torch.where(torch.linalg.vector_norm(w, dim=1) == 0, 0.0, sims)  # a zero row is similar to nothing
    sims = torch.round(sims, decimals=12)
    sims[query_id] = -math.inf
    return torch.sort(sims, descending=True, stable=True).indices[:k]


def _sizes_ok(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def lookup_cost(n_tokens: int, vocab_size: int, dim: int) -> tuple[int, int, int]:
    """``(lookup_bytes, one_hot_bytes, one_hot_flops)`` counted on ``meta`` tensors: the ``nbytes`` of the rows
    ``F.embedding`` gathers (read, then written), of the one-hot matrix (written, then read), of the table and of the
    product's output; the FLOPs of ``one_hot @ weight`` from ``torch.utils.flop_counter.FlopCounterMode``."""
    if isinstance(n_tokens, bool) or int(n_tokens) != n_tokens or n_tokens < 0:
        raise ValueError(f"n_tokens must be a non-negative integer, got {n_tokens!r}")
    _sizes_ok(vocab_size=vocab_size, dim=dim)
    weight = torch.empty(vocab_size, dim, device="meta")
    ids = torch.zeros(n_tokens, dtype=torch.long, device="meta")
    rows = F.embedding(ids, weight)
    codes = torch.empty(n_tokens, vocab_size, device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        product = codes @ weight
    return 2 * rows.nbytes, 2 * codes.nbytes + weight.nbytes + product.nbytes, int(counter.get_total_flops())


# ----------------------------------------------------------------------------------------------- positions
def sinusoidal_positions(max_len: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """float32 ``(max_len, D)``: ``sin`` in even columns, ``cos`` in odd, frequency ``base**(-2i/D)``."""
    if dim % 2 or dim <= 0 or max_len <= 0:
        raise ValueError(f"need a positive even dim and positive max_len, got dim={dim}, max_len={max_len}")
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    inv_freq = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    return torch.stack([torch.sin(pos * inv_freq), torch.cos(pos * inv_freq)], dim=-1).reshape(max_len, dim).float()


def add_positions(token_embeddings: torch.Tensor, position_table: torch.Tensor) -> torch.Tensor:
    """``token_embeddings + position_table[:T]`` for ``(T, D)`` or ``(B, T, D)`` inputs."""
    seq_len, dim = token_embeddings.shape[-2:]
    if seq_len > position_table.shape[0] or dim != position_table.shape[1]:
        raise ValueError(f"table {tuple(position_table.shape)} cannot cover embeddings {tuple(token_embeddings.shape)}")
    return token_embeddings + position_table[:seq_len]


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """RoPE as in Meta's Llama code: view interleaved pairs as complex numbers and multiply by
    ``exp(i * positions[t] * base**(-2i/D))``. ``x`` is ``(..., T, D)``; same shape and dtype out."""
    dim = x.shape[-1]
    if dim % 2:
        raise ValueError(f"the last dimension must be even, got {dim}")
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    rotation = torch.polar(torch.ones_like(angles), angles)  # (T, D/2) complex128
    pairs = torch.view_as_complex(x.to(torch.float64).reshape(*x.shape[:-1], dim // 2, 2).contiguous())
    return torch.view_as_real(pairs * rotation).reshape(x.shape).to(x.dtype)


def interleaved_to_half(x: torch.Tensor) -> torch.Tensor:
    """Interleaved RoPE pairs -> half-split layout, by viewing ``(..., D)`` as ``(..., D/2, 2)`` and transposing."""
    if x.dim() < 1 or x.shape[-1] == 0 or x.shape[-1] % 2:
        raise ValueError(f"the last axis must be even and non-empty, got shape {tuple(x.shape)}")
    return x.unflatten(-1, (x.shape[-1] // 2, 2)).transpose(-1, -2).flatten(-2)


def llama3_inv_freq(
    dim: int,
    base: float,
    factor: float,
    original_max_positions: int,
    low_freq_factor: float = 1.0,
    high_freq_factor: float = 4.0,
) -> torch.Tensor:
    """Llama 3.1's frequency rescaling as one clamped blend: with ``r = original_max_positions * f / (2 pi)`` the
    turns a pair makes over the original context, ``s = clamp((r - low) / (high - low), 0, 1)`` and the result
    ``(1 - s) f / factor + s f`` (float64 ``(dim // 2,)``)."""
    if dim < 2 or dim % 2:
        raise ValueError(f"dim must be even and >= 2, got {dim}")
    if not (base > 1 and factor >= 1 and original_max_positions > 0 and high_freq_factor > low_freq_factor > 0):
        raise ValueError("need base > 1, factor >= 1, original_max_positions > 0 and high > low > 0")
    freqs = torch.tensor(float(base), dtype=torch.float64) ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    turns = original_max_positions * freqs / (2 * math.pi)
    smooth = ((turns - low_freq_factor) / (high_freq_factor - low_freq_factor)).clamp(0.0, 1.0)
    return (1 - smooth) * freqs / factor + smooth * freqs


class _ElementwiseFlops(TorchDispatchMode):
    """Counts one FLOP per output element of every elementwise multiply, add and subtract dispatched inside it."""

    OPS = ("mul", "add", "sub")

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket.__name__.rstrip("_") in self.OPS:
            self.flops += out.numel()
        return out


def rope_cost(seq_len: int, dim: int, batch: int = 1, n_heads: int = 1) -> tuple[int, int]:
    """``(cache_values, apply_flops)``: the ``numel`` of the ``cos`` and ``sin`` caches built on ``meta`` tensors,
    and the FLOPs of rotating a ``meta`` ``(batch, n_heads, seq_len, dim)`` tensor with them (Llama's complex-pair
    layout: ``(a + ib) * (cos + i sin)`` written out in real arithmetic), counted op by op."""
    if isinstance(seq_len, bool) or int(seq_len) != seq_len or seq_len < 0:
        raise ValueError(f"seq_len must be a non-negative integer, got {seq_len!r}")
    _sizes_ok(dim=dim, batch=batch, n_heads=n_heads)
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    angles = torch.empty(seq_len, dim // 2, device="meta")
    cos, sin = torch.cos(angles), torch.sin(angles)
    x = torch.empty(batch, n_heads, seq_len, dim // 2, 2, device="meta")
    a, b = x[..., 0], x[..., 1]
    counter = _ElementwiseFlops()
    with counter:
        torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1)
    return cos.numel() + sin.numel(), counter.flops


class TokenPositionEmbedding(nn.Module):
    """Token embedding plus absolute position embedding.

    Args:
        vocab_size: rows ``V`` of the token table.
        dim: embedding size ``D``.
        max_len: longest sequence ``L`` the position table covers.
        positions: ``"learned"`` -- an ``nn.Embedding(L, D)`` trained with the model (GPT-2, BERT);
            ``"sinusoidal"`` -- the fixed ``(L, D)`` table, registered as a buffer (saved with the model,
            moved by ``.to()``, never returned by ``parameters()``).

    Shape:
        ``forward(ids)``: ids ``(B, T)`` long, ``T <= L`` -> ``(B, T, D)`` float32.
    """

    def __init__(self, vocab_size: int, dim: int, max_len: int, positions: str = "learned"):
        super().__init__()
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', got {positions!r}")
        self.max_len = max_len
        self.positions = positions
        self.token = nn.Embedding(vocab_size, dim)
        if positions == "learned":
            self.position = nn.Embedding(max_len, dim)
        else:
            self.register_buffer("position_table", sinusoidal_positions(max_len, dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        seq_len = ids.shape[-1]
        if seq_len > self.max_len:
            raise ValueError(f"sequence length {seq_len} exceeds max_len {self.max_len}")
        table = self.position.weight if self.positions == "learned" else self.position_table
        return self.token(ids) + table[:seq_len]


# ----------------------------------------------------------------------------------------------- memory
def tensor_bytes(n_elements: int, dtype: str) -> int:
    """Bytes of a real tensor: ``element_size() * n`` of a ``meta`` tensor; int4 packs two values into each
    ``uint8`` (``ceil(n / 2)`` bytes), the layout of packed-int4 kernels."""
    if dtype == "int4":
        return torch.empty((n_elements + 1) // 2, dtype=torch.uint8, device="meta").nbytes
    if dtype not in TORCH_DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}")
    return torch.empty(n_elements, dtype=TORCH_DTYPES[dtype], device="meta").nbytes


def optimizer_state_bytes(n_params: int, optimizer: str) -> int:
    """Bytes of per-parameter state that a real ``torch.optim`` optimizer allocates after one step on a float32
    parameter of ``n_params`` values (scalar step counters excluded)."""
    p = nn.Parameter(torch.zeros(n_params))
    opt = {
        "sgd": lambda: torch.optim.SGD([p], lr=0.1),
        "momentum": lambda: torch.optim.SGD([p], lr=0.1, momentum=0.9),
        "adam": lambda: torch.optim.Adam([p], lr=0.1),
    }[optimizer]()
    p.grad = torch.ones_like(p)
    opt.step()
    return sum(
        t.nbytes for state in opt.state.values() for t in state.values() if torch.is_tensor(t) and t.numel() == n_params
    )


def training_bytes(n_params: int, dtype: str = "float32", optimizer: str = "adam") -> int:
    """Weights + gradients in ``dtype`` + real optimizer state (float32) + float32 master copy if not float32.

    ``dtype`` must be a floating-point torch dtype: autograd refuses integer tensors (``requires_grad`` on an
    ``int8`` tensor raises), so there is no integer gradient to count.
    """
    if dtype not in TORCH_DTYPES and dtype != "int4":
        raise ValueError(f"unknown dtype {dtype!r}")
    if dtype == "int4" or not TORCH_DTYPES[dtype].is_floating_point:
        raise ValueError(f"cannot train in {dtype!r}: autograd needs floating-point weights and gradients")
    master = 0 if dtype == "float32" else tensor_bytes(n_params, "float32")
    return 2 * tensor_bytes(n_params, dtype) + optimizer_state_bytes(n_params, optimizer) + master


def optimizer_step_bytes(n_params: int, dtype: str = "float32", optimizer: str = "adam") -> int:
    """Bytes of one fused step over the tensors a real ``torch.optim`` step involves (each read and written once):
    the gradient (read), the float32 weights and every per-parameter state tensor the optimizer allocates (read and
    written), and, in mixed precision, the ``dtype`` weights written for the next forward pass."""
    if dtype == "int4" or dtype not in TORCH_DTYPES or not TORCH_DTYPES[dtype].is_floating_point:
        raise ValueError(f"cannot step {dtype!r} weights: use a floating-point dtype")
    if optimizer not in ("sgd", "momentum", "adam"):
        raise ValueError(f"unknown optimizer {optimizer!r}")
    if int(n_params) != n_params or n_params < 0:
        raise ValueError(f"n_params must be a non-negative integer, got {n_params!r}")
    grad = torch.empty(n_params, dtype=TORCH_DTYPES[dtype], device="meta").nbytes
    weights = torch.empty(n_params, dtype=torch.float32, device="meta").nbytes
    state = optimizer_state_bytes(n_params, optimizer)
    copy = 0 if dtype == "float32" else grad
    return grad + 2 * weights + 2 * state + copy


def lookup_bytes(n_tokens: int, dim: int, dtype: str) -> int:
    """Bytes of the ``(n_tokens, D)`` block of rows that a lookup reads."""
    return n_tokens * tensor_bytes(dim, dtype)


def kv_cache_bytes(
    n_layers: int, n_kv_heads: int, head_dim: int, n_tokens: int, dtype: str = "bfloat16", batch_size: int = 1
) -> int:
    """Bytes of a real cache: per layer, the ``nbytes`` of ``meta`` key and value tensors of shape
    ``(batch_size, n_kv_heads, n_tokens, head_dim)`` (the layout of ``transformers``' ``DynamicCache``); int4 packs
    each position's ``n_kv_heads * head_dim`` values two per ``uint8``."""
    if dtype == "int4":
        one = torch.empty(batch_size, n_tokens, (n_kv_heads * head_dim + 1) // 2, dtype=torch.uint8, device="meta")
    elif dtype in TORCH_DTYPES:
        one = torch.empty(batch_size, n_kv_heads, n_tokens, head_dim, dtype=TORCH_DTYPES[dtype], device="meta")
    else:
        raise ValueError(f"unknown dtype {dtype!r}")
    return sum(2 * one.nbytes for _ in range(n_layers))


# ----------------------------------------------------------------------------------------------- backprop
def embedding_backward(grad_out: torch.Tensor, ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Dense ``(V, D)`` gradient of the lookup, from ``torch.autograd`` through ``F.embedding``."""
    weight = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype, requires_grad=True)
    F.embedding(_check_ids(ids, vocab_size), weight).backward(grad_out)
    return weight.grad


def sparse_embedding_backward(
    grad_out: torch.Tensor, ids: torch.Tensor, vocab_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(unique_ids, row_grads)`` from ``nn.Embedding(sparse=True)``'s coalesced sparse gradient."""
    vocab_size = vocab_size or (int(ids.max()) + 1 if ids.numel() else 1)
    ids = _check_ids(ids, vocab_size)
    emb = nn.Embedding(vocab_size, grad_out.shape[-1], sparse=True, dtype=grad_out.dtype)
    emb(ids).backward(grad_out)
    grad = emb.weight.grad.coalesce()
    return grad.indices()[0], grad.values()


def softmax_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, torch.Tensor]:
    """``F.cross_entropy`` (mean) and ``d loss / d logits`` from autograd."""
    logits = logits.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(logits, targets.long(), reduction="mean")
    loss.backward()
    return float(loss.detach()), logits.grad


class EmbeddingFunction(torch.autograd.Function):
    """``weight[ids]`` with a hand-written backward: the scatter-add ``grad_weight.index_add_(0, ids, grad)``.

    ``forward(ctx, weight (V, D), ids (...) long) -> ids.shape + (D,)``; ``backward`` returns a dense
    ``(V, D)`` gradient for ``weight`` and ``None`` for the integer ids. Passes ``torch.autograd.gradcheck``
    in float64.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        ids = _check_ids(ids, weight.shape[0])
        ctx.save_for_backward(ids)
        ctx.weight_shape = weight.shape
        return weight.index_select(0, ids.reshape(-1)).reshape(*ids.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (ids,) = ctx.saved_tensors
        grad_weight = grad_out.new_zeros(ctx.weight_shape)
        grad_weight.index_add_(0, ids.reshape(-1), grad_out.reshape(-1, ctx.weight_shape[1]))
        return grad_weight, None


def chunked_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_size: int
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """``F.cross_entropy(hidden @ weight.T, targets)`` (mean) and its gradients w.r.t. ``hidden`` and ``weight``
    from autograd, all logits at once: the values a chunked loss must reproduce (``chunk_size`` only validated)."""
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    hidden = hidden.detach().clone().requires_grad_(True)
    weight = weight.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(hidden @ weight.T, targets.long(), reduction="mean")
    loss.backward()
    return float(loss.detach()), hidden.grad, weight.grad


def backward_elements(ids: torch.Tensor, vocab_size: int, dim: int) -> tuple[int, int, int]:
    """``(dense, sparse, index_add)`` elements written, read off real gradients: ``nn.Embedding``'s dense gradient
    (``numel``) plus one row per id; ``nn.Embedding(sparse=True)``'s gradient, whose uncoalesced values hold one row
    per id and whose coalesced form holds one row and one index per distinct id; ``index_add_``'s source rows."""
    _sizes_ok(dim=dim)
    ids = _check_ids(ids, vocab_size).reshape(-1)
    grad_out = torch.zeros(ids.numel(), dim)
    dense = nn.Embedding(vocab_size, dim)
    dense(ids).backward(grad_out)
    sparse = nn.Embedding(vocab_size, dim, sparse=True)
    sparse(ids).backward(grad_out)
    rows = sparse.weight.grad._values().numel()
    merged = sparse.weight.grad.coalesce()
    return dense.weight.grad.numel() + rows, merged.values().numel() + rows + merged.indices().shape[1], rows
