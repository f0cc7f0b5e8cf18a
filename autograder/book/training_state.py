"""Measure the training state PyTorch really allocates in one mixed-precision step of a real model: working
weights, gradients, float32 master weights and optimizer state, each summed from the ``nbytes`` of the tensors that
hold it after the step -- every tensor in ``optimizer.state`` included (Adam's ``step`` counters too), none of
them built to a formula.

Three recipes, each run for real on :class:`TinyLlama` (token table, Llama layers, untied output layer):

* ``"amp"`` -- PyTorch's automatic mixed precision: float32 parameters, the forward pass under
  ``torch.autocast(dtype=torch.bfloat16)`` (bfloat16 copies of the weights live only while a matrix product runs),
  float32 gradients, ``torch.optim.Adam``'s two float32 moments: 4 + 4 + 8 = 16 bytes per parameter;
* ``"zero"`` -- the accounting of ZeRO (Rajbhandari et al., 2020): bfloat16 working weights and gradients, then
  float32 master weights that ``torch.optim.Adam`` updates (the bfloat16 gradients are cast to a temporary float32
  gradient for the step): 2 + 2 + 4 + 8 = 16;
* ``"megatron"`` -- Megatron-LM's default for bfloat16 (gradients accumulated in float32): a hook on each bfloat16
  parameter adds its gradient into a float32 ``main_grad`` and drops the bfloat16 one, and Adam steps the float32
  masters with ``main_grad`` as their gradient: 2 + 4 + 4 + 8 = 18.

:data:`STATE_RECIPES` adds, as arithmetic with their sources, the recipes that cannot run on this CPU: FP8 training
as DeepSeek-V3 reports it and 8-bit Adam's block-wise quantized moments.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autograder.book.activations import LlamaLayer, LlamaRMSNorm

__all__ = ["ACCOUNTINGS", "TinyLlama", "measure_training_step", "STATE_RECIPES", "recipe_bytes_per_parameter"]

ACCOUNTINGS = ("amp", "zero", "megatron")


class TinyLlama(nn.Module):
    """A small Llama: ``vocab x dim`` token table, ``n_layers`` :class:`LlamaLayer` (4 heads, 2 key/value heads,
    ``3.5 dim`` MLP), a final RMSNorm and an untied ``vocab x dim`` output layer. ``forward(ids)``: ``(b, s)``
    int64 -> ``(b, s, vocab)`` logits."""

    def __init__(self, vocab: int = 512, dim: int = 64, n_layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(LlamaLayer(dim, 4, 2, 7 * dim // 2) for _ in range(n_layers))
        self.norm = LlamaRMSNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


def _nbytes(tensors) -> int:
    return sum(t.nbytes for t in tensors if t is not None)


def _optimizer_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(t.nbytes for state in opt.state.values() for t in state.values() if torch.is_tensor(t))


def measure_training_step(
    accounting: str = "zero", *, vocab: int = 512, dim: int = 64, n_layers: int = 2, tokens: int = 64, seed: int = 0
) -> dict[str, int]:
    """One real Adam step of :class:`TinyLlama` under recipe ``accounting`` (module docstring); the bytes of each
    group of tensors alive after it.

    Returns ``{"parameters", "weights", "gradients", "master", "optimizer"}``: the parameter count, then the summed
    ``nbytes`` of the working weights, of the gradients kept (``p.grad`` or Megatron's ``main_grad``), of the float32
    master weights (0 for ``"amp"``, whose weights are their own masters) and of every tensor in Adam's state.
    Raises ``ValueError`` for an unknown ``accounting``.
    """
    if accounting not in ACCOUNTINGS:
        raise ValueError(f"unknown accounting {accounting!r}; expected one of {ACCOUNTINGS}")
    torch.manual_seed(seed)
    model = TinyLlama(vocab, dim, n_layers)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(vocab, (1, tokens), generator=gen)
    targets = torch.randint(vocab, (tokens,), generator=gen)
    params = list(model.parameters())
    if accounting == "amp":
        opt = torch.optim.Adam(params, lr=1e-3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(ids)
        F.cross_entropy(logits.float().view(tokens, vocab), targets).backward()
        opt.step()
        return {
            "parameters": sum(p.numel() for p in params),
            "weights": _nbytes(params),
            "gradients": _nbytes(p.grad for p in params),
            "master": 0,
            "optimizer": _optimizer_bytes(opt),
        }
    master = [nn.Parameter(p.detach().clone()) for p in params]  # float32 masters
    model.to(torch.bfloat16)
    params = list(model.parameters())
    main_grads: dict[int, torch.Tensor] = {}
    if accounting == "megatron":
        for i, p in enumerate(params):
            main_grads[i] = torch.zeros_like(p, dtype=torch.float32)

            def accumulate(p: torch.Tensor, i: int = i) -> None:
                main_grads[i].add_(p.grad.float())
                p.grad = None  # no 16-bit gradient survives

            p.register_post_accumulate_grad_hook(accumulate)
    logits = model(ids)
    F.cross_entropy(logits.float().view(tokens, vocab), targets).backward()
    kept = list(main_grads.values()) if accounting == "megatron" else [p.grad for p in params]
    for i, m in enumerate(master):
        m.grad = main_grads[i] if accounting == "megatron" else params[i].grad.float()  # zero: a temporary cast
    opt = torch.optim.Adam(master, lr=1e-3)
    opt.step()
    with torch.no_grad():
        for p, m in zip(params, master, strict=True):
            p.copy_(m)  # the updated masters, back into the working weights
            m.grad = None
    return {
        "parameters": sum(p.numel() for p in params),
        "weights": _nbytes(params),
        "gradients": _nbytes(kept),
        "master": _nbytes(master),
        "optimizer": _optimizer_bytes(opt),
    }


#: bytes per parameter of weights, gradients, master weights and optimizer state, with the source of each recipe
STATE_RECIPES: dict[str, dict] = {
    "fp32 + Adam": {"weights": 4, "gradients": 4, "master": 0, "optimizer": 8, "source": "float32 throughout"},
    "bf16 + fp32 master + Adam (ZeRO)": {
        "weights": 2,
        "gradients": 2,
        "master": 4,
        "optimizer": 8,
        "source": "Rajbhandari et al. 2020, section 3.1",
    },
    "bf16, fp32 grads + Adam (Megatron)": {
        "weights": 2,
        "gradients": 4,
        "master": 4,
        "optimizer": 8,
        "source": "Megatron-LM, --accumulate-allreduce-grads-in-fp32 (default with --bf16)",
    },
    "FP8 GEMMs, bf16 moments (DeepSeek-V3)": {
        "weights": 0,
        "gradients": 4,
        "master": 4,
        "optimizer": 4,
        "source": "DeepSeek-AI 2024 (arXiv:2412.19437), section 3.3.3: AdamW moments in BF16, master weights and "
        "accumulated gradients in FP32; the low-precision working copies its FP8 matrix products read are not "
        "counted here (the paper gives no per-parameter figure for them)",
    },
    "bf16 + fp32 master + 8-bit Adam": {
        "weights": 2,
        "gradients": 2,
        "master": 4,
        "optimizer": 2 * (1 + 4 / 2048),
        "source": "Dettmers et al. 2022 (arXiv:2110.02861): each moment in 8 bits, block-wise, one float32 "
        "absmax per block of 2048 values (bitsandbytes' Adam8bit)",
    },
}


def recipe_bytes_per_parameter(name: str) -> float:
    """The bytes per parameter of :data:`STATE_RECIPES` ``name`` (``KeyError`` listing the names otherwise)."""
    if name not in STATE_RECIPES:
        raise KeyError(f"no recipe {name!r}; known: {list(STATE_RECIPES)}")
    r = STATE_RECIPES[name]
    return r["weights"] + r["gradients"] + r["master"] + r["optimizer"]
