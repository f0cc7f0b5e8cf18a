"""Tiny PyTorch models that chapter 1 trains in seconds on a CPU, and the one-thread helper every such model uses.

* :func:`train_skipgram` -- skip-gram word vectors (full softmax over a small vocabulary) for chapter 1's geometry.

Chapter 2's attention model and its extrapolation study live in ``autograder.book.extrapolation``; the float32 RoPE
rotation in ``autograder.book.rope_layouts``.

Every function takes an explicit seed or ``torch.Generator`` and gives the same numbers on every run on one machine.
Training runs on one CPU thread (:func:`one_thread`): on these tiny tensors, splitting each operation across threads
costs more in synchronisation than it saves, many times over when the cores are shared with other work.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autograder.measure.timing import torch_threads

__all__ = ["one_thread", "train_skipgram"]


def one_thread():
    """Run the enclosed PyTorch work on one intra-op thread, then restore the previous thread count
    (``timing.torch_threads(1)``)."""
    return torch_threads(1)


# ----------------------------------------------------------------------------------------------- chapter 1
def train_skipgram(
    centers: np.ndarray,
    contexts: np.ndarray,
    vocab_size: int,
    dim: int = 16,
    *,
    epochs: int = 3,
    batch_size: int = 256,
    lr: float = 0.02,
    seed: int = 0,
    init_std: float = 0.02,
) -> tuple[np.ndarray, list[float]]:
    """Train skip-gram word vectors: predict each context id from its center id through a softmax over the vocabulary.

    ``P(context | center) = softmax(E[center] @ U.T)`` with an input table ``E`` and an output table ``U``, both
    ``(V, D)``, initialised ``N(0, init_std)`` and trained with Adam on the mean cross-entropy.

    Args:
        centers, contexts: int64 ``(P,)`` id pairs (see ``corpus.skipgram_pairs``).
    Returns:
        ``(E, losses)``: the trained input table, float32 ``(V, D)``, and the mean loss of each epoch.
    """
    if centers.shape != contexts.shape or centers.ndim != 1:
        raise ValueError(f"centers and contexts must be 1-D of one length, got {centers.shape} and {contexts.shape}")
    gen = torch.Generator().manual_seed(seed)
    emb_in = nn.Parameter(torch.randn(vocab_size, dim, generator=gen) * init_std)
    emb_out = nn.Parameter(torch.randn(vocab_size, dim, generator=gen) * init_std)
    opt = torch.optim.Adam([emb_in, emb_out], lr=lr)
    c, x = torch.from_numpy(centers), torch.from_numpy(contexts)
    losses = []
    with one_thread():
        for _ in range(epochs):
            order = torch.randperm(len(c), generator=gen)
            total = 0.0
            for start in range(0, len(c), batch_size):
                idx = order[start : start + batch_size]
                logits = F.embedding(c[idx], emb_in) @ emb_out.T
                loss = F.cross_entropy(logits, x[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            losses.append(total / len(c))
    return emb_in.detach().numpy().copy(), losses
