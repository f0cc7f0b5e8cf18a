"""Measure the training state PyTorch really allocates: working weights, gradients, float32 master weights and
optimizer state, each as the ``nbytes`` of the tensors that hold it after one mixed-precision step.

Two accountings of mixed-precision Adam, both built here from real tensors:

* ``"zero"`` (Rajbhandari et al., 2020): 16-bit weights and 16-bit gradients, then float32 master weights and
  Adam's two float32 moments: 2 + 2 + 4 + 8 = 16 bytes per parameter;
* ``"megatron"`` (Megatron-LM with ``--accumulate-allreduce-grads-in-fp32``, the default for bf16): the gradient
  is accumulated straight into a float32 ``main_grad`` and no 16-bit gradient is kept: 2 + 4 + 4 + 8 = 18.

:func:`measure_mixed_precision_step` runs one real step of a small model that way (16-bit working copy for the
forward and backward, ``torch.optim.Adam`` on the float32 masters) and returns the bytes of each group.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ACCOUNTINGS", "measure_mixed_precision_step"]

ACCOUNTINGS = ("zero", "megatron")


def measure_mixed_precision_step(
    vocab_size: int,
    dim: int,
    n_tokens: int,
    *,
    dtype: torch.dtype = torch.bfloat16,
    accounting: str = "zero",
    seed: int = 0,
) -> dict[str, int]:
    """One mixed-precision Adam step of an embedding + output-layer model; bytes of each group of tensors.

    The model: ``logits = E[ids] @ U.T`` with ``E, U`` of shape ``(V, D)``. Returns ``{"parameters",
    "weights", "gradients", "master", "optimizer"}``: the parameter count, then the summed ``nbytes`` of the
    ``dtype`` working weights, of the gradients kept (``dtype`` grads for ``"zero"``, float32 ``main_grad`` for
    ``"megatron"``), of the float32 master weights and of the per-parameter tensors in Adam's state.
    Raises ``ValueError`` for an unknown ``accounting``.
    """
    if accounting not in ACCOUNTINGS:
        raise ValueError(f"unknown accounting {accounting!r}; expected one of {ACCOUNTINGS}")
    gen = torch.Generator().manual_seed(seed)
    master = [torch.nn.Parameter(0.02 * torch.randn(vocab_size, dim, generator=gen)) for _ in range(2)]
    working = [m.detach().to(dtype).requires_grad_(True) for m in master]
    ids = torch.randint(vocab_size, (n_tokens,), generator=gen)
    targets = torch.randint(vocab_size, (n_tokens,), generator=gen)
    embed, unembed = working
    loss = F.cross_entropy((F.embedding(ids, embed) @ unembed.T).float(), targets)
    loss.backward()
    if accounting == "megatron":
        kept = [w.grad.float() for w in working]  # main_grad: accumulated in float32
        for w in working:
            w.grad = None  # no 16-bit gradient survives
    else:
        kept = [w.grad for w in working]
    for m, g in zip(master, kept, strict=False):
        m.grad = g.float()  # Adam updates the float32 masters
    opt = torch.optim.Adam(master, lr=1e-3)
    opt.step()
    state = sum(
        t.nbytes for s in opt.state.values() for t in s.values() if torch.is_tensor(t) and t.numel() == vocab_size * dim
    )
    for m in master:
        m.grad = None  # a temporary cast, not state
    return {
        "parameters": sum(m.numel() for m in master),
        "weights": sum(w.nbytes for w in working),
        "gradients": sum(g.nbytes for g in kept),
        "master": sum(m.nbytes for m in master),
        "optimizer": state,
    }
