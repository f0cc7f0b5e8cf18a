"""Helpers for the backpropagation chapter: a sort-based scatter-add (re-exported from
:mod:`autograder.measure.scatter`, where the benchmark times it too), row-sparse SGD, finite-difference error
sweeps, and one tiny next-token model trained twice -- by hand in NumPy and with PyTorch's autograd.

The gradients the hand-written model uses are the reference ones (``numpy_ref.softmax_cross_entropy`` and
``numpy_ref.embedding_backward``), so the two training runs test the reference against autograd end to end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from autograder.book.tiny_models import one_thread
from autograder.measure.scatter import scatter_add_sorted
from autograder.reference.numpy_ref import embedding_backward, embedding_forward, softmax_cross_entropy

__all__ = [
    "scatter_add_sorted",
    "sgd_rows_",
    "finite_difference_errors",
    "markov_corpus",
    "BigramParams",
    "init_bigram",
    "bigram_loss_and_grads",
    "train_numpy",
    "train_torch",
    "tied_bigram_grads",
    "tied_bigram_autograd",
    "chunked_cross_entropy_torch",
    "cuda_peak_bytes",
]


def sgd_rows_(weight: np.ndarray, unique_ids: np.ndarray, row_grads: np.ndarray, lr: float) -> np.ndarray:
    """In-place SGD on the touched rows only: ``weight[unique_ids] -= lr * row_grads``; returns ``weight``.

    ``unique_ids`` must not repeat (``sparse_embedding_backward`` guarantees it), otherwise fancy-index assignment
    would keep one update per id -- the same trap as ``G[ids] += g``.
    """
    if np.unique(unique_ids).size != np.asarray(unique_ids).size:
        raise ValueError("unique_ids repeats an id; sum the rows first (sparse_embedding_backward does)")
    weight[unique_ids] -= lr * row_grads
    return weight


def finite_difference_errors(
    f: Callable[[np.ndarray], float], x: np.ndarray, exact: np.ndarray, eps_values: np.ndarray, gradient: Callable
) -> np.ndarray:
    """Max absolute error of ``gradient(f, x, eps)`` against ``exact`` for each ``eps`` in ``eps_values``.

    ``gradient`` is a finite-difference routine with ``numerical_gradient``'s signature; returns float64 ``(E,)``.
    """
    return np.array([np.abs(gradient(f, x, float(eps)).astype(np.float64) - exact).max() for eps in eps_values])


def markov_corpus(vocab_size: int, n_tokens: int, rng: np.random.Generator, branching: int = 3) -> np.ndarray:
    """int64 ``(n_tokens,)`` token stream from a random Markov chain in which each token is followed by one of
    ``branching`` successors (chosen once per token), so a next-token model has something to learn."""
    successors = rng.integers(0, vocab_size, size=(vocab_size, branching))
    tokens = np.empty(n_tokens, dtype=np.int64)
    tokens[0] = rng.integers(vocab_size)
    choices = rng.integers(0, branching, size=n_tokens)
    for t in range(1, n_tokens):
        tokens[t] = successors[tokens[t - 1], choices[t]]
    return tokens


@dataclass
class BigramParams:
    """A next-token model: token table ``E`` ``(V, D)``, head ``W`` ``(D, V)`` and bias ``b`` ``(V,)``."""

    E: np.ndarray
    W: np.ndarray
    b: np.ndarray

    def copy(self) -> BigramParams:
        return BigramParams(self.E.copy(), self.W.copy(), self.b.copy())


def init_bigram(vocab_size: int, dim: int, rng: np.random.Generator, dtype=np.float64) -> BigramParams:
    """Small random initial weights (normal, std 0.1 for ``E``, ``1/sqrt(D)`` for ``W``; zero bias)."""
    return BigramParams(
        E=(0.1 * rng.standard_normal((vocab_size, dim))).astype(dtype),
        W=(rng.standard_normal((dim, vocab_size)) / np.sqrt(dim)).astype(dtype),
        b=np.zeros(vocab_size, dtype=dtype),
    )


def bigram_loss_and_grads(p: BigramParams, x: np.ndarray, y: np.ndarray) -> tuple[float, BigramParams]:
    """Forward and backward by hand: ``h = E[x]``, ``z = h W + b``, ``loss = CE(z, y)``; returns the loss and the
    gradients ``(dE, dW, db)`` as a :class:`BigramParams`. ``x``, ``y``: int ``(N,)``."""
    h = embedding_forward(p.E, x)  # (N, D)
    z = h @ p.W + p.b  # (N, V)
    loss, dz = softmax_cross_entropy(z, y)  # dz: (N, V)
    dW = h.T @ dz  # (D, V)
    db = dz.sum(axis=0)  # (V,)
    dh = dz @ p.W.T  # (N, D)
    dE = embedding_backward(dh, x, p.E.shape[0])  # (V, D): scatter-add of dh
    return loss, BigramParams(dE, dW, db)


def train_numpy(
    p: BigramParams, x: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[np.ndarray, BigramParams]:
    """Full-batch SGD for ``steps`` steps from a copy of ``p``; returns the losses ``(steps,)`` and final weights."""
    p = p.copy()
    losses = np.empty(steps)
    for step in range(steps):
        losses[step], g = bigram_loss_and_grads(p, x, y)
        p.E -= lr * g.E
        p.W -= lr * g.W
        p.b -= lr * g.b
    return losses, p


def train_torch(
    p: BigramParams, x: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[np.ndarray, BigramParams]:
    """The same model and optimizer in PyTorch (``nn.Embedding``, ``nn.Linear``, ``F.cross_entropy``,
    ``torch.optim.SGD``), starting from the same weights; gradients from autograd.

    Runs on one intra-op thread (restored afterwards): the tensors are tiny, and on a shared machine extra threads
    only wait for each other.
    """
    with one_thread():
        return _train_torch(p, x, y, lr, steps)


def _train_torch(
    p: BigramParams, x: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[np.ndarray, BigramParams]:
    dtype = torch.from_numpy(p.E).dtype
    vocab_size, dim = p.E.shape
    embed = nn.Embedding(vocab_size, dim, dtype=dtype)
    head = nn.Linear(dim, vocab_size, dtype=dtype)
    with torch.no_grad():
        embed.weight.copy_(torch.from_numpy(p.E))
        head.weight.copy_(torch.from_numpy(p.W.T))  # nn.Linear stores (out, in)
        head.bias.copy_(torch.from_numpy(p.b))
    opt = torch.optim.SGD([*embed.parameters(), *head.parameters()], lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    losses = np.empty(steps)
    for step in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(embed(xt)), yt)
        loss.backward()
        opt.step()
        losses[step] = loss.item()
    final = BigramParams(
        embed.weight.detach().numpy().copy(), head.weight.detach().numpy().T.copy(), head.bias.detach().numpy().copy()
    )
    return losses, final


def tied_bigram_grads(
    E: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """The bigram model with its output layer tied to the table: ``h = E[x]``, ``z = h E^T + b``, ``CE(z, y)``.

    ``E`` is used twice, so its gradient is the sum of two paths: ``"input"``, the scatter-add of
    ``dh = dz E`` into the rows ``x`` (row-sparse), and ``"output"``, ``dz^T h`` (dense: every row of the
    vocabulary gets ``sum_n (p_nv - [v = y_n]) h_n / N``). Returns ``(loss, {"input", "output", "E", "b"})`` with
    ``E = input + output``; shapes ``(V, D)`` and ``(V,)``.
    """
    h = embedding_forward(E, x)  # (N, D)
    loss, dz = softmax_cross_entropy(h @ E.T + b, y)  # dz: (N, V)
    from_output = dz.T @ h  # (V, D): the output layer's dense gradient
    from_input = embedding_backward(dz @ E, x, E.shape[0])  # (V, D): scatter-add of dh
    return loss, {"input": from_input, "output": from_output, "E": from_input + from_output, "b": dz.sum(axis=0)}


def tied_bigram_autograd(E: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The same tied model in PyTorch (one ``nn.Embedding`` weight used by ``F.embedding`` and ``F.linear``);
    returns the loss and autograd's gradient for the shared table."""
    weight = torch.from_numpy(E.copy()).requires_grad_(True)
    bias = torch.from_numpy(b.copy())
    logits = nn.functional.linear(nn.functional.embedding(torch.from_numpy(x), weight), weight, bias)
    loss = nn.functional.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    return float(loss.detach()), weight.grad.numpy()


def chunked_cross_entropy_torch(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_size: int
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of ``hidden @ weight.T`` and its gradients, ``chunk_size`` rows of logits at a time, in
    PyTorch on the tensors' own device (the GPU twin of the assignment's ``chunked_cross_entropy``).

    ``hidden``: ``(N, D)`` floating, ``weight``: ``(V, D)``, ``targets``: ``(N,)`` integers in ``[0, V)``.
    Returns ``(loss, dhidden (N, D), dweight (V, D))``. Each chunk computes its ``(c, V)`` logits, its share of the
    loss and ``delta = (softmax - onehot) / N``, adds ``delta @ weight`` and ``delta.T @ hidden_chunk`` into the
    gradients and frees its logits before the next chunk, so no more than ``chunk_size x V`` logits (and their
    softmax) are ever alive; no autograd graph is built. Raises ``ValueError`` for a non-positive ``chunk_size``.
    """
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    n = hidden.shape[0]
    targets = targets.long()
    dhidden = torch.empty_like(hidden)
    dweight = torch.zeros_like(weight)
    total = torch.zeros((), dtype=torch.float64, device=hidden.device)
    with torch.no_grad():
        for start in range(0, n, int(chunk_size)):
            h, t = hidden[start : start + chunk_size], targets[start : start + chunk_size]
            logits = h @ weight.T
            logp = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=1)
            total += -logp.gather(1, t[:, None]).sum(dtype=torch.float64)
            delta = logp.exp_()  # softmax, in place of the log-probabilities
            delta[torch.arange(t.shape[0], device=t.device), t] -= 1
            delta = delta.div_(n).to(hidden.dtype)
            dhidden[start : start + chunk_size] = delta @ weight
            dweight.addmm_(delta.T, h)
            del logits, logp, delta
    return float(total / n), dhidden, dweight


def cuda_peak_bytes(fn: Callable[[], object]) -> int:
    """Bytes the CUDA caching allocator held at its peak during ``fn()``, above what was allocated before.
    Raises ``ValueError`` when no CUDA GPU is available."""
    if not torch.cuda.is_available():
        raise ValueError("cuda_peak_bytes needs a CUDA GPU; none is available here")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base
