"""Training-state bytes per device when data-parallel training shards it: ZeRO stages 1-3 and PyTorch FSDP, and
Megatron's vocabulary-parallel embedding and loss.

**ZeRO** (Rajbhandari et al., 2020, arXiv:1910.02054, section 5 and Figure 1) counts mixed-precision Adam as
``2 + 2 + K`` bytes per parameter: 16-bit weights (2), 16-bit gradients (2) and ``K = 12`` bytes of float32
optimizer state (master weights, momentum, variance). With ``N_d`` data-parallel devices:

* stage 0 (plain data parallelism): every device holds all of it, ``(2 + 2 + K) Psi``;
* stage 1 (optimizer state partitioned): ``2 Psi + 2 Psi + K Psi / N_d``;
* stage 2 (+ gradients partitioned): ``2 Psi + (2 + K) Psi / N_d``;
* stage 3 (+ parameters partitioned): ``(2 + 2 + K) Psi / N_d``.

PyTorch FSDP's ``ShardingStrategy.FULL_SHARD`` shards parameters, gradients and optimizer state (stage 3's
layout), ``SHARD_GRAD_OP`` gradients and optimizer state (stage 2's), ``NO_SHARD`` nothing (stage 0). The bytes
per parameter are parameters here, so Megatron's fp32 gradient accumulation (4-byte gradients: 18 bytes per
parameter) is one call with ``grad_bytes=4``. Activations and the temporary buffers of the collectives are not
counted.

**Vocabulary parallelism** (Shoeybi et al., 2019, arXiv:1909.08053, section 3, "parallelize the input embedding
weight matrix ... along the vocabulary dimension"; the loss is fused so that a few scalars per token are exchanged,
not ``N x V`` logits): with tensor-parallel size ``t`` each device holds ``V / t`` rows of the table and computes
``N x V / t`` logits. Megatron-LM's ``VocabParallelCrossEntropy`` (``megatron/core/tensor_parallel/
cross_entropy.py``) all-reduces three values per token: the row maximum (``MAX``), then the target's logit (only the
device holding the target contributes it, the others add 0) and the sum of exponentials (``SUM``, the two in one
call). :func:`vocab_parallel_cross_entropy` runs that algorithm over shards on one machine and counts what crosses.
Megatron pads ``V`` to a multiple of ``128 t``
(``--make-vocab-size-divisible-by``, default 128); nanoGPT pads GPT-2's 50,257 to a multiple of 64.
"""

from __future__ import annotations

import torch

__all__ = [
    "vocab_parallel_cross_entropy",
    "ZERO_STAGES",
    "zero_bytes_per_device",
    "FSDP_STRATEGIES",
    "padded_vocab_size",
    "vocab_parallel_bytes_per_device",
]

#: what each ZeRO stage partitions across the data-parallel devices
ZERO_STAGES = {0: (), 1: ("optimizer",), 2: ("optimizer", "gradients"), 3: ("optimizer", "gradients", "weights")}
#: PyTorch FSDP strategies and the ZeRO stage whose layout each has
FSDP_STRATEGIES = {"NO_SHARD": 0, "SHARD_GRAD_OP": 2, "FULL_SHARD": 3}


def zero_bytes_per_device(
    n_params: int, n_devices: int, stage: int, *, weight_bytes: int = 2, grad_bytes: int = 2, optimizer_bytes: int = 12
) -> float:
    """Bytes of weights, gradients and optimizer state per device under ZeRO ``stage`` (0-3) on ``n_devices``.

    Defaults: ZeRO's mixed-precision Adam (2 + 2 + 12 = 16 bytes per parameter). Raises ``ValueError`` for an
    unknown stage or non-positive sizes. The result is a float: a shard is ``1 / n_devices`` of a tensor.
    """
    if stage not in ZERO_STAGES:
        raise ValueError(f"unknown ZeRO stage {stage!r}; expected one of {sorted(ZERO_STAGES)}")
    if n_params < 0 or n_devices < 1 or int(n_devices) != n_devices:
        raise ValueError(f"need n_params >= 0 and a positive integer n_devices, got {n_params}, {n_devices}")
    sharded = ZERO_STAGES[stage]
    total = 0.0
    for part, per_param in (("weights", weight_bytes), ("gradients", grad_bytes), ("optimizer", optimizer_bytes)):
        total += n_params * per_param / (n_devices if part in sharded else 1)
    return total


def padded_vocab_size(vocab_size: int, multiple: int) -> int:
    """``vocab_size`` rounded up to a multiple of ``multiple`` (nanoGPT: 64; Megatron: 128 x tensor-parallel size)."""
    if vocab_size < 1 or multiple < 1:
        raise ValueError(f"vocab_size and multiple must be positive, got {vocab_size} and {multiple}")
    return -(-int(vocab_size) // int(multiple)) * int(multiple)


def vocab_parallel_bytes_per_device(
    vocab_size: int,
    dim: int,
    n_tokens: int,
    tp: int,
    *,
    weight_bytes: int = 2,
    logit_bytes: int = 4,
    divisible_by: int = 128,
) -> dict:
    """Per-device bytes of a vocabulary-parallel table and of its logits on ``tp`` tensor-parallel devices.

    The vocabulary is padded to a multiple of ``divisible_by * tp`` (Megatron's rule); each device holds
    ``V_padded / tp`` rows of ``dim`` weights and, for ``n_tokens`` tokens, that many columns of logits (and the
    same again for their gradient). Returns ``{"padded_vocab", "rows", "table_bytes", "logits_bytes"}``.
    """
    if tp < 1:
        raise ValueError(f"tp must be a positive integer, got {tp}")
    padded = padded_vocab_size(vocab_size, divisible_by * tp)
    rows = padded // tp
    return {
        "padded_vocab": padded,
        "rows": rows,
        "table_bytes": rows * dim * weight_bytes,
        "logits_bytes": n_tokens * rows * logit_bytes,
    }


def vocab_parallel_cross_entropy(
    logit_shards: list[torch.Tensor], targets: torch.Tensor
) -> tuple[torch.Tensor, dict[str, int]]:
    """Mean cross-entropy of logits split along the vocabulary, computed as Megatron's vocabulary-parallel loss
    does: each shard ``(N, V_k)`` (shard ``k`` holds the ids from ``sum(V_0..V_{k-1})`` on) only ever sees its own
    logits and the results of three all-reduces over ``N`` values each (max; target logit; sum of exponentials).

    Returns ``(loss, {"values_per_token": ..., "all_reduces": ...})``: what was exchanged, counted as it happened.
    Raises ``ValueError`` for shards whose row counts differ from ``targets``.
    """
    n = targets.shape[0]
    if any(shard.shape[0] != n for shard in logit_shards):
        raise ValueError(f"every shard needs {n} rows, one per target; got {[s.shape[0] for s in logit_shards]}")
    exchanged = {"values_per_token": 0, "all_reduces": 0}

    def all_reduce(parts: list[torch.Tensor], op) -> torch.Tensor:
        exchanged["all_reduces"] += 1
        exchanged["values_per_token"] += parts[0].numel() // n
        out = parts[0]
        for part in parts[1:]:
            out = op(out, part)
        return out

    row_max = all_reduce([shard.max(dim=1).values for shard in logit_shards], torch.maximum)
    start, target_parts, sum_exp_parts = 0, [], []
    for shard in logit_shards:
        local = targets - start
        mine = (local >= 0) & (local < shard.shape[1])
        picked = shard.gather(1, local.clamp(0, shard.shape[1] - 1)[:, None])[:, 0] - row_max
        target_parts.append(torch.where(mine, picked, torch.zeros_like(picked)))
        sum_exp_parts.append((shard - row_max[:, None]).exp().sum(dim=1))
        start += shard.shape[1]
    # Megatron sums the target logit and the sum of exponentials in one all-reduce of two values per token
    both = all_reduce([torch.stack((t, e), dim=1) for t, e in zip(target_parts, sum_exp_parts, strict=True)], torch.add)
    target_logit, sum_exp = both[:, 0], both[:, 1]
    return (sum_exp.log() - target_logit).mean(), exchanged
