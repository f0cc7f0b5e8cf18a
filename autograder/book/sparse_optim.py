"""What ``torch.optim`` does with the row-sparse gradient of ``nn.Embedding(..., sparse=True)``: run the same steps
with a sparse and a dense gradient and compare the weights, or collect the error an optimizer raises.

Findings the memory-scaling chapter prints from these functions (torch 2.13):

* plain SGD and SGD with momentum give the *dense* result: the momentum buffer is kept as a sparse tensor, but every
  step multiplies all of it by the momentum and applies it, so rows touched once keep moving, exactly as with a dense
  buffer (and the buffer's stored rows grow towards the whole table);
* ``torch.optim.Adam`` and ``AdamW`` refuse sparse gradients (``RuntimeError``), pointing to ``SparseAdam``, the one
  *lazy* Adam: it updates only the rows present in the gradient, so its result differs from dense Adam;
* weight decay does not combine with a sparse gradient: SGD's ``grad + wd * param`` raises, and so does Adagrad.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

__all__ = ["run_embedding_steps", "sparse_vs_dense", "optimizer_error"]

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


def run_embedding_steps(
    make_optimizer: OptimizerFactory,
    *,
    sparse: bool,
    vocab_size: int = 64,
    dim: int = 4,
    steps: int = 4,
    batch: int = 8,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.optim.Optimizer]:
    """``steps`` optimizer steps on an ``nn.Embedding(vocab_size, dim, sparse=sparse)`` with the loss
    ``sum(E[ids]**2)`` for ``batch`` random ids per step (the same ids and initial table for either ``sparse``).

    Returns ``(final float32 weights (vocab_size, dim), the optimizer)``; the optimizer's own errors propagate.
    """
    gen = torch.Generator().manual_seed(seed)
    emb = torch.nn.Embedding(vocab_size, dim, sparse=sparse)
    with torch.no_grad():
        emb.weight.copy_(torch.randn(vocab_size, dim, generator=gen))
    opt = make_optimizer(list(emb.parameters()))
    for _ in range(steps):
        ids = torch.randint(0, vocab_size, (batch,), generator=gen)
        opt.zero_grad()
        emb(ids).pow(2).sum().backward()
        opt.step()
    return emb.weight.detach().clone(), opt


def sparse_vs_dense(
    make_sparse: OptimizerFactory, make_dense: OptimizerFactory | None = None, **kwargs
) -> tuple[float, int]:
    """The largest absolute difference between the weights after the same steps with a sparse gradient (optimizer
    ``make_sparse``) and a dense one (``make_dense``, default the same), and the number of rows whose weights differ
    by more than ``1e-6``. ``kwargs`` go to :func:`run_embedding_steps`."""
    a, _ = run_embedding_steps(make_sparse, sparse=True, **kwargs)
    b, _ = run_embedding_steps(make_dense or make_sparse, sparse=False, **kwargs)
    diff = (a - b).abs()
    return float(diff.max()), int((diff.amax(dim=1) > 1e-6).sum())


def optimizer_error(make_optimizer: OptimizerFactory, **kwargs) -> str | None:
    """The first line of the error ``make_optimizer`` raises on a sparse embedding gradient, or ``None``."""
    try:
        run_embedding_steps(make_optimizer, sparse=True, **kwargs)
    except (RuntimeError, ValueError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None
