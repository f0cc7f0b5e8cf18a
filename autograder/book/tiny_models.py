"""Tiny PyTorch models that chapters 1 and 2 train in seconds on a CPU.

* :func:`train_skipgram` -- skip-gram word vectors (full softmax over a small vocabulary) for chapter 1's geometry.
* :func:`rope_rotate` -- rotary position embedding in float32 with angles computed on the fly, the formulation a
  GPU kernel uses; it must agree with ``torch_ref.apply_rope`` (tested).
* :class:`TinyAttention` -- one causal attention head over token vectors with ``"none"``, ``"learned"``,
  ``"sinusoidal"`` or ``"rotary"`` positions, and :func:`offset_copy_batch` / :func:`train_offset_copy` /
  :func:`accuracy_by_position` for chapter 2's extrapolation experiment.

Every function takes an explicit seed or ``torch.Generator`` and gives the same numbers on every run on one machine.
Training runs on one CPU thread (:func:`one_thread`): on these tiny tensors, splitting each operation across threads
costs more in synchronisation than it saves, many times over when the cores are shared with other work.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autograder.reference import torch_ref
from autograder.measure.timing import torch_threads

__all__ = ["one_thread", "train_skipgram", "rope_rotate", "TinyAttention", "POSITION_KINDS", "offset_copy_batch",
           "train_offset_copy", "accuracy_by_position"]


def one_thread():
    """Run the enclosed PyTorch work on one intra-op thread, then restore the previous thread count
    (``timing.torch_threads(1)``)."""
    return torch_threads(1)


# ----------------------------------------------------------------------------------------------- chapter 1
def train_skipgram(centers: np.ndarray, contexts: np.ndarray, vocab_size: int, dim: int = 16, *,
                   epochs: int = 3, batch_size: int = 256, lr: float = 0.02, seed: int = 0,
                   init_std: float = 0.02) -> tuple[np.ndarray, list[float]]:
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
                idx = order[start:start + batch_size]
                logits = F.embedding(c[idx], emb_in) @ emb_out.T
                loss = F.cross_entropy(logits, x[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            losses.append(total / len(c))
    return emb_in.detach().numpy().copy(), losses


# ----------------------------------------------------------------------------------------------- chapter 2
def rope_rotate(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary embedding of ``x`` ``(..., T, D)`` at ``positions`` ``(T,)``, in ``x``'s dtype, no stored table.

    The angles ``positions[t] * base**(-2i/D)`` are computed on the fly (``T * D/2`` multiplies), then each
    interleaved pair ``(a, b) = (x[..., 2i], x[..., 2i+1])`` becomes ``(a cos - b sin, a sin + b cos)``: the same
    result as ``torch_ref.apply_rope``, without its float64 complex arithmetic.
    """
    dim = x.shape[-1]
    if dim % 2:
        raise ValueError(f"the last dimension must be even for rotary pairs, got {dim}")
    if positions.shape != (x.shape[-2],):
        raise ValueError(f"positions must have shape ({x.shape[-2]},), got {tuple(positions.shape)}")
    inv_freq = base ** (-torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim)
    theta = positions.to(device=x.device, dtype=torch.float32)[:, None] * inv_freq  # (T, D/2)
    cos, sin = theta.cos().to(x.dtype), theta.sin().to(x.dtype)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


POSITION_KINDS = ("none", "learned", "sinusoidal", "rotary")


class TinyAttention(nn.Module):
    """One causal self-attention head on token vectors, then a linear read-out to the vocabulary.

    ``positions`` says how the model learns where a token is:

    * ``"none"``: token vectors only (attention cannot tell positions apart);
    * ``"learned"`` / ``"sinusoidal"``: ``torch_ref.TokenPositionEmbedding`` adds a position row to each token;
    * ``"rotary"``: token vectors only, and queries and keys are rotated by :func:`rope_rotate`.

    The initial weights depend only on ``seed``.

    Shape: ``forward(ids)``: ids ``(B, T)`` long -> logits ``(B, T, vocab_size)``. ``T <= max_len`` for
    ``"learned"`` and ``"sinusoidal"`` (their tables have ``max_len`` rows).
    """

    def __init__(self, vocab_size: int, dim: int, max_len: int, positions: str, seed: int = 0):
        super().__init__()
        if positions not in POSITION_KINDS:
            raise ValueError(f"positions must be one of {POSITION_KINDS}, got {positions!r}")
        self.positions = positions
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left untouched
            torch.manual_seed(seed)
            if positions in ("learned", "sinusoidal"):
                self.embed = torch_ref.TokenPositionEmbedding(vocab_size, dim, max_len, positions=positions)
            else:
                self.embed = nn.Embedding(vocab_size, dim)
            self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
            self.readout = nn.Linear(dim, vocab_size)

    def attention_weights(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weights (B, T, T), values (B, T, D))``: causal softmax attention and the values it averages."""
        x = self.embed(ids)
        q, k, v = self.query(x), self.key(x), self.value(x)
        if self.positions == "rotary":
            pos = torch.arange(ids.shape[-1])
            q, k = rope_rotate(q, pos), rope_rotate(k, pos)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        causal = torch.ones(ids.shape[-1], ids.shape[-1], dtype=torch.bool).tril()
        return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1), v

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        weights, v = self.attention_weights(ids)
        return self.readout(weights @ v)


def offset_copy_batch(batch: int, length: int, vocab_size: int, offset: int,
                      generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids ``(B, T)`` and targets ``(B, T)``: the target at position ``t`` is the id at ``t - offset``.

    The first ``offset`` positions have no such id; their target is ``-100``, which ``F.cross_entropy`` ignores.
    """
    ids = torch.randint(vocab_size, (batch, length), generator=generator)
    targets = torch.full_like(ids, -100)
    targets[:, offset:] = ids[:, :-offset]
    return ids, targets


def train_offset_copy(model: TinyAttention, *, length: int, offset: int, steps: int = 300, batch: int = 64,
                      lr: float = 0.01, seed: int = 0) -> list[float]:
    """Train ``model`` with Adam on :func:`offset_copy_batch` sequences of ``length`` tokens; returns the losses."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    vocab_size = model.readout.out_features
    losses = []
    with one_thread():
        for _ in range(steps):
            ids, targets = offset_copy_batch(batch, length, vocab_size, offset, gen)
            loss = F.cross_entropy(model(ids).flatten(0, 1), targets.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses


@torch.no_grad()
def accuracy_by_position(model: TinyAttention, *, length: int, offset: int, batch: int = 512,
                         seed: int = 1) -> np.ndarray:
    """float64 ``(length,)``: the fraction of ``batch`` fresh sequences whose target at each position the model
    predicts exactly (``nan`` for the first ``offset`` positions, which have no target)."""
    gen = torch.Generator().manual_seed(seed)
    ids, targets = offset_copy_batch(batch, length, model.readout.out_features, offset, gen)
    with one_thread():
        correct = (model(ids).argmax(-1) == targets).double().mean(0).numpy()
    correct[:offset] = np.nan
    return correct
