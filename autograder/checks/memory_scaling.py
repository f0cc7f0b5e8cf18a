"""Judges of the ``memory-scaling`` assignment: ``embedding_parameters``, ``tensor_bytes``, ``training_bytes``,
``lookup_bytes``, ``kv_cache_bytes``.

Every expected count comes from both references: :mod:`~autograder.reference.numpy_ref` (arithmetic) and
:mod:`~autograder.reference.torch_ref` (``nbytes`` of real ``meta`` tensors and the state a real ``torch.optim``
optimizer allocates). The inputs are rebuilt from the caller's seed by
:mod:`autograder.student.probes.memory_scaling`; probe data supplies only the student's results.
"""

from __future__ import annotations

import torch

from autograder.reference import numpy_ref as N
from autograder.reference import torch_ref as T
from autograder.student.probes import memory_scaling as P

from .compare import case_judges, integer
from .records import record_judge

A = P.A


def _torch_parameters(vocab_size, dim):
    return torch.nn.Embedding(vocab_size, dim, device="meta").weight.numel()


def _torch_training(n_params, dtype="float32", optimizer="adam"):
    """The PyTorch reference allocates real optimizer state, so beyond a million parameters it is scaled up from
    a 1000-parameter run (exact for the byte-aligned dtypes used there)."""
    if n_params <= 10**6:
        return T.training_bytes(n_params, dtype, optimizer)
    assert dtype != "int4"
    return T.training_bytes(1000, dtype, optimizer) * n_params // 1000


for _group in ("embedding_parameters", "embedding_parameters_hidden"):
    case_judges(A, _group, numpy_ref=N.embedding_parameters, torch_ref=_torch_parameters, compare=integer())
for _group in ("tensor_bytes", "tensor_bytes_hidden"):
    case_judges(A, _group, numpy_ref=N.tensor_bytes, torch_ref=T.tensor_bytes, compare=integer())
for _group in ("training_bytes", "training_bytes_hidden"):
    case_judges(A, _group, numpy_ref=N.training_bytes, torch_ref=_torch_training, compare=integer())
for _group in ("lookup_bytes", "lookup_bytes_hidden"):
    case_judges(A, _group, numpy_ref=N.lookup_bytes, torch_ref=T.lookup_bytes, compare=integer())
for _group in ("kv_cache_bytes", "kv_cache_bytes_hidden"):
    case_judges(A, _group, numpy_ref=N.kv_cache_bytes, torch_ref=T.kv_cache_bytes, compare=integer())


def _torch_step(n_params, dtype="float32", optimizer="adam"):
    """As :func:`_torch_training`: real optimizer state beyond a million parameters is scaled up from 1000."""
    if n_params <= 10**6:
        return T.optimizer_step_bytes(n_params, dtype, optimizer)
    return T.optimizer_step_bytes(1000, dtype, optimizer) * n_params // 1000


for _group in ("optimizer_step_bytes", "optimizer_step_bytes_hidden"):
    case_judges(A, _group, numpy_ref=N.optimizer_step_bytes, torch_ref=_torch_step, compare=integer())

record_judge(A, "optimizer_measurements", P.MEASURED_RECORDS)
